"""Where the readout grid sits relative to the shower axis.

A real particle enters the calorimeter anywhere in a cell; the Geant4 samples hit the front face
at ``x = y = 0``, the centre of a cell of the ILD-like grid. A figure measured on that one
alignment can hide a generator that is tuned to it (hit counts, cell spectra and radial
profiles change when the axis moves within a cell). The evaluation therefore projects every
sample onto the grid at several alignments (CaloClouds II evaluates on one; the CaloChallenge
has one fixed geometry; here the headline is the worst of them):

- ``centred``: the shower axis on a cell centre (the data as recorded);
- ``half-cell``: the axis moved by half a cell in x and in y (onto a cell corner);
- ``random``: a random offset per shower, uniform over one cell, the same offset for shower
  ``i`` of every sample (a hash of the seed and the shower's index in its file), so reference
  and generated showers at the same index are compared at the same alignment.

Moving the showers by an offset is the same as moving the grid the other way. When the data
sit on a lattice finer than the cell (Geant4's 0.848 mm sub-cells, six per 5.088 mm cell) the
offsets are whole multiples of the lattice pitch, so no sub-cell is split between cells and the
projection stays exact.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

import voxelize as vx
from pointcalo.errors import PointcaloError

ALIGNMENTS: tuple[str, ...] = ("centred", "half-cell", "random")


def splitmix64(keys: np.ndarray) -> np.ndarray:
    """splitmix64 of uint64 keys: a fixed pseudo-random number per key (no state)."""
    z = keys.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def cell_pitch(grid: vx.Grid) -> tuple[float, float]:
    """``(dx, dy)`` mm of a Cartesian grid whose layers share one cell size."""
    if not isinstance(grid, vx.CartesianGrid):
        raise PointcaloError(
            f"grid '{grid.name}': alignments other than 'centred' need a Cartesian grid"
        )
    dx, dy = np.unique(grid.dx), np.unique(grid.dy)
    if len(dx) != 1 or len(dy) != 1:
        raise PointcaloError(
            f"grid '{grid.name}': alignments other than 'centred' need one cell size in all layers"
        )
    return float(dx[0]), float(dy[0])


def offsets(
    alignment: str,
    grid: vx.Grid,
    n: int,
    *,
    first_index: int = 0,
    seed: int = 0,
    lattice: float | None = None,
) -> np.ndarray:
    """``[n, 2]`` offsets (mm) by which showers ``first_index .. first_index + n - 1`` of a
    file are moved before projection onto ``grid``. ``lattice``: pitch (mm) of the data's
    point lattice; random offsets are then whole multiples of it (see the module docstring)."""
    if alignment not in ALIGNMENTS:
        raise PointcaloError(f"alignment '{alignment}' is not one of {', '.join(ALIGNMENTS)}")
    if alignment == "centred":
        return np.zeros((n, 2))
    dx, dy = cell_pitch(grid)
    if alignment == "half-cell":
        return np.tile([0.5 * dx, 0.5 * dy], (n, 1))
    index = np.arange(first_index, first_index + n, dtype=np.uint64)
    key = (np.uint64(seed) << np.uint64(40)) + index * np.uint64(2)
    u = np.stack([splitmix64(key), splitmix64(key + np.uint64(1))], axis=1)
    u = (u >> np.uint64(11)).astype(np.float64) / float(1 << 53)  # uniform in [0, 1)
    out = np.empty((n, 2))
    for j, pitch in enumerate((dx, dy)):
        steps = round(pitch / lattice) if lattice else 0
        if steps >= 2 and abs(steps * lattice - pitch) < 1e-6 * pitch:
            k = np.floor(u[:, j] * steps) - steps // 2  # -steps/2 .. steps/2 - 1
            out[:, j] = k * lattice
        else:
            out[:, j] = (u[:, j] - 0.5) * pitch
    return out


def shift(showers: ak.Array, by: np.ndarray) -> ak.Array:
    """``showers`` with every point of shower ``i`` moved by ``by[i] = (dx, dy)`` mm."""
    if not np.any(by):
        return showers
    pts = showers.points
    pts = ak.with_field(pts, pts.x + by[:, 0].astype(np.float32), "x")
    pts = ak.with_field(pts, pts.y + by[:, 1].astype(np.float32), "y")
    return ak.with_field(showers, pts, "points")


def infer_lattice(showers: ak.Array, cell: float) -> float | None:
    """The pitch (mm) of the lattice the points of ``showers`` sit on, when they sit on one
    whose pitch divides ``cell``: the smallest gap between distinct x positions, accepted when
    every x and y is a lattice-cell centre ``(k + 1/2) pitch``. None otherwise."""
    pts = ak.flatten(showers.points)
    if len(pts) == 0:
        return None
    x = np.unique(ak.to_numpy(pts.x).astype(np.float64))
    gaps = np.diff(x)
    gaps = gaps[gaps > 1e-4]
    if len(gaps) == 0:
        return None
    pitch = float(np.min(gaps))
    steps = round(cell / pitch)
    if steps < 1 or abs(steps * pitch - cell) > 1e-3 * cell:
        return None
    pitch = cell / steps
    for col in (pts.x, pts.y):
        k = ak.to_numpy(col).astype(np.float64) / pitch - 0.5
        if np.max(np.abs(k - np.round(k)), initial=0.0) > 1e-3:
            return None
    return pitch


def file_lattice(path, grid: vx.Grid, n: int = 64) -> float | None:
    """:func:`infer_lattice` of the first ``n`` showers of a shower file, for ``grid``'s cell."""
    from pointcalo import io

    return infer_lattice(io.read(path, 0, n), cell_pitch(grid)[0])
