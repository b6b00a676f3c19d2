"""Detector grids: per-layer Cartesian cells (evenly spaced, or on arbitrary edges) and
CaloChallenge-style cylindrical bins.

Every grid has ``n_layers`` layers, each with its own number of cells; voxels are numbered
layer by layer (``layer_offset[l]`` is the first voxel of layer ``l``), so a shower becomes one
flat vector of ``n_voxels`` energies. Coordinates are in mm in the shower's local frame: ``x``,
``y`` transverse (the shower axis at x = y = 0 for cylindrical grids) and depth along the axis.

Cells are half-open intervals ``[low, high)``: a point exactly on an edge between two cells
belongs to the cell above it (larger x, y, r or angle); a point exactly on the grid's outermost
upper edge is outside (``numpy.histogramdd`` differs there: it closes its last bin). Cartesian
and angular edges are resolved to ``EDGE_TOLERANCE`` (1e-9) of a cell, so floating-point
rounding of ``(x - x0) / dx`` never sends an exact-edge point down; radial edges are exact.

Index computations are written once for numpy arrays and torch tensors (:func:`cell_index`
dispatches on the array type), so both backends bin identically.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Fraction of a cell below an edge within which a point counts as on the edge.
EDGE_TOLERANCE = 1e-9


class GridError(ValueError):
    """A grid definition or a point set that does not fit a grid (one clear line)."""


def _layer_edges_from_depth(depth: np.ndarray) -> np.ndarray:
    """Layer boundaries half-way between layer centres, extrapolated at both ends."""
    if len(depth) == 1:
        return np.array([depth[0] - 0.5, depth[0] + 0.5])
    mid = 0.5 * (depth[1:] + depth[:-1])
    return np.concatenate([[2 * depth[0] - mid[0]], mid, [2 * depth[-1] - mid[-1]]])


@dataclass(frozen=True, eq=False)
class Grid:
    """Base of all grids. Subclasses set the cells of each layer.

    Attributes:
        name: label used in reports.
        layer_depth: ``[n_layers]`` depth (mm) of each layer's centre along the shower axis,
            or ``None`` when unknown (then depth-based layer mapping is unavailable).
        layer_edges: ``[n_layers + 1]`` depth boundaries (mm); default half-way between
            centres.
    """

    name: str
    layer_depth: np.ndarray | None = None
    layer_edges: np.ndarray | None = None

    # -- structure -------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        raise NotImplementedError

    @property
    def cells_per_layer(self) -> np.ndarray:
        """``[n_layers]`` number of cells of each layer."""
        raise NotImplementedError

    @property
    def layer_offset(self) -> np.ndarray:
        """``[n_layers + 1]`` index of the first voxel of each layer (and the total)."""
        return np.concatenate([[0], np.cumsum(self.cells_per_layer)]).astype(np.int64)

    @property
    def n_voxels(self) -> int:
        return int(self.cells_per_layer.sum())

    def layer_shape(self, layer: int) -> tuple[int, ...]:
        """Shape of one layer's cells as an image (row-major, last axis fastest)."""
        raise NotImplementedError

    def depth_edges(self) -> np.ndarray:
        """``[n_layers + 1]`` layer boundaries in depth (mm)."""
        if self.layer_edges is not None:
            return np.asarray(self.layer_edges, dtype=np.float64)
        if self.layer_depth is None:
            raise GridError(f"grid '{self.name}': layer depths unknown, cannot map by depth")
        return _layer_edges_from_depth(np.asarray(self.layer_depth, dtype=np.float64))

    # -- binning ---------------------------------------------------------------------------
    def cell_in_layer(self, x: Any, y: Any, layer: Any) -> tuple[Any, Any]:
        """Cell index within the layer and an inside mask, for arrays of equal length.

        ``layer`` must already be valid (``0 <= layer < n_layers``). Works on numpy arrays
        and on torch tensors (float64 recommended for exact edges).
        """
        raise NotImplementedError

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``x, y, layer`` of every voxel's centre, each ``[n_voxels]`` (mm)."""
        raise NotImplementedError

    def sample_in_cells(
        self, voxel: np.ndarray, rng: np.random.Generator, margin: float = 1e-4
    ) -> tuple[np.ndarray, np.ndarray]:
        """Uniform random ``x, y`` inside the given voxels (area-uniform for annular bins).

        ``margin`` keeps samples that fraction of a cell away from its edges, so that float32
        rounding never moves a point into a neighbouring cell.
        """
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        a, b = self.to_dict(), other.to_dict()  # type: ignore[attr-defined]
        a.pop("name", None)
        b.pop("name", None)
        return _nested_close(a, b)

    __hash__ = object.__hash__


