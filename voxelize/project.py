"""Projection of point clouds onto grids (points -> voxels) and back (voxels -> points).

Input points come as flat columns ``E`` (MeV), ``x``, ``y`` (mm), ``layer`` (and optionally
``z``, depth in mm) with offsets ``ptr[N + 1]`` (shower ``i`` owns points
``ptr[i]:ptr[i + 1]``); awkward arrays of showers ``N * {incident_energy, points: var * {E, x,
y, layer}}`` and single showers are accepted too. Energy that falls outside the grid is returned
per shower, so ``voxels.sum(1) + outside`` equals the shower's total energy.

Two backends share one binning code path (:meth:`voxelize.grids.Grid.cell_in_layer`): numpy,
and torch on CPU or GPU. Both sum in float64, so they agree to rounding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxelize.accumulate import sparse_sums
from voxelize.grids import Grid, GridError
from voxelize.presets import load_grid

LayerMap = Sequence[int] | np.ndarray | str | None


@dataclass
class Projection:
    """Result of :func:`project`.

    Attributes:
        voxels: ``[N, n_voxels]`` energies (MeV) per shower (numpy array or torch tensor);
            ``None`` for sparse output.
        outside: ``[N]`` energy (MeV) of points outside the grid, per shower.
        grid: the grid.
        sparse: for sparse output, ``(shower, voxel, energy)`` arrays of the non-empty voxels.
    """

    voxels: Any
    outside: Any
    grid: Grid
    sparse: tuple[Any, Any, Any] | None = None

    def layer(self, layer: int) -> Any:
        """``[N, *grid.layer_shape(layer)]`` image of one layer (dense output only)."""
        if self.voxels is None:
            raise GridError("layer images need dense output")
        lo, hi = self.grid.layer_offset[layer], self.grid.layer_offset[layer + 1]
        return self.voxels[:, lo:hi].reshape(-1, *self.grid.layer_shape(layer))


@dataclass
class PointCloud:
    """Flat points, the form :func:`to_points` returns (pointcalo wraps it as showers).

    ``E`` (MeV), ``x``, ``y`` (mm), ``layer`` each ``[P]``; ``z`` ``[P]`` layer-centre depth
    (mm) or ``None``; ``ptr`` ``[N + 1]`` offsets.
    """

    E: np.ndarray
    x: np.ndarray
    y: np.ndarray
    layer: np.ndarray
    ptr: np.ndarray
    z: np.ndarray | None = None


# -- inputs --------------------------------------------------------------------------------


def _is_torch(a: Any) -> bool:
    return type(a).__module__.startswith("torch")


def _flat_input(showers: Any) -> dict[str, Any]:
    """Flat columns and ``ptr`` from awkward showers, a mapping, or a PointBatch-like object."""
    if hasattr(showers, "points") and hasattr(showers, "ptr") and hasattr(showers, "features"):
        cols = {name: showers.points[:, j] for j, name in enumerate(showers.features)}
        return {**cols, "ptr": showers.ptr}
    if type(showers).__module__.startswith("awkward"):
        import awkward as ak

        if isinstance(showers, ak.Record):
            showers = ak.Array([showers])  # one shower
        pts = showers["points"]
        counts = ak.to_numpy(ak.num(pts, axis=1)).astype(np.int64)
        ptr = np.concatenate([[0], np.cumsum(counts)])
        flat = ak.flatten(pts, axis=1)
        out = {k: ak.to_numpy(flat[k]) for k in flat.fields}
        return {**out, "ptr": ptr}
    if isinstance(showers, Mapping):
        out = dict(showers)
        if "ptr" not in out:  # a single shower
            n = len(out["E"])
            if _is_torch(out["E"]):
                import torch

                out["ptr"] = torch.tensor([0, n], device=out["E"].device)
            else:
                out["ptr"] = np.array([0, n], np.int64)
        return out
    raise GridError(
        "project() takes awkward showers, a mapping of flat columns "
        "{E, x, y, layer[, z], ptr}, or a PointBatch"
    )


# -- backends ------------------------------------------------------------------------------


class _Numpy:
    name = "numpy"

    def __init__(self, device: Any = None) -> None:
        self.device = None

    def asarray(self, a: Any, dtype: Any) -> np.ndarray:
        if _is_torch(a):
            a = a.detach().cpu().numpy()
        return np.asarray(a, dtype=dtype)

    def arange(self, n: int) -> np.ndarray:
        return np.arange(n, dtype=np.int64)

    def repeat(self, values: np.ndarray, counts: np.ndarray) -> np.ndarray:
        return np.repeat(values, counts)

    def weighted_bincount(self, index: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
        return np.bincount(index, weights=weights, minlength=n)

    def searchsorted(self, edges: np.ndarray, values: np.ndarray) -> np.ndarray:
        return np.searchsorted(edges, values, side="right")

    def where(self, cond: np.ndarray, a: np.ndarray, b: int) -> np.ndarray:
        return np.where(cond, a, b)

    def sparse_sums(self, slot: np.ndarray, energy: np.ndarray, ptr: np.ndarray, n: int) -> Any:
        return sparse_sums(slot, energy, ptr, n)

    def nonfinite(self, a: np.ndarray) -> np.ndarray:
        return ~np.isfinite(a)

    def concat(self, parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(parts) if parts else np.zeros(0, dtype)

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.zeros(shape, dtype=dtype)

    def to_numpy(self, a: np.ndarray) -> np.ndarray:
        return a

    def cast(self, a: np.ndarray, dtype: Any) -> np.ndarray:
        return a.astype(dtype, copy=False)

    def from_numpy(self, a: np.ndarray) -> np.ndarray:
        return a

    def first_true(self, mask: np.ndarray) -> int:
        return int(np.argmax(mask))


class _Torch:
    name = "torch"

    def __init__(self, device: Any = None) -> None:
        import torch

        self.torch = torch
        self.device = torch.device(device) if device is not None else None

    def asarray(self, a: Any, dtype: Any) -> Any:
        torch = self.torch
        tdtype = {np.float64: torch.float64, np.int64: torch.int64}[dtype]
        if not _is_torch(a):
            a = torch.as_tensor(np.asarray(a))
        dev = self.device if self.device is not None else a.device
        self.device = dev
        return a.to(device=dev, dtype=tdtype)

    def arange(self, n: int) -> Any:
        return self.torch.arange(n, device=self.device)

    def repeat(self, values: Any, counts: Any) -> Any:
        return self.torch.repeat_interleave(values, counts)

    def weighted_bincount(self, index: Any, weights: Any, n: int) -> Any:
        out = self.torch.zeros(n, dtype=weights.dtype, device=weights.device)
        return out.index_add_(0, index, weights)

    def searchsorted(self, edges: np.ndarray, values: Any) -> Any:
        table = self.torch.as_tensor(edges, device=values.device, dtype=values.dtype)
        return self.torch.searchsorted(table, values.contiguous(), right=True)

    def where(self, cond: Any, a: Any, b: int) -> Any:
        return self.torch.where(cond, a, self.torch.as_tensor(b, device=a.device))

    def sparse_sums(self, slot: Any, energy: Any, ptr: np.ndarray, n: int) -> Any:
        """As :func:`voxelize.accumulate.sparse_sums`, with tensor ops (any device): one
        scatter picks a representative point per hit (shower, slot) key and only the distinct
        keys are sorted (the result does not depend on which duplicate wins the scatter)."""
        t = self.torch
        counts = t.as_tensor(np.diff(ptr), device=slot.device)
        key = t.repeat_interleave(t.arange(len(ptr) - 1, device=slot.device), counts) * n + slot
        owner = t.empty((len(ptr) - 1) * n, dtype=t.int64, device=key.device)
        pos = t.arange(key.shape[0], device=key.device)
        owner[key] = pos
        first = owner[key]
        rep = pos[first == pos]
        distinct = key[rep]
        order = t.argsort(distinct)
        rank = t.empty_like(pos)
        rank[rep[order]] = t.arange(order.shape[0], device=key.device)
        sums = self.weighted_bincount(rank[first], energy, order.shape[0])
        keys = distinct[order]
        return keys // n, keys % n, sums

    def nonfinite(self, a: Any) -> Any:
        return ~self.torch.isfinite(a)

    def concat(self, parts: list[Any], dtype: Any) -> Any:
        if parts:
            return self.torch.cat(parts)
        tdtype = self.torch.int64 if np.dtype(dtype).kind == "i" else self._dtype(dtype)
        return self.torch.zeros(0, dtype=tdtype, device=self.device)

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        return self.torch.zeros(shape, dtype=self._dtype(dtype), device=self.device)

    def to_numpy(self, a: Any) -> np.ndarray:
        return a.detach().cpu().numpy()

    def from_numpy(self, a: np.ndarray) -> Any:
        return self.torch.as_tensor(a, device=self.device)

    def cast(self, a: Any, dtype: Any) -> Any:
        return a.to(self._dtype(dtype) if not isinstance(dtype, self.torch.dtype) else dtype)

    def _dtype(self, dtype: Any) -> Any:
        if isinstance(dtype, self.torch.dtype):
            return dtype
        return {np.float32: self.torch.float32, np.float64: self.torch.float64}[
            np.dtype(dtype).type
        ]

    def first_true(self, mask: Any) -> int:
        return int(self.torch.nonzero(mask)[0, 0])


def _backend(name: str, device: Any) -> _Numpy | _Torch:
    if name == "numpy":
        return _Numpy()
    if name == "torch":
        try:
            return _Torch(device)
        except ImportError:
            raise GridError("backend='torch' needs PyTorch: pip install torch") from None
    raise GridError(f"unknown backend {name!r}: use 'numpy' or 'torch'")


# -- projection ----------------------------------------------------------------------------


class _LayerMapper:
    """Turns source layers (and depths) of a chunk of points into grid layers.

    Validated once for all points; applied chunk by chunk. ``-1`` or an out-of-range value
    marks points outside the grid.
    """

    def __init__(
        self, bk: Any, grid: Grid, n_src: int, has_z: bool, layer_map: LayerMap, source_depth: Any
    ) -> None:
        self.bk, self.grid, self.mode = bk, grid, "same"
        if layer_map is None:
            if n_src > grid.n_layers:
                raise GridError(
                    f"points have layer {n_src - 1} but grid '{grid.name}' has layers "
                    f"0-{grid.n_layers - 1}; pass layer_map (a table or 'depth')"
                )
            return
        if isinstance(layer_map, str):
            if layer_map != "depth":
                raise GridError(
                    f"layer_map must be a sequence of ints or 'depth', got {layer_map!r}"
                )
            self.mode, self.edges = "depth", grid.depth_edges()
            if not has_z:
                if source_depth is None:
                    raise GridError(
                        "layer_map='depth' needs per-point z or source_depth (depth of each "
                        "source layer in mm)"
                    )
                depth = np.asarray(source_depth, dtype=np.float64)
                if len(depth) < n_src:
                    raise GridError(
                        f"source_depth has {len(depth)} layers but points have layer {n_src - 1}"
                    )
                # a depth per source layer is a layer table
                table = np.searchsorted(self.edges, depth, side="right") - 1
                self.mode, self.table = "table", bk.asarray(table.astype(np.int64), np.int64)
            return
        table = np.asarray(layer_map)
        if table.ndim != 1 or table.dtype.kind not in "iu":
            raise GridError("layer_map must be a 1-d sequence of ints (-1 drops a layer)")
        if len(table) < n_src:
            raise GridError(f"layer_map has {len(table)} entries but points have layer {n_src - 1}")
        if table.size and (table.min() < -1 or table.max() >= grid.n_layers):
            raise GridError(
                f"layer_map maps to layers {table.min()}..{table.max()} but grid '{grid.name}' "
                f"has layers 0-{grid.n_layers - 1} (-1 drops)"
            )
        self.mode, self.table = "table", bk.asarray(table.astype(np.int64), np.int64)

    def __call__(self, layer: Any, z: Any) -> tuple[Any, Any]:
        """Grid layer (0 where invalid) and validity mask (None: all valid)."""
        if self.mode == "same":
            return layer, None
        g = self.table[layer] if self.mode == "table" else self.bk.searchsorted(self.edges, z) - 1
        valid = (g >= 0) & (g < self.grid.n_layers)
        return g * valid, valid


def project(
    showers: Any,
    grid: Grid | str,
    *,
    layer_map: LayerMap = None,
    source_depth: Any = None,
    backend: str | None = None,
    device: Any = None,
    sparse: bool = False,
    dtype: Any = np.float32,
    chunk_points: int | None = None,
) -> Projection:
    """Project showers onto a grid.

    Args:
        showers: awkward showers, one awkward shower, a mapping of flat columns
            ``{E, x, y, layer[, z][, ptr]}`` (numpy or torch; no ``ptr`` = one shower), or a
            pointcalo ``PointBatch``.
        grid: a :class:`~voxelize.grids.Grid` or a preset name / file (see ``load_grid``).
        layer_map: how source layers become grid layers. ``None``: the same index (an unknown
            layer is an error). A sequence ``m``: source layer ``l`` goes to ``m[l]``, ``-1``
            drops it (its energy counts as outside). ``"depth"``: by depth, from per-point
            ``z`` or ``source_depth[layer]``, into the grid's layer boundaries.
        source_depth: ``[n_source_layers]`` depth (mm) of each source layer, for ``"depth"``.
        backend: ``"numpy"`` or ``"torch"``; default: torch for torch input, else numpy.
        device: torch device for the torch backend.
        sparse: return non-empty voxels as ``(shower, voxel, energy)`` instead of a dense array.
        dtype: float dtype of the returned energies (sums are taken in float64).
        chunk_points: points binned per step (default: a cache-sized 65536 on CPU, all at once
            on GPU); results do not depend on it.

    Returns:
        A :class:`Projection` with ``voxels [N, n_voxels]`` and ``outside [N]`` (MeV).
    """
    grid = load_grid(grid)
    cols = _flat_input(showers)
    if backend is None:
        backend = "torch" if _is_torch(cols["E"]) else "numpy"
    bk = _backend(backend, device)
    for key in ("E", "x", "y", "layer"):
        if key not in cols:
            raise GridError(f"points need field '{key}' (have {sorted(cols)})")
    E, x, y, layer, z = (cols["E"], cols["x"], cols["y"], cols["layer"], cols.get("z"))
    ptr = bk.to_numpy(bk.asarray(cols["ptr"], np.int64))
    ptr = ptr - ptr[0]
    n_showers, n_points = len(ptr) - 1, int(E.shape[0])
    if int(ptr[-1]) != n_points:
        raise GridError(f"ptr covers {int(ptr[-1])} points, columns have {n_points}")
    if n_points and int(layer.min()) < 0:
        raise GridError(f"points/layer: negative layer {int(layer.min())}")
    if n_points and np.asarray(bk.to_numpy(layer[:1])).dtype.kind == "f":
        whole = bk.to_numpy(layer)
        if np.any(whole != np.floor(whole)):
            raise GridError("points/layer: layers must be whole numbers")
    if len(ptr) and np.any(np.diff(ptr) < 0):
        raise GridError("ptr: offsets must not decrease")
    n_src = int(layer.max()) + 1 if n_points else 0
    mapper = _LayerMapper(bk, grid, n_src, z is not None, layer_map, source_depth)

    V = grid.n_voxels
    slots = V + 1  # slot V of each shower collects the energy outside the grid
    offsets = bk.asarray(np.append(grid.layer_offset[:-1], 0), np.int64)
    if chunk_points is None:
        on_gpu = bk.name == "torch" and bk.asarray(E[:1], np.float64).device.type != "cpu"
        chunk_points = max(n_points, 1) if on_gpu else 1 << 16
    out = None if sparse else bk.zeros((n_showers, slots), dtype)
    parts: list[tuple[Any, Any, Any, Any]] = []  # sparse: (shower, voxel, energy, outside)
    s0 = 0
    while s0 < n_showers:
        # as many showers as fit in chunk_points points (and, dense, a cache-sized block)
        limit = n_showers - s0 if sparse else max(1, min((1 << 19) // slots, n_showers - s0))
        fit = int(np.searchsorted(ptr, ptr[s0] + chunk_points, "right")) - 1 - s0
        s1 = s0 + max(1, min(limit, fit))
        p0, p1 = int(ptr[s0]), int(ptr[s1])
        c = {  # float64 copies of a cache-sized chunk: exact edges, float64 sums
            "x": bk.asarray(x[p0:p1], np.float64),
            "y": bk.asarray(y[p0:p1], np.float64),
            "E": bk.asarray(E[p0:p1], np.float64),
            "z": None if z is None else bk.asarray(z[p0:p1], np.float64),
        }
        _check_finite(bk, c, p0)
        negative = c["E"] < 0
        if bool(negative.any()):
            raise GridError(f"points/E: negative energy at point {p0 + bk.first_true(negative)}")
        gl, valid = mapper(bk.asarray(layer[p0:p1], np.int64), c["z"])
        cell, inside = grid.cell_in_layer(c["x"], c["y"], gl)
        if valid is not None:
            inside = inside & valid
        cell += offsets[gl]
        slot = bk.where(inside, cell, V)
        if out is not None:
            local = bk.repeat(bk.arange(s1 - s0), bk.from_numpy(np.diff(ptr[s0 : s1 + 1])))
            local *= slots
            local += slot
            block = bk.weighted_bincount(local, c["E"], (s1 - s0) * slots)
            out[s0:s1] = block.reshape(s1 - s0, slots)  # cast to dtype on assignment
        else:  # sums over the slots the points hit only: no pass over all the chunk's slots
            si, vi, sums = bk.sparse_sums(slot, c["E"], ptr[s0 : s1 + 1] - ptr[s0], slots)
            keep = (vi != V) & (sums != 0)
            lost = bk.zeros((s1 - s0,), np.float64)
            lost[si[vi == V]] = sums[vi == V]
            parts.append(
                (si[keep] + s0, vi[keep], bk.cast(sums[keep], dtype), bk.cast(lost, dtype))
            )
        s0 = s1
    if out is not None:
        return Projection(out[:, :V], bk.cast(out[:, V], dtype), grid)
    coo = tuple(bk.concat([p[i] for p in parts], np.int64 if i < 2 else dtype) for i in range(3))
    outside = bk.concat([p[3] for p in parts], dtype)
    return Projection(None, outside, grid, coo)


def _check_finite(bk: Any, cols: dict[str, Any], first: int) -> None:
    for key, col in cols.items():
        if col is None:
            continue
        bad = bk.nonfinite(col)
        if bad.any():
            i = first + bk.first_true(bad)
            raise GridError(f"points/{key}: non-finite value at point {i}")


def to_points(
    voxels: Any,
    grid: Grid | str,
    *,
    mode: str = "centre",
    threshold: float = 0.0,
    seed: int | None = 0,
    points_per_voxel: int = 1,
) -> PointCloud:
    """Turn voxel energies into points, the inverse of :func:`project`.

    Args:
        voxels: ``[N, n_voxels]`` or ``[n_voxels]`` energies (MeV).
        grid: the grid the voxels belong to.
        mode: ``"centre"`` puts one point at each cell centre; ``"uniform"`` spreads
            ``points_per_voxel`` points uniformly inside each cell (area-uniform for annular
            bins), sharing the cell's energy equally.
        threshold: voxels with energy ``<= threshold`` give no points.
        seed: seed of the uniform spreading.

    Returns:
        A :class:`PointCloud`; projecting it back returns ``voxels`` (above the threshold).
    """
    grid = load_grid(grid)
    v = voxels.detach().cpu().numpy() if _is_torch(voxels) else np.asarray(voxels)
    if v.ndim == 1:
        v = v[None]
    if v.ndim != 2 or v.shape[1] != grid.n_voxels:
        raise GridError(
            f"voxels have shape {v.shape}, grid '{grid.name}' needs [N, {grid.n_voxels}]"
        )
    if not np.all(np.isfinite(v)):
        raise GridError("voxels: non-finite energies")
    if np.any(v < 0):
        raise GridError("voxels: negative energies")
    shower, voxel = np.nonzero(v > threshold)
    energy = v[shower, voxel].astype(np.float64)
    if mode == "centre":
        cx, cy, cl = grid.cell_centres()
        x, y, layer = cx[voxel], cy[voxel], cl[voxel]
    elif mode == "uniform":
        k = int(points_per_voxel)
        if k < 1:
            raise GridError(f"points_per_voxel must be >= 1, got {points_per_voxel}")
        shower, voxel = np.repeat(shower, k), np.repeat(voxel, k)
        energy = np.repeat(energy / k, k)
        x, y = grid.sample_in_cells(voxel, np.random.default_rng(seed))
        layer = np.searchsorted(grid.layer_offset, voxel, side="right") - 1
    else:
        raise GridError(f"mode must be 'centre' or 'uniform', got {mode!r}")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(shower, minlength=v.shape[0]))])
    z = None
    if grid.layer_depth is not None:
        z = np.asarray(grid.layer_depth, np.float32)[layer]
    return PointCloud(
        E=energy.astype(np.float32),
        x=x.astype(np.float32),
        y=y.astype(np.float32),
        layer=layer.astype(np.int32),
        ptr=ptr.astype(np.int64),
        z=z,
    )
