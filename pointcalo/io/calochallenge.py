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
