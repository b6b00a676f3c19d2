"""CaloChallenge 2022 voxel files as showers in the data model, and showers as such files.

Reading turns each non-empty voxel into a point (:func:`voxelize.to_points`: at the cell
centre, or spread uniformly inside the cell); writing projects points onto the dataset's
cylindrical grid (:func:`voxelize.project`), so point-cloud models can be scored with the
challenge's own tools.
"""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np

import voxelize
from pointcalo.errors import ShowerFormatError
from pointcalo.showers import make_showers
from voxelize.calochallenge_files import read_calochallenge, write_calochallenge
from voxelize.grids import Grid, GridError


def read_calochallenge_showers(
    path: str | os.PathLike[str],
    grid: Grid | str = "calochallenge-2",
    *,
    mode: str = "centre",
    points_per_voxel: int = 1,
    start: int = 0,
    stop: int | None = None,
    seed: int = 0,
) -> ak.Array:
    """Read a CaloChallenge file as point-cloud showers (with per-point ``z`` when the grid
    knows its layer depths)."""
    try:
        energy, voxels = read_calochallenge(path, grid, start, stop)
        cloud = voxelize.to_points(
            voxels, grid, mode=mode, points_per_voxel=points_per_voxel, seed=seed
        )
    except GridError as err:
        raise ShowerFormatError(None, None, str(err)) from None
    points = {"E": cloud.E, "x": cloud.x, "y": cloud.y, "layer": cloud.layer}
    if cloud.z is not None:
        points["z"] = cloud.z
    return make_showers(
        energy.astype(np.float32), points, offsets=cloud.ptr, allow_empty=True, source=str(path)
    )


def write_calochallenge_showers(
    showers: ak.Array, path: str | os.PathLike[str], grid: Grid | str = "calochallenge-2", **kw
) -> Path:
    """Project showers onto a CaloChallenge grid and write the challenge's file format.

    Extra keyword arguments (``layer_map``, ``source_depth``) go to :func:`voxelize.project`.
    """
    try:
        proj = voxelize.project(showers, grid, **kw)
    except GridError as err:
        raise ShowerFormatError(path, None, str(err)) from None
    return write_calochallenge(path, ak.to_numpy(showers.incident_energy), proj.voxels)


def voxel_file_grid(path: str | os.PathLike[str]) -> str | None:
    """The grid name of a CaloChallenge-layout voxel file (``""`` when it names none), or None
    when ``path`` is not a voxel file (a point-shower file)."""
    import h5py

    path = Path(path)
    if path.suffix.lower() not in (".h5", ".hdf5", ".hdf") or not path.exists():
        return None
    if not h5py.is_hdf5(path):
        return None
    with h5py.File(path) as f:
        if "showers" in f and "incident_energies" in f:
            g = f.attrs.get("grid", "")
            return g.decode() if isinstance(g, bytes) else str(g)
    return None


#: The CaloChallenge presets, to tell a voxel file's dataset by its number of voxels.
CHALLENGE_GRIDS = (
    "calochallenge-1-photons",
    "calochallenge-1-pions",
    "calochallenge-2",
    "calochallenge-3",
)


def file_grid(path: str | os.PathLike[str]) -> Grid:
    """The grid of a CaloChallenge-layout voxel file: the one its ``grid`` attribute names
    (files pointcalo wrote), else the challenge dataset with its number of voxels (the
    challenge's own files name none; 368, 533, 6,480 and 40,500 voxels tell them apart)."""
    import h5py

    name = voxel_file_grid(path)
    if name is None:
        raise ShowerFormatError(str(path), None, "not a CaloChallenge voxel file")
    if name:
        try:
            return voxelize.load_grid(name)
        except GridError:
            pass  # a grid pointcalo does not know by name: tell it by its size
    with h5py.File(path) as f:
        n = int(f["showers"].shape[1])
    for preset in CHALLENGE_GRIDS:
        grid = voxelize.load_grid(preset)
        if grid.n_voxels == n:
            return grid
    raise ShowerFormatError(
        str(path), "showers", f"{n} voxels: not a CaloChallenge dataset and names no grid"
    )