def _nested_close(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_nested_close(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_nested_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float | int) and isinstance(b, float | int):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _namespace(arr: Any) -> Any:
    """numpy for numpy arrays, torch for tensors."""
    if type(arr).__module__.startswith("torch"):
        import torch

        return torch
    return np


def _to_int(a: Any) -> Any:
    """int64 copy of a numpy array or torch tensor."""
    return a.astype(np.int64) if isinstance(a, np.ndarray) else a.long()


def _floor_div(xp: Any, x: Any, origin: Any, width: Any) -> Any:
    """``floor((x - origin) / width)`` as int64, in place where possible (one temporary)."""
    t = x - origin
    t /= width
    if xp is np:
        np.floor(t, out=t)
        return t.astype(np.int64)
    return t.floor_().long()


def _table(values: np.ndarray, like: Any) -> Any:
    """A per-layer parameter table as an array of the same kind and device as ``like``."""
    if type(like).__module__.startswith("torch"):
        import torch

        return torch.as_tensor(values, device=like.device)
    return values


@dataclass(frozen=True, eq=False)
class CartesianGrid(Grid):
    """Layered Cartesian grid with its own cell count, size and extent in every layer.

    Layer ``l`` has ``ny[l] x nx[l]`` cells of ``dx[l] x dy[l]`` mm starting at
    ``(x_min[l], y_min[l])``; its cells are numbered row-major, ``iy * nx + ix``. Covers
    uniform grids (ILD-like) and per-layer granularity grids (CaloGAN).
    """

    nx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    ny: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    dx: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dy: np.ndarray = field(default_factory=lambda: np.zeros(0))
    x_min: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y_min: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def __post_init__(self) -> None:
        n = len(self.nx)
        for key in ("ny", "dx", "dy", "x_min", "y_min"):
            if len(getattr(self, key)) != n:
                raise GridError(
                    f"grid '{self.name}': {key} has {len(getattr(self, key))} layers, nx has {n}"
                )
        if n == 0:
            raise GridError(f"grid '{self.name}': no layers")
        if np.any(self.nx < 1) or np.any(self.ny < 1):
            raise GridError(f"grid '{self.name}': every layer needs at least one cell")
        for key in ("dx", "dy", "x_min", "y_min"):
            if not np.all(np.isfinite(np.asarray(getattr(self, key), np.float64))):
                raise GridError(f"grid '{self.name}': {key} must be finite in every layer")
        if np.any(self.dx <= 0) or np.any(self.dy <= 0):
            raise GridError(f"grid '{self.name}': cell sizes must be > 0")
        _check_depth(self)

    @classmethod
    def uniform(
        cls,
        name: str,
        n_layers: int,
        cells: tuple[int, int],
        cell_size: tuple[float, float],
        origin: tuple[float, float],
        layer_depth: Any = None,
        layer_edges: Any = None,
    ) -> CartesianGrid:
        """Same ``cells = (nx, ny)`` of ``cell_size = (dx, dy)`` from ``origin`` in every layer."""
        full = lambda v, dt: np.full(n_layers, v, dtype=dt)  # noqa: E731
        return cls(
            name=name,
            nx=full(cells[0], np.int64),
            ny=full(cells[1], np.int64),
            dx=full(cell_size[0], np.float64),
            dy=full(cell_size[1], np.float64),
            x_min=full(origin[0], np.float64),
            y_min=full(origin[1], np.float64),
            layer_depth=None if layer_depth is None else np.asarray(layer_depth, np.float64),
            layer_edges=None if layer_edges is None else np.asarray(layer_edges, np.float64),
        )

    @property
    def n_layers(self) -> int:
        return len(self.nx)

    @property
    def cells_per_layer(self) -> np.ndarray:
        return (self.nx * self.ny).astype(np.int64)

    def layer_shape(self, layer: int) -> tuple[int, int]:
        return int(self.ny[layer]), int(self.nx[layer])

    def cell_edges(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """x and y cell edges (mm) of ``layer``."""
        nx, ny = int(self.nx[layer]), int(self.ny[layer])
        return (
            self.x_min[layer] + self.dx[layer] * np.arange(nx + 1),
            self.y_min[layer] + self.dy[layer] * np.arange(ny + 1),
        )

    @functools.cached_property
    def is_uniform(self) -> bool:
        """All layers have the same cells (then binning needs no per-layer look-ups)."""
        return all(
            np.all(getattr(self, k) == getattr(self, k)[0])
            for k in ("nx", "ny", "dx", "dy", "x_min", "y_min")
        )

    def cell_in_layer(self, x: Any, y: Any, layer: Any) -> tuple[Any, Any]:
        xp = _namespace(x)
        if self.is_uniform:
            params = [getattr(self, k)[0] for k in ("x_min", "y_min", "dx", "dy", "nx", "ny")]
            x0, y0, dx, dy, nx, ny = (p.item() for p in params)
        else:
            x0, y0 = _table(self.x_min, x)[layer], _table(self.y_min, y)[layer]
            dx, dy = _table(self.dx, x)[layer], _table(self.dy, y)[layer]
            nx, ny = _table(self.nx, layer)[layer], _table(self.ny, layer)[layer]
        # shifting the origin down by EDGE_TOLERANCE cells sends exact-edge points up
        ix = _floor_div(xp, x, x0 - EDGE_TOLERANCE * dx, dx)
        iy = _floor_div(xp, y, y0 - EDGE_TOLERANCE * dy, dy)
        if xp is np:  # negative indices become huge unsigned ones: one compare per axis
            inside = (ix.view(np.uint64) < nx) & (iy.view(np.uint64) < ny)
        else:
            inside = (ix >= 0) & (iy >= 0) & (ix < nx) & (iy < ny)
        iy *= nx
        iy += ix
        return iy, inside

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xs, ys, ls = [], [], []
        for l in range(self.n_layers):
            iy, ix = np.divmod(np.arange(self.nx[l] * self.ny[l]), self.nx[l])
            xs.append(self.x_min[l] + (ix + 0.5) * self.dx[l])
            ys.append(self.y_min[l] + (iy + 0.5) * self.dy[l])
            ls.append(np.full(len(ix), l, np.int64))
        return np.concatenate(xs), np.concatenate(ys), np.concatenate(ls)

    def sample_in_cells(
        self, voxel: np.ndarray, rng: np.random.Generator, margin: float = 1e-4
    ) -> tuple[np.ndarray, np.ndarray]:
        layer = np.searchsorted(self.layer_offset, voxel, side="right") - 1
        iy, ix = np.divmod(voxel - self.layer_offset[layer], self.nx[layer])
        ux = rng.uniform(margin, 1 - margin, len(voxel))
        uy = rng.uniform(margin, 1 - margin, len(voxel))
        x = self.x_min[layer] + (ix + ux) * self.dx[layer]
        y = self.y_min[layer] + (iy + uy) * self.dy[layer]
        return x, y

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "cartesian",
            "name": self.name,
            "layers": [
                {
                    "cells": [int(self.nx[l]), int(self.ny[l])],
                    "cell_size": [float(self.dx[l]), float(self.dy[l])],
                    "origin": [float(self.x_min[l]), float(self.y_min[l])],
                }
                for l in range(self.n_layers)
            ],
            **_depth_dict(self),
        }


@dataclass(frozen=True, eq=False)
class RectilinearGrid(Grid):
    """Layered grid of rectangular cells on per-layer ``x`` and ``y`` edges (mm) that need not be
    evenly spaced: e.g. a layer with coarse cells on one half and fine ones on the other (the
    transition region of the geometry-aware autoregressive model's segmentations), or cells
    that grow away from the axis. Layer ``l`` has ``(len(y_edges[l]) - 1) x (len(x_edges[l]) -
    1)`` cells numbered row-major, ``iy * nx + ix``; cells are ``[low, high)`` as everywhere.
    """

    x_edges: tuple[np.ndarray, ...] = ()
    y_edges: tuple[np.ndarray, ...] = ()

    def __post_init__(self) -> None:
        if not self.x_edges:
            raise GridError(f"grid '{self.name}': no layers")
        if len(self.y_edges) != len(self.x_edges):
            raise GridError(
                f"grid '{self.name}': y_edges has {len(self.y_edges)} layers, "
                f"x_edges has {len(self.x_edges)}"
            )
        for axis in ("x_edges", "y_edges"):
            for lay, e in enumerate(getattr(self, axis)):
                e = np.asarray(e, np.float64)
                if len(e) < 2 or not np.all(np.isfinite(e)) or np.any(np.diff(e) <= 0):
                    raise GridError(
                        f"grid '{self.name}': {axis} of layer {lay} must be at least two finite, "
                        "increasing edges"
                    )
        _check_depth(self)

    @property
    def n_layers(self) -> int:
        return len(self.x_edges)

    @property
    def cells_per_layer(self) -> np.ndarray:
        return np.array(
            [(len(x) - 1) * (len(y) - 1) for x, y in zip(self.x_edges, self.y_edges, strict=True)],
            np.int64,
        )

    def layer_shape(self, layer: int) -> tuple[int, int]:
        return len(self.y_edges[layer]) - 1, len(self.x_edges[layer]) - 1

    def cell_edges(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """x and y cell edges (mm) of ``layer``."""
        return np.asarray(self.x_edges[layer]), np.asarray(self.y_edges[layer])

    def cell_in_layer(self, x: Any, y: Any, layer: Any) -> tuple[Any, Any]:
        xp = _namespace(x)
        out = xp.zeros_like(layer) if xp is not np else np.zeros(len(x), np.int64)
        inside = xp.zeros_like(layer, dtype=bool) if xp is not np else np.zeros(len(x), bool)
        for lay in range(self.n_layers):
            m = layer == lay
            ex, ey = _table(self.x_edges[lay], x), _table(self.y_edges[lay], y)
            ix = xp.searchsorted(ex, x[m], side="right") - 1
            iy = xp.searchsorted(ey, y[m], side="right") - 1
            nx, ny = len(self.x_edges[lay]) - 1, len(self.y_edges[lay]) - 1
            ok = (ix >= 0) & (iy >= 0) & (ix < nx) & (iy < ny)
            out[m] = iy * nx + ix
            inside[m] = ok
        return out, inside

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xs, ys, ls = [], [], []
        for lay, (ex, ey) in enumerate(zip(self.x_edges, self.y_edges, strict=True)):
            cx, cy = 0.5 * (ex[1:] + ex[:-1]), 0.5 * (ey[1:] + ey[:-1])
            gy, gx = np.meshgrid(cy, cx, indexing="ij")
            xs.append(gx.ravel())
            ys.append(gy.ravel())
            ls.append(np.full(gx.size, lay, np.int64))
        return np.concatenate(xs), np.concatenate(ys), np.concatenate(ls)

    def sample_in_cells(
        self, voxel: np.ndarray, rng: np.random.Generator, margin: float = 1e-4
    ) -> tuple[np.ndarray, np.ndarray]:
        layer = np.searchsorted(self.layer_offset, voxel, side="right") - 1
        x, y = np.zeros(len(voxel)), np.zeros(len(voxel))
        for lay in np.unique(layer):
            m = layer == lay
            ex, ey = np.asarray(self.x_edges[lay]), np.asarray(self.y_edges[lay])
            iy, ix = np.divmod(voxel[m] - self.layer_offset[lay], len(ex) - 1)
            ux = rng.uniform(margin, 1 - margin, int(m.sum()))
            uy = rng.uniform(margin, 1 - margin, int(m.sum()))
            x[m] = ex[ix] + ux * (ex[ix + 1] - ex[ix])
            y[m] = ey[iy] + uy * (ey[iy + 1] - ey[iy])
        return x, y

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "rectilinear",
            "name": self.name,
            "layers": [
                {"x_edges": [float(v) for v in ex], "y_edges": [float(v) for v in ey]}
                for ex, ey in zip(self.x_edges, self.y_edges, strict=True)
            ],
            **_depth_dict(self),
        }


@dataclass(frozen=True, eq=False)
class CylindricalGrid(Grid):
    """Cylindrical grid: per-layer radial edges and number of angular bins (CaloChallenge).

    Layer ``l`` has ``len(r_edges[l]) - 1`` radial bins and ``n_alpha[l]`` angular bins
    spanning ``[-pi, pi)`` with ``alpha = atan2(y, x)``; its cells are numbered
    ``alpha_bin * n_r + r_bin`` (radial fastest, then angle, then layer), the order of the
    CaloChallenge HDF5 files. A layer with a single radial edge has no cells.
    """

    r_edges: tuple[np.ndarray, ...] = ()
    n_alpha: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __post_init__(self) -> None:
        if len(self.r_edges) != len(self.n_alpha):
            raise GridError(
                f"grid '{self.name}': {len(self.r_edges)} r_edges lists for "
                f"{len(self.n_alpha)} n_alpha values"
            )
        if len(self.r_edges) == 0:
            raise GridError(f"grid '{self.name}': no layers")
        for l, edges in enumerate(self.r_edges):
            finite = np.all(np.isfinite(np.asarray(edges, np.float64)))
            if len(edges) < 1 or not finite or np.any(np.diff(edges) <= 0) or edges[0] < 0:
                raise GridError(
                    f"grid '{self.name}': layer {l} r_edges must be finite, >= 0 and increasing"
                )
        if np.any(self.n_alpha < 1):
            raise GridError(f"grid '{self.name}': n_alpha must be >= 1 in every layer")
        _check_depth(self)

    @property
    def n_layers(self) -> int:
        return len(self.r_edges)

    @property
    def n_r(self) -> np.ndarray:
        return np.array([len(e) - 1 for e in self.r_edges], dtype=np.int64)

    @property
    def cells_per_layer(self) -> np.ndarray:
        return self.n_r * self.n_alpha

    def layer_shape(self, layer: int) -> tuple[int, int]:
        return int(self.n_alpha[layer]), int(self.n_r[layer])

    @functools.cached_property
    def _configs(self) -> tuple[list[tuple[np.ndarray, int]], np.ndarray]:
        """Distinct (r_edges, n_alpha) pairs and the pair index of each layer."""
        configs: list[tuple[np.ndarray, int]] = []
        index = np.zeros(self.n_layers, np.int64)
        for l, (edges, n_a) in enumerate(zip(self.r_edges, self.n_alpha, strict=True)):
            for c, (e, a) in enumerate(configs):
                if a == n_a and len(e) == len(edges) and np.array_equal(e, edges):
                    index[l] = c
                    break
            else:
                index[l] = len(configs)
                configs.append((edges, int(n_a)))
        return configs, index

    def cell_in_layer(self, x: Any, y: Any, layer: Any) -> tuple[Any, Any]:
        xp = _namespace(x)
        r = xp.sqrt(x * x + y * y)
        alpha = xp.arctan2(y, x)
        configs, index = self._configs
        if len(configs) == 1:  # every layer binned alike (datasets 2 and 3)
            return _polar_cell(xp, r, alpha, *configs[0])
        which = _table(index, layer)[layer]
        cell = xp.zeros_like(layer)
        inside = xp.zeros_like(layer, dtype=bool) if xp is np else xp.zeros_like(layer).bool()
        for c, (edges, n_a) in enumerate(configs):
            sel = which == c
            cell[sel], inside[sel] = _polar_cell(xp, r[sel], alpha[sel], edges, n_a)
        return cell, inside

    def cell_centres(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xs, ys, ls = [], [], []
        for l, edges in enumerate(self.r_edges):
            n_r, n_a = len(edges) - 1, int(self.n_alpha[l])
            if n_r == 0:
                continue
            ia, ir = np.divmod(np.arange(n_r * n_a), n_r)
            r = 0.5 * (edges[ir] + edges[ir + 1])
            a = -math.pi + (ia + 0.5) * 2 * math.pi / n_a
            xs.append(r * np.cos(a))
            ys.append(r * np.sin(a))
            ls.append(np.full(len(ia), l, np.int64))
        if not xs:
            return np.zeros(0), np.zeros(0), np.zeros(0, np.int64)
        return np.concatenate(xs), np.concatenate(ys), np.concatenate(ls)

    def sample_in_cells(
        self, voxel: np.ndarray, rng: np.random.Generator, margin: float = 1e-4
    ) -> tuple[np.ndarray, np.ndarray]:
        layer = np.searchsorted(self.layer_offset, voxel, side="right") - 1
        n_r = self.n_r[layer]
        ia, ir = np.divmod(voxel - self.layer_offset[layer], n_r)
        first = np.concatenate([[0], np.cumsum([len(e) for e in self.r_edges])])
        flat_edges = np.concatenate(self.r_edges)
        r_lo = flat_edges[first[layer] + ir]
        r_hi = flat_edges[first[layer] + ir + 1]
        u = rng.uniform(margin, 1 - margin, len(voxel))
        r = np.sqrt(r_lo**2 + u * (r_hi**2 - r_lo**2))  # uniform in area
        width = 2 * math.pi / self.n_alpha[layer]
        a = -math.pi + (ia + rng.uniform(margin, 1 - margin, len(voxel))) * width
        return r * np.cos(a), r * np.sin(a)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "cylindrical",
            "name": self.name,
            "layers": [
                {"r_edges": [float(v) for v in e], "n_alpha": int(a)}
                for e, a in zip(self.r_edges, self.n_alpha, strict=True)
            ],
            **_depth_dict(self),
        }


def _polar_cell(xp: Any, r: Any, alpha: Any, edges: np.ndarray, n_alpha: int) -> tuple[Any, Any]:
    """Cell ``alpha_bin * n_r + r_bin`` and inside mask for one (r_edges, n_alpha) binning."""
    if xp is np:
        ir = np.searchsorted(edges, r, side="right") - 1
    else:
        table = xp.as_tensor(edges, device=r.device, dtype=r.dtype)
        ir = xp.searchsorted(table, r.contiguous(), right=True) - 1
    n_r = len(edges) - 1
    # angular bins of width 2 pi / n from -pi; alpha = pi (the -pi direction) wraps to bin 0
    ia = _to_int(xp.floor((alpha + math.pi) * (n_alpha / (2 * math.pi)) + EDGE_TOLERANCE))
    ia = xp.where(ia >= n_alpha, ia - n_alpha, ia)
    return ia * n_r + ir, (ir >= 0) & (ir < n_r)


def _check_depth(grid: Grid) -> None:
    for key, n in (("layer_depth", grid.n_layers), ("layer_edges", grid.n_layers + 1)):
        value = getattr(grid, key)
        if value is not None and len(value) != n:
            raise GridError(f"grid '{grid.name}': {key} has {len(value)} values, expected {n}")
        if value is not None and not np.all(np.isfinite(np.asarray(value, np.float64))):
            raise GridError(f"grid '{grid.name}': {key} must be finite")
    if grid.layer_edges is not None and np.any(np.diff(grid.layer_edges) <= 0):
        raise GridError(f"grid '{grid.name}': layer_edges must increase")


def _depth_dict(grid: Grid) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if grid.layer_depth is not None:
        out["layer_depth"] = [float(v) for v in grid.layer_depth]
    if grid.layer_edges is not None:
        out["layer_edges"] = [float(v) for v in grid.layer_edges]
    return out
