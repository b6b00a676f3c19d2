"""Physics observables of showers, computed on a detector grid.

Showers are projected onto a grid (default: the ILD-like 30 x 30 x 30 grid) and cells below a
threshold (default 0.1 MeV, about half a MIP in 0.5 mm silicon) are dropped, as a detector
readout would. From the cells:

- ``n_hits``: cells above threshold; ``e_vis``: their energy sum (MeV); ``e_ratio``:
  ``e_vis / incident_energy``;
- ``cog_x``, ``cog_y`` (mm), ``cog_z`` (mm, depth): energy-weighted centre of gravity;
- ``width``: energy-weighted mean over layers of the transverse width per layer (mm);
- ``layer_energy [N, L]``: longitudinal profile; ``radial_energy [N, R]``: energy in rings of
  distance from the shower axis (x = y = 0); ``layer_width [N, L]``: width per layer (mm);
- ``cell_energy``: energies of all hit cells (pooled, with the owning shower).

And from the points themselves (when showers are point clouds): ``n_points`` and the pooled
``point_energy``. Definitions follow CaloClouds II (Buhmann et al., arXiv 2309.05704).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import awkward as ak
import numpy as np

import voxelize as vx
from pointcalo.errors import PointcaloError
from pointcalo.interrupts import check as check_interrupt
from pointcalo.metrics.alignment import offsets as alignment_offsets
from pointcalo.metrics.alignment import shift, splitmix64
from pointcalo.showers import flatten

#: Per-shower scalar observables and their axis labels.
SCALARS: dict[str, str] = {
    "n_hits": "number of hits",
    "e_vis": "visible energy [MeV]",
    "e_ratio": r"$E_\mathrm{vis}/E_\mathrm{inc}$",
    "cog_x": "centre of gravity x [mm]",
    "cog_y": "centre of gravity y [mm]",
    "cog_z": "centre of gravity z [mm]",
    "width": "mean transverse width [mm]",
    "r_mean": "energy-weighted mean radius [mm]",
    "r_rms": "energy-weighted rms radius [mm]",
    "n_points": "points per shower",
}
#: Per-shower profiles: name -> (label of the profile axis, label of the values).
PROFILES: dict[str, tuple[str, str]] = {
    "layer_energy": ("layer", "energy [MeV]"),
    "radial_energy": ("radius [mm]", "energy [MeV]"),
    "layer_width": ("layer", "width [mm]"),
    "layer_hits": ("layer", "hits"),
    "layer_cog_x": ("layer", "centre x [mm]"),
    "layer_cog_y": ("layer", "centre y [mm]"),
}


@dataclass
class Pooled:
    """Values pooled over cells or points, with the index of the shower each came from."""

    values: np.ndarray
    owner: np.ndarray
    weights: np.ndarray | None = None


@dataclass
class Observables:
    """All observables of one set of showers (see the module docstring for definitions).

    Attributes:
        grid: the grid they were computed on; ``threshold`` in MeV.
        incident_energy: ``[N]`` MeV.
        scalars: name -> ``[N]``.
        profiles: name -> ``[N, K]``; ``radial_edges`` are the ring edges (mm).
        pooled: name -> :class:`Pooled` (``cell_energy``, ``point_energy``).
        mean_image: ``[n_voxels]`` mean energy per voxel (MeV), for shower images.
        voxels: ``[N, n_voxels]`` float32 cell energies above threshold, if kept.
    """

    grid: vx.Grid
    threshold: float
    incident_energy: np.ndarray
    scalars: dict[str, np.ndarray]
    profiles: dict[str, np.ndarray]
    radial_edges: np.ndarray
    pooled: dict[str, Pooled]
    mean_image: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)
    voxels: np.ndarray | None = None
    conditions: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_showers(self) -> int:
        return len(self.incident_energy)

    def subset(self, index: np.ndarray) -> Observables:
        """Observables of the showers ``index`` (pooled values follow their showers)."""
        index = np.asarray(index)
        remap = np.full(self.n_showers, -1, np.int64)
        remap[index] = np.arange(len(index))
        pooled = {}
        for name, p in self.pooled.items():
            keep = remap[p.owner] >= 0
            pooled[name] = Pooled(
                p.values[keep],
                remap[p.owner[keep]],
                None if p.weights is None else p.weights[keep],
            )
        return Observables(
            self.grid,
            self.threshold,
            self.incident_energy[index],
            {k: v[index] for k, v in self.scalars.items()},
            {k: v[index] for k, v in self.profiles.items()},
            self.radial_edges,
            pooled,
            self.mean_image,
            dict(self.meta),
            None if self.voxels is None else self.voxels[index],
            {k: v[index] for k, v in self.conditions.items()},
        )

    def feature_matrix(self, kind: str = "per_layer") -> tuple[np.ndarray, list[str]]:
        """High-level features per shower ``[N, F]`` for FPD/KPD and the classifier test.

        ``"per_layer"`` (the headline, as the CaloChallenge and CaloClouds II high-level
        classifiers): log incident energy, E_vis/E_inc, hit count, centre of gravity, width,
        mean and rms radius, and per layer the energy fraction, hit count, width and centre
        in x and y. ``"global"``: the scalars and the energy fractions of six groups of
        layers (the classifier of earlier versions)."""
        if kind not in FEATURE_SETS:
            raise PointcaloError(f"feature set '{kind}' is not one of {', '.join(FEATURE_SETS)}")
        layers = self.profiles["layer_energy"]
        total = np.maximum(layers.sum(1), 1e-12)
        if kind == "global":
            names = [k for k in SCALARS if k in self.scalars and k not in ("r_mean", "r_rms")]
            cols = [self.scalars[k].astype(np.float64) for k in names]
            groups = np.array_split(np.arange(layers.shape[1]), min(6, layers.shape[1]))
            for g in groups:
                cols.append(layers[:, g].sum(1) / total)
                names.append(f"frac_layers_{g[0]}-{g[-1]}")
            return np.stack(cols, axis=1), names
        names = ["log_e_inc"]
        cols = [np.log(np.maximum(self.incident_energy, 1e-12))[:, None]]
        scal = [
            k
            for k in ("e_ratio", "n_hits", "cog_x", "cog_y", "cog_z", "width", "r_mean", "r_rms")
            if k in self.scalars
        ]
        names += scal
        cols.append(np.stack([self.scalars[k].astype(np.float64) for k in scal], axis=1))
        per_layer = {
            "frac": layers / total[:, None],
            "hits": self.profiles["layer_hits"],
            "width": self.profiles["layer_width"],
            "cog_x": self.profiles["layer_cog_x"],
            "cog_y": self.profiles["layer_cog_y"],
        }
        for key, arr in per_layer.items():
            cols.append(np.asarray(arr, np.float64))
            names += [f"{key}_{i}" for i in range(arr.shape[1])]
        return np.concatenate(cols, axis=1), names


#: Feature sets of :meth:`Observables.feature_matrix`.
FEATURE_SETS: tuple[str, ...] = ("per_layer", "global")


def radial_edges_for(grid: vx.Grid) -> np.ndarray:
    """Ring edges (mm) for the radial profile. Cartesian grids: rings one cell pitch wide (the
    smallest pitch where cells differ) centred on 0, 1, 2, ... pitches (edges at half pitches,
    so no cell centre sits on an edge); cylindrical grids: the union of the radial bin
    edges."""
    if isinstance(grid, vx.CylindricalGrid):
        return np.unique(np.concatenate([e for e in grid.r_edges if len(e) > 1]))
    cx, cy, _ = grid.cell_centres()
    edges = [e for layer in range(grid.n_layers) for e in grid.cell_edges(layer)]
    step = min(float(np.diff(e).min()) for e in edges)  # the smallest cell side of any layer
    r_max = float(np.max(np.hypot(cx, cy)))
    return np.concatenate([[0.0], (np.arange(int(r_max / step) + 2) + 0.5) * step])


#: Pooled values (cells, points) kept per shower: a fixed-size random subsample, weighted so
#: each shower keeps its full weight, bounds the memory of observables by the number of showers
#: (not of points), so files larger than memory can be evaluated chunk by chunk.
POOL_LIMIT = 256
#: Pooled values kept per observable and file, whatever its size: the per-shower limit shrinks
#: (to no fewer than :data:`POOL_MIN`) as the number of showers grows, so memory stays flat.
POOL_TOTAL = 1_000_000
POOL_MIN = 16
#: Showers of one file an evaluation uses (``--max-showers``): beyond this, a fixed uniform
#: random subset (:func:`kept_showers`). Every metric is computed per shower (W1 batches, the
#: classifier, FPD/KPD, per-bin comparisons), so this caps memory and time; at 50,000 the
#: subset's own statistical error is far below any floor the report quotes.
MAX_SHOWERS = 50_000


def pool_limit_for(n_showers: int) -> int:
    """Per-shower pool limit for a file of ``n_showers``: :data:`POOL_TOTAL` shared out,
    between :data:`POOL_MIN` and :data:`POOL_LIMIT`."""
    return int(np.clip(POOL_TOTAL // max(n_showers, 1), POOL_MIN, POOL_LIMIT))


def kept_showers(n_showers: int, limit: int | None) -> np.ndarray | None:
    """Sorted indices of the showers an evaluation keeps from a file of ``n_showers``: None
    (all) when ``limit`` is None, 0 or not exceeded, else the ``limit`` showers whose index
    has the smallest splitmix64 hash: a fixed uniform random subset that depends only on
    ``(n_showers, limit)``, so observables, point samples and per-shower fields of one file
    select the same showers."""
    if not limit or n_showers <= limit:
        return None
    from pointcalo.metrics.alignment import splitmix64

    key = splitmix64(np.arange(n_showers, dtype=np.uint64) ^ np.uint64(0x5EED5EED))
    return np.sort(np.argpartition(key, limit)[:limit])


def in_chunk(kept: np.ndarray | None, start: int, size: int) -> np.ndarray | None:
    """Positions within the chunk ``[start, start + size)`` of the kept showers (None: all)."""
    if kept is None:
        return None
    lo, hi = np.searchsorted(kept, [start, start + size])
    return kept[lo:hi] - start


def kept_chunks(reader: Any, kept: np.ndarray | None, chunk_size: int):
    """The chunks of a shower ``reader`` holding only the ``kept`` showers (None: all; chunks
    left empty are skipped), each with the index of its first shower among the kept ones."""
    start = used = 0
    for chunk in reader.iter_chunks(chunk_size):
        sel = in_chunk(kept, start, len(chunk))
        start += len(chunk)
        if sel is not None:
            if not len(sel):
                continue
            chunk = chunk[sel]
        yield chunk, used
        used += len(chunk)


def bounded_pool(
    values: np.ndarray, owner: np.ndarray, limit: int | None, first_index: int = 0
) -> Pooled:
    """At most ``limit`` values per owner (shower; ``owner`` sorted), chosen by a hash of the
    shower's index in its file (``first_index + owner``) and the value's position in the
    shower, so the choice does not depend on how the file was chunked; each kept value
    weighs ``n_owner / kept_owner``."""
    if limit is None or len(values) == 0:
        return Pooled(values, owner)
    first = np.searchsorted(owner, owner, side="left")
    local = np.arange(len(owner)) - first
    key = ((owner + first_index).astype(np.uint64) << np.uint64(24)) + local.astype(np.uint64)
    order = np.lexsort((splitmix64(key), owner))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order)) - first[order]
    keep = rank < limit
    counts = np.bincount(owner - owner[0], minlength=int(owner[-1] - owner[0]) + 1)
    kept = np.minimum(counts, limit)
    weights = (counts / np.maximum(kept, 1))[owner[keep] - owner[0]]
    return Pooled(values[keep], owner[keep], weights.astype(np.float64))


def concat(parts: list[Observables]) -> Observables:
    """The observables of consecutive chunks of showers as one (owners shifted)."""
    first = parts[0]
    n = [p.n_showers for p in parts]
    shift = np.concatenate([[0], np.cumsum(n)[:-1]])
    pooled = {name: _cat_pools([p.pooled[name] for p in parts], shift) for name in first.pooled}
    total = max(sum(n), 1)
    return Observables(
        first.grid,
        first.threshold,
        np.concatenate([p.incident_energy for p in parts]),
        {k: np.concatenate([p.scalars[k] for p in parts]) for k in first.scalars},
        {k: np.concatenate([p.profiles[k] for p in parts]) for k in first.profiles},
        first.radial_edges,
        pooled,
        sum(p.mean_image * p.n_showers for p in parts) / total,
        dict(first.meta),
        None if first.voxels is None else np.concatenate([p.voxels for p in parts]),
        {
            k: np.concatenate([p.conditions[k] for p in parts])
            for k in first.conditions
            if all(k in p.conditions for p in parts)
        },
    )


def compute(
    showers: ak.Array | None = None,
    *,
    voxels: np.ndarray | None = None,
    incident_energy: np.ndarray | None = None,
    grid: vx.Grid | str = "ild",
    threshold: float = 0.1,
    layer_map: Any = None,
    source_depth: Any = None,
    chunk_size: int = 512,
    progress: Callable[[int], None] | None = None,
    keep_voxels: bool = False,
    pool_limit: int | None = POOL_LIMIT,
    first_index: int = 0,
    alignment: str = "centred",
    alignment_seed: int = 0,
    lattice: float | None = None,
    point_structure: bool = True,
) -> Observables:
    """Observables of point-cloud ``showers``, or of ``voxels [N, n_voxels]`` already on
    ``grid`` (then ``incident_energy`` is needed and point-level observables are absent).

    Args:
        threshold: cell energy threshold in MeV (cells ``<= threshold`` are not hits).
        layer_map, source_depth: passed to :func:`voxelize.project`.
        chunk_size: showers per projection (bounds memory).
        progress: called with the number of showers done.
        keep_voxels: keep the thresholded voxels (float32) for a voxel-level classifier.
        pool_limit: cell and point energies kept per shower (weighted subsample; None: all).
        first_index: index of the first shower in its file (for the subsample's choice and
            the random alignment).
        alignment, alignment_seed, lattice: where the grid sits relative to the shower axis
            (:mod:`pointcalo.metrics.alignment`); centres of gravity and radii are measured
            from the shower axis whatever the alignment.
        point_structure: also the grid-free point observables
            (:mod:`pointcalo.metrics.point_structure`; point showers only).
    """
    grid = vx.load_grid(grid)
    if (showers is None) == (voxels is None):
        raise PointcaloError("observables: give either showers or voxels")
    if not np.isfinite(threshold) or threshold < 0:
        raise PointcaloError(
            f"observables: threshold must be a finite number >= 0 MeV, got {threshold}"
        )
    if chunk_size < 1:
        raise PointcaloError(f"observables: chunk_size must be >= 1, got {chunk_size}")
    if voxels is not None:
        voxels = np.asarray(voxels)
        if voxels.ndim != 2 or voxels.shape[1] != grid.n_voxels:
            raise PointcaloError(
                f"voxels have shape {voxels.shape}, grid '{grid.name}' has {grid.n_voxels} voxels"
            )
        if incident_energy is None or len(incident_energy) != len(voxels):
            raise PointcaloError("observables of voxels need incident_energy [N]")
        if alignment != "centred":
            raise PointcaloError(f"voxels are on their grid already: alignment '{alignment}'")
        n = len(voxels)
        inc = np.asarray(incident_energy, np.float64)
    else:
        n = len(showers)
        inc = ak.to_numpy(showers.incident_energy).astype(np.float64)
    with_structure = point_structure and showers is not None

    cx, cy, cl = grid.cell_centres()
    depth = (
        np.asarray(grid.layer_depth, np.float64)[cl]
        if grid.layer_depth is not None
        else cl.astype(np.float64)
    )
    r_edges = radial_edges_for(grid)
    n_rings = len(r_edges) - 1
    L = grid.n_layers
    by_layer = _onehot(cl, L)

    acc: dict[str, list[np.ndarray]] = {k: [] for k in (*SCALARS, *PROFILES)}
    acc["pair_correlation"] = []
    cells: list[Pooled] = []
    points: list[Pooled] = []
    nn: list[Pooled] = []
    image = np.zeros(grid.n_voxels)
    kept: list[np.ndarray] = []
    for start in range(0, n, chunk_size):
        check_interrupt()  # Ctrl-C between chunks
        stop = min(start + chunk_size, n)
        m = stop - start
        axis = alignment_offsets(
            alignment,
            grid,
            m,
            first_index=first_index + start,
            seed=alignment_seed,
            lattice=lattice,
        )
        if voxels is not None:
            v = np.asarray(voxels[start:stop], dtype=np.float64)
        else:
            chunk = showers[start:stop]
            v = vx.project(
                shift(chunk, axis),
                grid,
                layer_map=layer_map,
                source_depth=source_depth,
                dtype=np.float64,
            ).voxels
            acc["n_points"].append(ak.to_numpy(ak.num(chunk.points, axis=1)).astype(np.float64))
        v = np.where(v > threshold, v, 0.0)
        image += v.sum(0)
        if keep_voxels:
            kept.append(v.astype(np.float32))
        hit = v > 0
        e = v.sum(1)
        safe = np.maximum(e, 1e-300)
        ax, ay = axis[:, 0], axis[:, 1]
        acc["n_hits"].append(hit.sum(1).astype(np.float64))
        acc["e_vis"].append(e)
        acc["e_ratio"].append(e / inc[start:stop])
        acc["cog_x"].append(v @ cx / safe - ax)
        acc["cog_y"].append(v @ cy / safe - ay)
        acc["cog_z"].append(v @ depth / safe)
        per_layer = v @ by_layer
        acc["layer_energy"].append(per_layer)
        acc["layer_hits"].append(hit.astype(np.float64) @ by_layer)
        lw = np.maximum(per_layer, 1e-300)
        mx, my = (v * cx) @ by_layer / lw, (v * cy) @ by_layer / lw
        var = (v * (cx**2 + cy**2)) @ by_layer / lw - mx**2 - my**2
        width = np.sqrt(np.clip(var, 0.0, None)) * (per_layer > 0)
        lit = per_layer > 0
        acc["layer_cog_x"].append(np.where(lit, mx - ax[:, None], 0.0))
        acc["layer_cog_y"].append(np.where(lit, my - ay[:, None], 0.0))
        acc["layer_width"].append(width)
        acc["width"].append((width * per_layer).sum(1) / safe)
        rows, cols = np.nonzero(hit)
        ve = v[rows, cols]
        r = np.hypot(cx[cols] - ax[rows], cy[cols] - ay[rows])  # from the shower axis
        ring = np.minimum(np.searchsorted(r_edges, r, side="right") - 1, n_rings - 1)
        acc["radial_energy"].append(
            np.bincount(rows * n_rings + ring, ve, m * n_rings).reshape(m, n_rings)
        )
        acc["r_mean"].append(np.bincount(rows, ve * r, m) / safe)
        acc["r_rms"].append(np.sqrt(np.bincount(rows, ve * r * r, m) / safe))
        cells.append(bounded_pool(ve, rows + start, pool_limit, first_index))
        if voxels is None:
            flat = flatten(chunk)
            owner = np.repeat(np.arange(start, stop), flat.counts)
            pe = flat.points["E"].astype(np.float64)
            points.append(bounded_pool(pe, owner, pool_limit, first_index))
        if with_structure:
            from pointcalo.metrics.point_structure import point_structure as structure

            d, d_owner, pair = structure(chunk)
            nn.append(bounded_pool(d, d_owner + start, pool_limit, first_index))
            acc["pair_correlation"].append(pair)
        if progress is not None:
            progress(stop)

    scalars = {k: np.concatenate(acc[k]) for k in SCALARS if acc[k]}
    profiles = {k: np.concatenate(acc[k]) if acc[k] else np.zeros((0, 1)) for k in PROFILES}
    if with_structure:
        profiles["pair_correlation"] = np.concatenate(acc["pair_correlation"])
    pooled = {"cell_energy": _cat_pools(cells)}
    if showers is not None:
        pooled["point_energy"] = _cat_pools(points)
    if with_structure:
        pooled["nn_distance"] = _cat_pools(nn)
    return Observables(
        grid,
        threshold,
        inc,
        scalars,
        profiles,
        r_edges,
        pooled,
        image / max(n, 1),
        meta={"alignment": alignment},
        voxels=np.concatenate(kept) if keep_voxels and kept else None,
        conditions=_named_conditions(showers),
    )


def _named_conditions(showers: ak.Array | None) -> dict[str, np.ndarray]:
    """The showers' named per-shower conditions (:data:`pointcalo.conditions.EXTRA`), float64."""
    from pointcalo.conditions import EXTRA

    if showers is None:
        return {}
    return {
        name: ak.to_numpy(showers[name]).astype(np.float64)
        for name in EXTRA
        if name in showers.fields
    }


def _onehot(group: np.ndarray, n_groups: int) -> np.ndarray:
    """``[V, n_groups]`` membership matrix: ``v @ onehot`` sums the columns of ``v`` by group."""
    onehot = np.zeros((len(group), n_groups))
    onehot[np.arange(len(group)), group] = 1.0
    return onehot


def _cat_pools(parts: list[Pooled], shifts: np.ndarray | None = None) -> Pooled:
    """One pool from several, owners shifted by ``shifts`` (one per part); unweighted parts
    weigh 1 each when any part is weighted."""
    if not parts:
        return Pooled(np.zeros(0), np.zeros(0, np.int64))
    shifts = np.zeros(len(parts), np.int64) if shifts is None else shifts
    weighted = any(p.weights is not None for p in parts)
    return Pooled(
        np.concatenate([p.values for p in parts]),
        np.concatenate([p.owner + s for p, s in zip(parts, shifts, strict=True)]).astype(np.int64),
        np.concatenate([np.ones(len(p.values)) if p.weights is None else p.weights for p in parts])
        if weighted
        else None,
    )
