"""Shower file formats; every reader returns the data model and every writer takes it.

The format follows the file extension: ``.h5``/``.hdf5`` native HDF5 (:mod:`pointcalo.io.hdf5`),
``.root`` ROOT TTree (:mod:`pointcalo.io.root`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from pointcalo.errors import PointcaloError, ShowerFormatError
from pointcalo.io.hdf5 import (
    HDF5ShowerReader,
    HDF5ShowerWriter,
    iter_hdf5,
    read_hdf5,
    write_hdf5,
)
from pointcalo.io.lazy import lazy_showers
from pointcalo.io.root import (
    RootBranches,
    RootShowerReader,
    RootShowerWriter,
    read_root,
    write_root,
)

__all__ = [
    "HDF5ShowerReader",
    "HDF5ShowerWriter",
    "RootBranches",
    "RootShowerReader",
    "RootShowerWriter",
    "convert",
    "format_of",
    "iter_hdf5",
    "iter_showers",
    "open_reader",
    "open_writer",
    "read",
    "read_dask",
    "read_fields",
    "read_hdf5",
    "read_root",
    "write",
    "write_hdf5",
    "write_root",
]

_FORMATS = {".h5": "hdf5", ".hdf5": "hdf5", ".hdf": "hdf5", ".root": "root"}


def format_of(path: str | os.PathLike[str]) -> str:
    """``"hdf5"`` or ``"root"`` from the file extension; a clear error otherwise."""
    suffix = Path(path).suffix.lower()
    try:
        return _FORMATS[suffix]
    except KeyError:
        known = ", ".join(sorted(_FORMATS))
        raise ShowerFormatError(
            path, None, f"unknown file extension '{suffix}' (known: {known})"
        ) from None


def open_reader(
    path: str | os.PathLike[str], *, allow_empty: bool = False, **kwargs: Any
) -> HDF5ShowerReader | RootShowerReader:
    """A reader for ``path`` chosen by extension (use as a context manager). ROOT files written
    by full simulation in EDM4hep are recognised by their content and read as showers, one per
    event (``collections``, ``encoding``: :mod:`pointcalo.io.edm4hep`)."""
    if format_of(path) == "root":
        from pointcalo.io.edm4hep import EDM4hepReader, is_edm4hep

        if Path(path).exists() and is_edm4hep(path):
            options = {k: kwargs[k] for k in ("collections", "encoding") if kwargs.get(k)}
            return EDM4hepReader(path, allow_empty=allow_empty, **options)
        return RootShowerReader(path, kwargs.pop("branches", None), allow_empty=allow_empty)
    return HDF5ShowerReader(path, allow_empty=allow_empty)


def open_writer(path: str | os.PathLike[str], **kwargs: Any) -> HDF5ShowerWriter | RootShowerWriter:
    """A streaming, atomic writer for ``path`` chosen by extension."""
    if format_of(path) == "root":
        return RootShowerWriter(path, **kwargs)
    return HDF5ShowerWriter(path, **kwargs)


def read(
    path: str | os.PathLike[str], start: int = 0, stop: int | None = None, **kwargs: Any
) -> ak.Array:
    """Read showers ``start:stop`` (default: all) from any supported file."""
    with open_reader(path, **kwargs) as reader:
        return reader.read(start, stop)


def read_dask(
    paths: str | os.PathLike[str] | list[Any], chunk_size: int = 10_000, **reader_options: Any
):
    """A lazy ``dask_awkward.Array`` of the showers of ``paths`` (files or glob patterns, in
    order), one partition per ``chunk_size`` showers of a file, with :func:`read`'s data model
    (:mod:`pointcalo.io.lazy`; needs ``pointcalo[dask]``)."""
    return lazy_showers(paths, chunk_size, open_reader, read, reader_options)


def iter_showers(
    path: str | os.PathLike[str], chunk_size: int = 1024, **kwargs: Any
) -> Iterator[ak.Array]:
    """Iterate over any supported file in chunks of ``chunk_size`` showers."""
    if int(chunk_size) < 1:
        raise PointcaloError(f"iter_showers: chunk_size must be >= 1, got {chunk_size}")
    with open_reader(path, **kwargs) as reader:
        yield from reader.iter_chunks(chunk_size)


def write(showers: ak.Array, path: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write showers atomically to any supported file."""
    with open_writer(path, **kwargs) as writer:
        writer.write(showers)
    return Path(path)


def read_fields(
    path: str, names: list[str], option: str = "--conditions-from"
) -> dict[str, np.ndarray]:
    """The per-shower fields ``names`` (named conditions, :mod:`pointcalo.conditions`) of
    every shower of a shower file, in its order (float64 columns), streamed chunk by chunk; a
    file without showers or without a named field is a one-line error naming the ``option``
    that gave the file."""
    from pointcalo.conditions import select

    cols: dict[str, list[np.ndarray]] = {k: [] for k in names}
    with open_reader(path) as reader:
        for chunk in reader.iter_chunks(65536):
            fields = {k: np.asarray(chunk[k]) for k in chunk.fields if k != "points"}
            for k, v in select(fields, tuple(names), f"{option}: {path}").items():
                cols[k].append(v)
    if not cols[names[0]] or sum(len(c) for c in cols[names[0]]) == 0:
        raise PointcaloError(f"{option}: {path} holds no showers to take conditions from")
    return {k: np.concatenate(v) for k, v in cols.items()}


