"""ROOT TTrees with jagged branches, through uproot.

Default layout (what :class:`RootShowerWriter` writes)::

    TTree "showers"
      incident_energy  float      MeV
      npoints          int32      counter of the jagged branches
      points_E         float[]    MeV
      points_x, points_y (, points_z)  float[]  mm
      points_layer     int32[]

Other layouts are read by naming the branches (:class:`RootBranches`), with an energy scale for
files in GeV.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np

from pointcalo.errors import ShowerFormatError
from pointcalo.interrupts import check as check_interrupt
from pointcalo.io.atomic import AtomicWriter, temporary_path
from pointcalo.showers import (
    OPTIONAL_POINT_FIELDS,
    REQUIRED_POINT_FIELDS,
    FlatShowers,
    flatten,
    from_flat,
    validate_flat,
)


@dataclass(frozen=True)
class RootBranches:
    """Where the data model's fields live in a TTree.

    Attributes:
        tree: TTree name.
        incident_energy: branch with one value per entry.
        E, x, y, layer: jagged branches with one value per point.
        z: optional jagged branch of depths (``None``: no z).
        energy_scale: multiplies energies to give MeV (1000 for files in GeV).
    """

    tree: str = "showers"
    incident_energy: str = "incident_energy"
    E: str = "points_E"
    x: str = "points_x"
    y: str = "points_y"
    layer: str = "points_layer"
    z: str | None = "points_z"
    energy_scale: float = 1.0

    def point_branches(self) -> dict[str, str]:
        out = {"E": self.E, "x": self.x, "y": self.y, "layer": self.layer}
        if self.z is not None:
            out["z"] = self.z
        return out


class RootShowerReader:
    """Reads showers from a TTree; checks that the branches exist when opened."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        branches: RootBranches | None = None,
        *,
        allow_empty: bool = False,
    ) -> None:
        import uproot

        self.path = Path(path)
        self.branches = branches or RootBranches()
        self.allow_empty = allow_empty
        if not self.path.exists():
            raise ShowerFormatError(self.path, None, "no such file")
        try:
            self._file = uproot.open(self.path)
        except Exception as err:  # uproot raises many types for non-ROOT input
            msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ShowerFormatError(self.path, None, f"not a readable ROOT file: {msg}") from None
        b = self.branches
        if b.tree not in self._file:
            trees = [k.split(";")[0] for k in self._file.keys(recursive=False)]
            raise ShowerFormatError(
                self.path, b.tree, f"no such TTree (file has: {', '.join(trees) or 'nothing'})"
            )
        self._tree = self._file[b.tree]
        names = set(self._tree.keys())
        self.point_map = {k: v for k, v in b.point_branches().items() if k != "z" or v in names}
        for field, branch in [("incident_energy", b.incident_energy), *self.point_map.items()]:
            if branch not in names:
                raise ShowerFormatError(
                    self.path,
                    branch,
                    f"missing branch for '{field}' (tree has: {', '.join(sorted(names))})",
                )
        self.n_showers = int(self._tree.num_entries)

    def read_flat(self, start: int = 0, stop: int | None = None) -> FlatShowers:
        start, stop, _ = slice(start, stop).indices(self.n_showers)
        b = self.branches
        wanted = [b.incident_energy, *self.point_map.values()]
        try:
            arrays = self._tree.arrays(
                wanted, entry_start=start, entry_stop=max(start, stop), library="ak"
            )
        except Exception as err:
            msg = str(err).strip().splitlines()[0]
            raise ShowerFormatError(self.path, b.tree, f"read failed: {msg}") from None
        try:
            inc = ak.to_numpy(arrays[b.incident_energy])
        except ValueError:  # jagged: lists of different lengths
            inc = np.zeros((0, 0))
        if inc.ndim != 1:
            raise ShowerFormatError(
                self.path, b.incident_energy, "must hold one value per entry, not a list"
            )
        counts = None
        points: dict[str, np.ndarray] = {}
        for field, branch in self.point_map.items():
            col = arrays[branch]
            if col.ndim != 2:
                raise ShowerFormatError(self.path, branch, "must be a jagged (per-point) branch")
            n = ak.to_numpy(ak.num(col, axis=1))
            if counts is None:
                counts = n
            elif not np.array_equal(counts, n):
                raise ShowerFormatError(
                    self.path, branch, f"has other lengths per entry than {b.E}"
                )
            values = ak.to_numpy(ak.flatten(col))
            dtype = REQUIRED_POINT_FIELDS.get(field) or OPTIONAL_POINT_FIELDS.get(field)
            if dtype is not None and dtype.kind == "i" and values.dtype.kind not in "iu":
                raise ShowerFormatError(self.path, branch, f"must be integer, got {values.dtype}")
            if values.dtype.kind not in "fiu":
                raise ShowerFormatError(self.path, branch, f"non-numeric dtype {values.dtype}")
            points[field] = values.astype(dtype, copy=False)
        assert counts is not None
        if b.energy_scale != 1.0:
            inc = inc * b.energy_scale
            points["E"] = points["E"] * np.float32(b.energy_scale)
        offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        flat = FlatShowers(offsets, points, {"incident_energy": inc.astype(np.float32)})
        validate_flat(flat, source=str(self.path), allow_empty=self.allow_empty)
        return flat

    def read(self, start: int = 0, stop: int | None = None) -> ak.Array:
        return from_flat(self.read_flat(start, stop))

    def iter_chunks(self, chunk_size: int = 1024) -> Iterator[ak.Array]:
        for start in range(0, self.n_showers, chunk_size):
            check_interrupt()  # Ctrl-C between chunks, not after the whole file
            yield self.read(start, min(start + chunk_size, self.n_showers))

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> RootShowerReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_root(
    path: str | os.PathLike[str],
    start: int = 0,
    stop: int | None = None,
    *,
    branches: RootBranches | None = None,
    allow_empty: bool = False,
) -> ak.Array:
    """Read entries ``start:stop`` of a TTree into the data model."""
    with RootShowerReader(path, branches, allow_empty=allow_empty) as reader:
        return reader.read(start, stop)


