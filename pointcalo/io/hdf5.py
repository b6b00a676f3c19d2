"""Native HDF5 shower format: ragged columns plus offsets.

Layout (format version 1; the shared Geant4 sample uses the same layout)::

    /incident_energy   [N]     float32  MeV
    /offsets           [N + 1] int64    shower i owns points offsets[i]:offsets[i + 1]
    /points/E          [P]     float32  MeV
    /points/x, /y (, /z) [P]   float32  mm
    /points/layer      [P]     int32 (int16 accepted)
    /<name>            [N]     optional per-shower fields (theta, phi, pid, ...)

Attributes: ``format = "pointcalo.showers"``, ``format_version``, ``units``, ``n_showers``.
Datasets are chunked and compressed (gzip with byte shuffle by default). Writes are atomic;
reads return the whole file, a slice, or chunks whose memory is bounded by the chunk.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import awkward as ak
import h5py
import numpy as np

from pointcalo.errors import ShowerFormatError
from pointcalo.interrupts import check as check_interrupt
from pointcalo.io.atomic import AtomicWriter, temporary_path
from pointcalo.showers import (
    OPTIONAL_POINT_FIELDS,
    REQUIRED_POINT_FIELDS,
    UNITS,
    FlatShowers,
    canonical_order,
    flatten,
    from_flat,
    validate_flat,
    validate_offsets,
)

FORMAT_NAME = "pointcalo.showers"
FORMAT_VERSION = 1
_RESERVED = {"offsets", "points"}


def open_hdf5(path: Path) -> h5py.File:
    """Open an HDF5 file for reading; one-line errors for missing, non-HDF5 or truncated files."""
    if not path.exists():
        raise ShowerFormatError(path, None, "no such file")
    if path.is_dir():
        raise ShowerFormatError(path, None, "is a directory, expected an HDF5 file")
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError as err:
        raise ShowerFormatError(path, None, f"cannot be read: {err}") from None
    if not is_hdf5:
        raise ShowerFormatError(path, None, "not an HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        msg = str(err).splitlines()[0]
        raise ShowerFormatError(path, None, f"cannot open (truncated or corrupt?): {msg}") from None


class HDF5ShowerReader:
    """Reader of the native format that checks the layout when opened.

    Use as a context manager. ``read(start, stop)`` returns showers in the data model;
    ``iter_chunks(chunk_size)`` yields them chunk by chunk with memory bounded by the chunk.
    """

    def __init__(self, path: str | os.PathLike[str], *, allow_empty: bool = False) -> None:
        self.path = Path(path)
        self.allow_empty = allow_empty
        self._file = open_hdf5(self.path)
        try:
            self._check_layout()
        except ShowerFormatError:
            self._file.close()
            raise
        except (KeyError, RuntimeError, OSError) as err:  # h5py on damaged files
            self._file.close()
            msg = str(err).strip().strip("'").splitlines()[0] if str(err).strip() else ""
            raise ShowerFormatError(
                self.path, None, f"unreadable (truncated or corrupt file?): {msg}"
            ) from None
        except BaseException:
            self._file.close()
            raise

    def _dataset(self, name: str) -> h5py.Dataset:
        try:
            obj = self._file[name]
        except KeyError as err:
            if "doesn't exist" not in str(err):  # h5py: the object exists, but is unreadable
                raise ShowerFormatError(
                    self.path, name, "unreadable (truncated or corrupt file?)"
                ) from None
            have = sorted(self._file.keys())
            raise ShowerFormatError(
                self.path, name, f"missing dataset (file has: {', '.join(have) or 'nothing'})"
            ) from None
        except OSError as err:
            raise ShowerFormatError(self.path, name, f"unreadable: {err}") from None
        if not isinstance(obj, h5py.Dataset):
            raise ShowerFormatError(self.path, name, "is a group, expected a dataset")
        return obj

    def _check_layout(self) -> None:
        keys = set(self._file.keys())
        if "offsets" not in keys and {"incident_energies", "showers"} <= keys:
            raise ShowerFormatError(
                self.path,
                None,
                "a CaloChallenge voxel file (incident_energies, showers), not point showers "
                "(pointcalo evaluate, compare and train read it as voxels; pointcalo convert "
                "--voxel-points centre turns it into point showers)",
            )
        version = self._file.attrs.get("format_version", FORMAT_VERSION)
        try:
            version = int(version)
        except (TypeError, ValueError):
            raise ShowerFormatError(
                self.path, "format_version", f"must be an integer, got {version!r}"
            ) from None
        if version > FORMAT_VERSION:
            raise ShowerFormatError(
                self.path,
                "format_version",
                f"{version} is newer than this pointcalo reads ({FORMAT_VERSION}); upgrade",
            )
        self.offsets = self._read(self._dataset("offsets"), "offsets")
        if self.offsets.dtype.kind not in "iu":
            raise ShowerFormatError(
                self.path, "offsets", f"must be integer, got {self.offsets.dtype}"
            )
        self.offsets = self.offsets.astype(np.int64, copy=False)
        # The offsets are cheap (N + 1 integers) and checked now; values are checked per read.
        validate_offsets(self.offsets, source=str(self.path), allow_empty=self.allow_empty)
        self.n_showers = len(self.offsets) - 1
        try:
            points_group = self._file.get("points", None)
        except KeyError:
            raise ShowerFormatError(
                self.path, "points", "unreadable (truncated or corrupt file?)"
            ) from None
        if points_group is None or not isinstance(points_group, h5py.Group):
            raise ShowerFormatError(self.path, "points", "missing group of per-point datasets")
        self.point_names = canonical_order(self._file["points"].keys())
        extra = (k for k, v in self._file.items() if isinstance(v, h5py.Dataset))
        self.field_names = [
            "incident_energy",
            *sorted(set(extra) - _RESERVED - {"incident_energy"}),
        ]
        n_points = int(self.offsets[-1])
        for name in self.point_names:
            ds = self._dataset(f"points/{name}")
            if ds.ndim != 1:
                raise ShowerFormatError(self.path, f"points/{name}", f"must be 1-d, got {ds.shape}")
            if ds.shape[0] != n_points:
                raise ShowerFormatError(
                    self.path,
                    f"points/{name}",
                    f"has {ds.shape[0]} points but offsets[-1] = {n_points}",
                )
            self._check_dtype(ds, f"points/{name}")
        for name in self.field_names:
            ds = self._dataset(name)
            if ds.shape != (self.n_showers,):
                raise ShowerFormatError(
                    self.path, name, f"has shape {ds.shape}, expected ({self.n_showers},)"
                )
            self._check_dtype(ds, name)
        for name in REQUIRED_POINT_FIELDS:
            if name not in self.point_names:
                self._dataset(f"points/{name}")  # raises, listing what the file has

    def _check_dtype(self, ds: h5py.Dataset, name: str) -> None:
        kind = ds.dtype.kind
        base = name.split("/")[-1]
        expected = REQUIRED_POINT_FIELDS.get(base) or OPTIONAL_POINT_FIELDS.get(base)
        if name == "incident_energy" and kind != "f":
            raise ShowerFormatError(self.path, name, f"must be floating, got {ds.dtype}")
        if kind not in "fiub":
            raise ShowerFormatError(self.path, name, f"non-numeric dtype {ds.dtype}")
        if name.startswith("points/") and expected is not None:
            if expected.kind == "f" and kind != "f":
                raise ShowerFormatError(self.path, name, f"must be floating, got {ds.dtype}")
            if expected.kind == "i" and kind not in "iu":
                raise ShowerFormatError(self.path, name, f"must be integer, got {ds.dtype}")

    def _read(self, ds: h5py.Dataset, name: str, sel: slice = slice(None)) -> np.ndarray:
        try:
            return ds[sel]
        except (OSError, RuntimeError) as err:
            msg = str(err).splitlines()[0]
            raise ShowerFormatError(
                self.path, name, f"read failed (truncated or corrupt file?): {msg}"
            ) from None

    @property
    def attrs(self) -> dict[str, Any]:
        """File attributes (units, geometry, ...), numpy values converted to Python."""
        out: dict[str, Any] = {}
        for k, v in self._file.attrs.items():
            out[k] = v.tolist() if isinstance(v, np.ndarray | np.generic) else v
        return out

    def read_flat(self, start: int = 0, stop: int | None = None) -> FlatShowers:
        """Showers ``start:stop`` as validated flat columns."""
        start, stop, _ = slice(start, stop).indices(self.n_showers)
        stop = max(start, stop)
        lo, hi = int(self.offsets[start]), int(self.offsets[stop])
        points: dict[str, np.ndarray] = {}
        for name in self.point_names:
            col = self._read(self._file["points"][name], f"points/{name}", slice(lo, hi))
            expected = REQUIRED_POINT_FIELDS.get(name) or OPTIONAL_POINT_FIELDS.get(name)
            points[name] = col.astype(expected, copy=False) if expected is not None else col
        fields = {
            name: self._read(self._file[name], name, slice(start, stop))
            for name in self.field_names
        }
        fields["incident_energy"] = fields["incident_energy"].astype(np.float32, copy=False)
        flat = FlatShowers(self.offsets[start : stop + 1] - lo, points, fields)
        validate_flat(flat, source=str(self.path), allow_empty=self.allow_empty)
        return flat

    def read(self, start: int = 0, stop: int | None = None) -> ak.Array:
        """Showers ``start:stop`` in the data model."""
        return from_flat(self.read_flat(start, stop))

    def iter_chunks(self, chunk_size: int = 1024) -> Iterator[ak.Array]:
        """Yield consecutive chunks of ``chunk_size`` showers (the last may be shorter)."""
        if chunk_size < 1:
            raise ShowerFormatError(self.path, "chunk_size", f"must be >= 1, got {chunk_size}")
        for start in range(0, self.n_showers, chunk_size):
            check_interrupt()  # Ctrl-C between chunks, not after the whole file
            yield self.read(start, min(start + chunk_size, self.n_showers))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> HDF5ShowerReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_hdf5(
    path: str | os.PathLike[str],
    start: int = 0,
    stop: int | None = None,
    *,
    allow_empty: bool = False,
) -> ak.Array:
    """Read showers ``start:stop`` (default: all) from a native HDF5 file."""
    with HDF5ShowerReader(path, allow_empty=allow_empty) as reader:
        return reader.read(start, stop)


def iter_hdf5(
    path: str | os.PathLike[str], chunk_size: int = 1024, *, allow_empty: bool = False
) -> Iterator[ak.Array]:
    """Iterate over a native HDF5 file in chunks of ``chunk_size`` showers."""
    with HDF5ShowerReader(path, allow_empty=allow_empty) as reader:
        yield from reader.iter_chunks(chunk_size)


class HDF5ShowerWriter(AtomicWriter):
    """Streaming writer of the native format; the file appears only when closed successfully.

    Example::

        with HDF5ShowerWriter("out.h5", attrs={"particle": "photon"}) as w:
            for chunk in chunks:
                w.write(chunk)

    Args:
        path: output file.
        attrs: extra file attributes (``units`` and the format attributes are always set).
        compression: ``"gzip"``, ``"lzf"`` or ``None``.
        compression_opts: gzip level.
        chunk_points: HDF5 chunk length of the per-point datasets.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        attrs: Mapping[str, Any] | None = None,
        compression: str | None = "gzip",
        compression_opts: int | None = 4,
        chunk_points: int = 1 << 16,
    ) -> None:
        self.path = Path(path)
        self._tmp = temporary_path(self.path)
        self._file: h5py.File | None = h5py.File(self._tmp, "w")
        self._attrs = dict(attrs or {})
        self._opts: dict[str, Any] = {
            "compression": compression,
            "shuffle": compression is not None,
        }
        if compression == "gzip":
            self._opts["compression_opts"] = compression_opts
        self._chunk_points = chunk_points
        self._schema: tuple[dict[str, np.dtype], dict[str, np.dtype]] | None = None
        self.n_showers = 0
        self.n_points = 0

    def _create(self, flat: FlatShowers) -> None:
        f = self._file
        points = {k: v.dtype for k, v in flat.points.items()}
        fields = {k: v.dtype for k, v in flat.fields.items()}
        self._schema = (points, fields)
        chunk_showers = max(1, self._chunk_points // 16)
        for name, dtype in fields.items():
            f.create_dataset(
                name,
                shape=(0,),
                maxshape=(None,),
                dtype=dtype,
                chunks=(chunk_showers,),
                **self._opts,
            )
        off = f.create_dataset(
            "offsets",
            shape=(1,),
            maxshape=(None,),
            dtype=np.int64,
            chunks=(chunk_showers,),
            **self._opts,
        )
        off[0] = 0
        grp = f.create_group("points")
        for name, dtype in points.items():
            grp.create_dataset(
                name,
                shape=(0,),
                maxshape=(None,),
                dtype=dtype,
                chunks=(self._chunk_points,),
                **self._opts,
            )

    @staticmethod
    def _append(ds: h5py.Dataset, values: np.ndarray) -> None:
        n = ds.shape[0]
        ds.resize((n + len(values),))
        if len(values):
            ds[n:] = values

    def write(self, showers: ak.Array | FlatShowers) -> None:
        """Append showers (all chunks must have the same fields)."""
        check_interrupt()
        flat = showers if isinstance(showers, FlatShowers) else flatten(showers)
        validate_flat(flat, source=str(self.path), allow_empty=True)
        if self._schema is None:
            self._create(flat)
        assert self._schema is not None
        points, fields = self._schema
        if set(flat.points) != set(points) or set(flat.fields) != set(fields):
            raise ShowerFormatError(
                self.path,
                None,
                f"chunk fields {sorted(flat.points)}/{sorted(flat.fields)} differ from the "
                f"first chunk's {sorted(points)}/{sorted(fields)}",
            )
        need = flat.offsets.nbytes + sum(v.nbytes for v in flat.points.values())
        self._check_space(need + sum(v.nbytes for v in flat.fields.values()))
        f = self._file
        try:
            for name, dtype in fields.items():
                self._append(f[name], flat.fields[name].astype(dtype, copy=False))
            for name, dtype in points.items():
                self._append(f["points"][name], flat.points[name].astype(dtype, copy=False))
            self._append(f["offsets"], flat.offsets[1:] + self.n_points)
            f.flush()  # a full disk shows here, as an exception, not later in h5py's cleanup
        except (OSError, RuntimeError) as err:
            self._write_failed(err)
        self.n_showers += flat.n_showers
        self.n_points += flat.n_points

    def _finish(self) -> None:
        if self._schema is None:  # nothing written: an empty but valid file
            self._create(FlatShowers.empty())
        attrs = self._file.attrs
        for k, v in self._attrs.items():
            attrs[k] = v
        attrs["format"] = FORMAT_NAME
        attrs["format_version"] = FORMAT_VERSION
        attrs["units"] = UNITS
        attrs["n_showers"] = self.n_showers


def write_hdf5(
    showers: ak.Array,
    path: str | os.PathLike[str],
    *,
    attrs: Mapping[str, Any] | None = None,
    compression: str | None = "gzip",
) -> Path:
    """Write showers to a native HDF5 file atomically; returns the path."""
    with HDF5ShowerWriter(path, attrs=attrs, compression=compression) as writer:
        writer.write(showers)
    return Path(path)