def convert(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    *,
    chunk_size: int = 1024,
    progress: Any = None,
    voxel_points: str | None = None,
    **reader_options: Any,
) -> int:
    """Copy showers from ``src`` to ``dst`` chunk by chunk (memory bounded by the chunk);
    ``reader_options`` go to :func:`open_reader` (e.g. EDM4hep ``collections``). A
    CaloChallenge-layout voxel file is converted only when ``voxel_points`` says how each
    non-empty voxel becomes a point: ``centre`` (at the voxel's centre: projects back onto
    the same voxels exactly) or ``uniform`` (uniform inside the cell, seeded).

    Args:
        progress: optional callable receiving the number of showers done after each chunk.

    Returns:
        The number of showers written.
    """
    format_of(dst)  # fail on a bad output name before reading anything
    from pointcalo.io.calochallenge import voxel_file_grid

    if voxel_file_grid(src) is not None:
        return _convert_voxels(src, dst, chunk_size, progress, voxel_points)
    with open_reader(src, **reader_options) as reader, open_writer(dst) as writer:
        for chunk in reader.iter_chunks(chunk_size):
            writer.write(chunk)
            if progress is not None:
                progress(writer.n_showers)
        return writer.n_showers


def _convert_voxels(src, dst, chunk_size: int, progress: Any, mode: str | None) -> int:
    """A CaloChallenge voxel file as point showers (:func:`convert`)."""
    import h5py

    from pointcalo.io.calochallenge import file_grid, read_calochallenge_showers

    if mode not in ("centre", "uniform"):
        raise ShowerFormatError(
            str(src), None, "a CaloChallenge voxel file: give --voxel-points centre or uniform "
            "to turn each non-empty voxel into a point",
        )  # fmt: skip
    grid = file_grid(src)
    with h5py.File(src) as f:
        n = int(f["showers"].shape[0])
    attrs = {"attrs": {"source": str(src), "voxel_points": mode}}
    with open_writer(dst, **(attrs if format_of(dst) == "hdf5" else {})) as writer:
        for start in range(0, n, chunk_size):
            stop = min(start + chunk_size, n)
            chunk = read_calochallenge_showers(
                src, grid, mode=mode, start=start, stop=stop, seed=start
            )
            writer.write(chunk)
            if progress is not None:
                progress(writer.n_showers)
        return writer.n_showers


SHARD_KEYS = (
    "shard_world",
    "shard_total",
    "shard_seed",
    "shard_model",
    "shard_checksum",
    "shard_conditions",
)


def check_shards(paths: list[str | os.PathLike[str]]) -> None:
    """Shards written by ``torchrun ... pointcalo sample`` (HDF5 attributes ``shard_*``) must
    form one complete set, in rank order: same model, seed, conditions asked for, request size
    and number of ranks, every rank once, each starting where the previous one ended. Files
    without shard attributes are joined as given; a mix of both is refused."""
    attrs = []
    for path in paths:
        with open_reader(path, allow_empty=True) as reader:
            attrs.append(dict(getattr(reader, "attrs", {}) or {}))
    tagged = ["shard_rank" in a for a in attrs]
    if not any(tagged):
        return
    if not all(tagged):
        plain = paths[tagged.index(False)]
        raise ShowerFormatError(plain, None, "not a shard of the others (no shard attributes)")
    first = attrs[0]
    for path, a in zip(paths, attrs, strict=True):
        for key in SHARD_KEYS:
            if str(a.get(key)) != str(first.get(key)):
                raise ShowerFormatError(
                    path,
                    key,
                    f"{a.get(key)} differs from {first.get(key)} of {paths[0]}: "
                    "shards of different sampling runs",
                )
    world = int(first["shard_world"])
    ranks = [int(a["shard_rank"]) for a in attrs]
    if ranks != list(range(world)):
        raise PointcaloError(
            f"merge: shard ranks {ranks}, expected 0..{world - 1} once each, in order"
        )
    end = 0
    for path, a in zip(paths, attrs, strict=True):
        if int(a["shard_first"]) != end:
            raise ShowerFormatError(path, "shard_first", f"{a['shard_first']}, expected {end}")
        end += int(a["shard_count"])
    if end != int(first["shard_total"]):
        raise PointcaloError(f"merge: the shards hold {end} of {first['shard_total']} showers")


def merge(
    paths: list[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    chunk_size: int = 1024,
    **kwargs: Any,
) -> int:
    """Join shower files in the given order into ``out`` (streamed chunk by chunk, atomic);
    returns the number of showers written. Shard sets of ``torchrun ... pointcalo sample``
    are joined in rank order by passing them sorted."""
    if not paths:
        raise ShowerFormatError(None, None, "merge: no input files")
    check_shards(paths)
    n = 0
    with open_writer(out, **kwargs) as writer:
        for path in paths:
            with open_reader(path, allow_empty=True) as reader:
                for chunk in reader.iter_chunks(chunk_size):
                    writer.write(chunk)
                    n += len(chunk)
    return n