class RootShowerWriter(AtomicWriter):
    """Streaming TTree writer in the default layout; the file appears only when closed."""

    def __init__(self, path: str | os.PathLike[str], *, tree: str = "showers") -> None:
        import uproot

        self.path = Path(path)
        self._tmp = temporary_path(self.path)
        self._file: Any = uproot.recreate(self._tmp)
        self._tree_name = tree
        self._tree: Any = None
        self.n_showers = 0

    def write(self, showers: ak.Array | FlatShowers) -> None:
        check_interrupt()
        flat = showers if isinstance(showers, FlatShowers) else flatten(showers)
        validate_flat(flat, source=str(self.path), allow_empty=True)
        offsets = flat.offsets
        record = ak.zip(
            {
                k: ak.unflatten(v, np.diff(offsets))
                for k, v in flat.points.items()
                if k in REQUIRED_POINT_FIELDS or k in OPTIONAL_POINT_FIELDS
            }
        )
        data = {"incident_energy": flat.fields["incident_energy"], "points": record}
        if self._tree is None:
            self._tree = self._file.mktree(
                self._tree_name,
                {"incident_energy": np.float32, "points": record.type.content},
                counter_name=lambda name: f"n{name}",
            )
        self._tree.extend(data)
        self.n_showers += flat.n_showers

    def _finish(self) -> None:
        if self._tree is None:  # nothing written: an empty tree
            self.write(FlatShowers.empty())


def write_root(showers: ak.Array, path: str | os.PathLike[str], *, tree: str = "showers") -> Path:
    """Write showers to a ROOT file atomically; returns the path."""
    with RootShowerWriter(path, tree=tree) as writer:
        writer.write(showers)
    return Path(path)
