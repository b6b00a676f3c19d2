"""voxelize: project calorimeter point clouds onto detector grids and back.

Grids (:mod:`voxelize.grids`, presets in :mod:`voxelize.presets`), projection and its inverse
(:mod:`voxelize.project`), CaloChallenge voxel files (:mod:`voxelize.calochallenge_files`) and
local <-> global placement (:mod:`voxelize.placement`). Depends on numpy (torch optional) and
never imports pointcalo.
"""

from __future__ import annotations

from voxelize.gridfiles import grid_from_dict, grid_from_xml, grid_from_yaml
from voxelize.grids import CartesianGrid, CylindricalGrid, Grid, GridError, RectilinearGrid
from voxelize.presets import PRESETS, calochallenge, calogan, ild, load_grid
from voxelize.project import PointCloud, Projection, project, to_points

__all__ = [
    "PRESETS",
    "CartesianGrid",
    "CylindricalGrid",
    "Grid",
    "GridError",
    "PointCloud",
    "Projection",
    "RectilinearGrid",
    "calochallenge",
    "calogan",
    "grid_from_dict",
    "grid_from_xml",
    "grid_from_yaml",
    "ild",
    "load_grid",
    "project",
    "to_points",
]
