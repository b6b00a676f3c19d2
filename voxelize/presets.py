"""Grid presets: the ILD-like ECAL of the shared Geant4 sample, CaloGAN and CaloChallenge.

The same grids are written as YAML in ``voxelize/geometry/`` (a test keeps them equal).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from voxelize.gridfiles import BINNING_DIR, grid_from_dict, grid_from_xml, grid_from_yaml
from voxelize.grids import CartesianGrid, CylindricalGrid, Grid, GridError

ILD_CELL_MM = 5.088
#: Thickness of each ILD-like layer (tungsten + 0.5 mm silicon): 2.6 mm for layers 0-19,
#: 4.7 mm for layers 20-29 (shared/data/README.md).
ILD_LAYER_PITCH_MM = np.array([2.6] * 20 + [4.7] * 10)
#: Depth of the middle of each silicon sensor from the front face (attribute
#: ``layer_depth_mm`` of the shared sample): absorber of the layer, then half the 0.5 mm sensor.
ILD_LAYER_DEPTH_MM = np.concatenate([[0.0], np.cumsum(ILD_LAYER_PITCH_MM)[:-1]]) + (
    ILD_LAYER_PITCH_MM - 0.25
)


def ild(n_cells: int = 30) -> CartesianGrid:
    """ILD-like Si-W ECAL: 30 layers of ``n_cells x n_cells`` cells of 5.088 mm.

    Cell centres sit at x, y = 0, +-5.088, ... as in the shared Geant4 sample (whose 0.848 mm
    sub-cells tile each cell 6 x 6), so an even ``n_cells`` has one more cell on the + side:
    x from ``-(n_cells // 2 - 0.5) * 5.088`` (-73.776 mm for 30 cells). Layer boundaries in
    depth follow the absorber + sensor stack (0, 2.6, ..., 52.0, 56.7, ..., 99.0 mm).
    """
    origin = (
        -(n_cells // 2 - 0.5) * ILD_CELL_MM if n_cells % 2 == 0 else -(n_cells / 2) * ILD_CELL_MM
    )
    return CartesianGrid.uniform(
        "ild",
        30,
        (n_cells, n_cells),
        (ILD_CELL_MM, ILD_CELL_MM),
        (origin, origin),
        layer_depth=ILD_LAYER_DEPTH_MM,
        layer_edges=np.concatenate([[0.0], np.cumsum(ILD_LAYER_PITCH_MM)]),
    )


def ild_cylindrical() -> CylindricalGrid:
    """A cylindrical grid on the ILD-like ECAL's 30 layers with the CaloChallenge dataset-2
    binning: 16 angular x 9 radial bins of 4.65 mm (to 41.85 mm, about 4.6 Moliere radii of
    tungsten), 4,320 voxels; the grid of pointcalo's grid models."""
    r_edges = 4.65 * np.arange(10)
    return CylindricalGrid(
        name="ild-cylindrical",
        r_edges=tuple(r_edges for _ in range(30)),
        n_alpha=np.full(30, 16, np.int64),
        layer_depth=ILD_LAYER_DEPTH_MM,
        layer_edges=np.concatenate([[0.0], np.cumsum(ILD_LAYER_PITCH_MM)]),
    )


def calogan() -> CartesianGrid:
    """CaloGAN's three-layer LAr-Pb calorimeter (Paganini, de Oliveira, Nachman, 1705.02355).

    Images ``3 x 96``, ``12 x 12`` and ``12 x 6`` (rows = y = phi, columns = x = eta) with cells
    (x, y) of 5 x 160, 40 x 40 and 80 x 40 mm, each layer spanning 480 x 480 mm centred on the
    axis; layer thicknesses 90, 347 and 43 mm.
    """
    thickness = np.array([90.0, 347.0, 43.0])
    edges = np.concatenate([[0.0], np.cumsum(thickness)])
    return CartesianGrid(
        name="calogan",
        nx=np.array([96, 12, 6]),
        ny=np.array([3, 12, 12]),
        dx=np.array([5.0, 40.0, 80.0]),
        dy=np.array([160.0, 40.0, 40.0]),
        x_min=np.full(3, -240.0),
        y_min=np.full(3, -240.0),
        layer_depth=0.5 * (edges[1:] + edges[:-1]),
        layer_edges=edges,
    )


#: CaloChallenge datasets 2 and 3 (Geant4 Par04): 45 readout layers, each two sublayers of
#: 1.4 mm tungsten + 0.3 mm silicon, i.e. 3.4 mm per readout layer.
CALOCHALLENGE_LAYER_MM = 3.4


def calochallenge(dataset: str) -> CylindricalGrid:
    """CaloChallenge 2022 binning: ``"1-photons"``, ``"1-pions"``, ``"2"`` or ``"3"``.

    Read from the binning XML files shipped with voxelize. Datasets 2 and 3 get layer depths
    of 3.4 mm pitch; dataset 1 (ATLAS samplings, 24 layer ids of which 5 or 7 are binned) has
    no depths.
    """
    files = {
        "1-photons": ("binning_dataset_1_photons.xml", "photon"),
        "1-pions": ("binning_dataset_1_pions.xml", "pion"),
        "2": ("binning_dataset_2.xml", None),
        "3": ("binning_dataset_3.xml", None),
    }
    if dataset not in files:
        raise ValueError(f"unknown CaloChallenge dataset {dataset!r}: use one of {list(files)}")
    fname, particle = files[dataset]
    grid = grid_from_xml(BINNING_DIR / fname, name=f"calochallenge-{dataset}", particle=particle)
    if dataset in ("2", "3"):
        n = grid.n_layers
        edges = np.arange(n + 1) * CALOCHALLENGE_LAYER_MM
        return CylindricalGrid(
            name=grid.name,
            r_edges=grid.r_edges,
            n_alpha=grid.n_alpha,
            layer_depth=0.5 * (edges[1:] + edges[:-1]),
            layer_edges=edges,
        )
    return grid


PRESETS: dict[str, Callable[[], Grid]] = {
    "ild": ild,
    "ild-cylindrical": ild_cylindrical,
    "calogan": calogan,
    "calochallenge-1-photons": lambda: calochallenge("1-photons"),
    "calochallenge-1-pions": lambda: calochallenge("1-pions"),
    "calochallenge-2": lambda: calochallenge("2"),
    "calochallenge-3": lambda: calochallenge("3"),
}


def load_grid(spec: str | Path | dict[str, Any] | Grid) -> Grid:
    """A grid from a preset name (``ild``, ``calogan``, ``calochallenge-2`` ...), a YAML or
    XML file, or a dict."""
    if isinstance(spec, Grid):
        return spec
    if isinstance(spec, dict):
        return grid_from_dict(spec)
    key = str(spec)
    if key in PRESETS:
        return PRESETS[key]()
    path = Path(spec)
    if path.suffix.lower() in (".yaml", ".yml"):
        return grid_from_yaml(path)
    if path.suffix.lower() == ".xml":
        return grid_from_xml(path)
    known = ", ".join(sorted(PRESETS))
    raise GridError(f"unknown grid {key!r}: give a preset ({known}) or a .yaml/.xml file")
