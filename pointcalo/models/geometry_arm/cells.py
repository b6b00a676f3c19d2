"""The geometry a geometry-aware autoregressive model reads: per layer of a cartesian grid, the
cells in generation order (a spiral out from the shower axis), each cell's own size and
position, its causal neighbours (the ``k`` nearest cells generated before it) and the maps
that carry the energy of an earlier layer onto its cells.

Everything here is a function of the grid alone, so one model serves any segmentation: the
network never sees a cell index, only sizes, positions and neighbours' energies (Liu, Ghosh,
Smith, Baldi, Whiteson, "Geometry-aware Autoregressive Models for Calorimeter Shower
Simulations", NeurIPS ML4PS 2022). Lengths are in mm; features are scaled by :data:`LENGTH`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

import voxelize as vx
from pointcalo.errors import ConfigError

#: The length (mm) positions and sizes are measured in for the network.
LENGTH = 50.0
#: Per-cell static features: x, y, r (in LENGTH), log of the cell's width and height (in 10 mm).
N_STATIC = 5


@dataclass
class LayerCells:
    """One layer of a grid as the model generates it (``n`` cells).

    ``order [n]``: the layer's voxel index (row-major ``iy * nx + ix``) of the ``t``-th cell
    generated; ``static [n, N_STATIC]`` float32: its features; ``nb [n, k]``: generation
    positions of its ``k`` causal neighbours (``n`` where it has fewer: a zero pad slot);
    ``rel [n, k, 3]`` float32: each neighbour's offset (dx, dy in LENGTH) and 1 (0 for the
    pad); ``r [n]``: the cell centre's distance from the axis (mm); ``x_edges``, ``y_edges``:
    the layer's cell edges (mm)."""

    order: np.ndarray
    static: np.ndarray
    nb: np.ndarray
    rel: np.ndarray
    r: np.ndarray
    x_edges: np.ndarray
    y_edges: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.y_edges) - 1, len(self.x_edges) - 1

    def __len__(self) -> int:
        return len(self.order)


def overlap(a: np.ndarray, b: np.ndarray, widen: float = 0.0) -> np.ndarray:
    """``[len(a) - 1, len(b) - 1]``: the fraction of each interval of edges ``b`` that lies in
    each interval of edges ``a`` (widened by ``widen`` of its own width on both sides)."""
    lo, hi = a[:-1], a[1:]
    w = hi - lo
    lo, hi = lo - widen * w, hi + widen * w
    inter = np.minimum(hi[:, None], b[None, 1:]) - np.maximum(lo[:, None], b[None, :-1])
    return (np.clip(inter, 0.0, None) / np.diff(b)[None, :]).astype(np.float32)


def spiral_order(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cells ordered on a square spiral out from the axis: by ``max(|x|, |y|)``, then by the
    angle around the axis."""
    ring = np.round(np.maximum(np.abs(x), np.abs(y)), 3)
    return np.lexsort((np.arctan2(y, x), ring))


def layer_cells(grid: vx.Grid, layer: int, k: int) -> LayerCells:
    """The :class:`LayerCells` of ``grid``'s ``layer`` with ``k`` causal neighbours per cell
    (cells of any size: each carries its own)."""
    x_edges, y_edges = grid.cell_edges(layer)
    nx = len(x_edges) - 1
    iy, ix = np.divmod(np.arange(nx * (len(y_edges) - 1)), nx)
    x = 0.5 * (x_edges[ix] + x_edges[ix + 1])
    y = 0.5 * (y_edges[iy] + y_edges[iy + 1])
    dx, dy = np.diff(x_edges)[ix], np.diff(y_edges)[iy]
    order = spiral_order(x, y)
    x, y, dx, dy = x[order], y[order], dx[order], dy[order]
    n = len(order)
    r = np.hypot(x, y)
    static = np.stack(
        [x / LENGTH, y / LENGTH, r / LENGTH, np.log(dx / 10.0), np.log(dy / 10.0)], 1
    ).astype(np.float32)
    # causal neighbours: the k nearest of the cells generated before (found among the 4k + 8
    # nearest of all cells; a cell near the start of the spiral has fewer)
    nb = np.full((n, k), n, np.int64)
    if n > 1 and k > 0:
        want = min(n, 4 * k + 8)
        _, near = cKDTree(np.stack([x, y], 1)).query(np.stack([x, y], 1), want)
        near = np.asarray(near).reshape(n, want)
        for t in range(n):
            earlier = near[t][near[t] < t][:k]
            nb[t, : len(earlier)] = earlier
    valid = nb < n
    xp, yp = np.append(x, 0.0), np.append(y, 0.0)
    rel = np.stack(
        [(xp[nb] - x[:, None]) / LENGTH * valid, (yp[nb] - y[:, None]) / LENGTH * valid, valid], 2
    ).astype(np.float32)
    return LayerCells(order, static, nb, rel, r, x_edges, y_edges)


@dataclass
class Segmentation:
    """A grid as the model reads it: its layers' :class:`LayerCells` and, for every pair of
    layers ``p < l``, the maps ``proj[(p, l)] = (Oy, Ox, Oy3, Ox3)`` that carry layer ``p``'s
    energy image ``[ny_p, nx_p]`` onto layer ``l``'s cells (``Oy @ E @ Ox.T``) and onto a
    window three cells wide around each (``Oy3``, ``Ox3``)."""

    grid: vx.Grid
    layers: list[LayerCells]
    proj: dict[tuple[int, int], tuple[np.ndarray, ...]]


def segmentation_of(grid: vx.Grid, k: int, n_layers: int) -> Segmentation:
    """The :class:`Segmentation` of ``grid`` (a cartesian or rectilinear grid of ``n_layers``
    layers; each layer may have its own cells)."""
    if not isinstance(grid, (vx.CartesianGrid, vx.RectilinearGrid)):
        raise ConfigError(
            f"grid '{grid.name}': the geometry-aware model generates on cartesian grids "
            f"(this one is {type(grid).__name__})"
        )
    if grid.n_layers != n_layers:
        raise ConfigError(
            f"grid '{grid.name}' has {grid.n_layers} layers; the model knows {n_layers}"
        )
    layers = [layer_cells(grid, lay, k) for lay in range(grid.n_layers)]
    proj = {}
    for lay in range(len(layers)):
        for p in range(lay):
            a, b = layers[lay], layers[p]
            proj[(p, lay)] = (
                overlap(a.y_edges, b.y_edges), overlap(a.x_edges, b.x_edges),
                overlap(a.y_edges, b.y_edges, 1.0), overlap(a.x_edges, b.x_edges, 1.0),
            )  # fmt: skip
    return Segmentation(grid, layers, proj)
