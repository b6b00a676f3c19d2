"""How the deposits of a shower sit next to each other, measured on the points alone (no grid).

Geant4 deposits cluster along the tracks of the shower's charged particles: neighbouring
sub-cells of one layer are lit together, and one sub-cell holds one deposit (the data's points
are sums per sub-cell). A generator that smears its points, or puts several points into one
sub-cell, can still match every grid observable on one readout grid; these two observables see
it on any grid:

- ``nn_distance``: for every point, the transverse distance (mm) to the nearest other point of
  the same shower in the same layer (points alone in their layer have none). Geant4's lattice
  data never has 0 (one point per sub-cell) and peaks at one sub-cell pitch.
- ``adjacency_profile``: per ring of distance from the shower's energy-weighted axis, the mean
  number of points per shower and the share of them with another point of their layer within
  ``reach`` (default 1.5 sub-cell pitches: a side or corner neighbour). Geant4's halo points
  sit on tracks, so most of them have a neighbour even 30-60 mm out; points drawn
  independently of each other given the shower have almost none there.
- ``pair_correlation``: the energy-weighted two-point correlation within a layer: for every
  shower, the share of ``sum_{i != j, same layer} E_i E_j`` at transverse distance
  ``|r_i - r_j|`` in bins of :data:`PAIR_EDGES` (mm), a ``[N, K]`` profile summing to one per
  shower. Its W1 is taken on ``log10`` of the bin centres, so structure at 1 mm weighs as much
  as structure at 10 mm (the shower's width is measured elsewhere). The first bin (below
  0.1 mm) holds pairs sharing a sub-cell.

Both use one k-d tree per shower (scipy's ``cKDTree``) over ``(x, y, layer * 10^6 mm)``, so
points of different layers are never neighbours; cost is about ``P log P`` per shower.
"""

from __future__ import annotations

import awkward as ak
import numpy as np

#: Bin edges (mm) of the pair-distance profile: duplicates, then from a sub-cell pitch
#: (0.848 mm) to 60 mm, geometric.
PAIR_EDGES = np.concatenate([[0.0, 0.1], np.geomspace(0.5, 60.0, 16)])
#: log10 of the bin centres (the first bin, duplicates, sits at 0.05 mm), for the W1.
PAIR_CENTRES_LOG10 = np.log10(
    np.concatenate([[0.05, 0.3], np.sqrt(PAIR_EDGES[2:-1] * PAIR_EDGES[3:])])
)
_LAYER_SEPARATION = 1.0e6  # mm: far beyond any pair distance of interest


def _coords(x: np.ndarray, y: np.ndarray, layer: np.ndarray) -> np.ndarray:
    return np.stack([x, y, layer.astype(np.float64) * _LAYER_SEPARATION], axis=1)


def _columns(showers: ak.Array) -> tuple[np.ndarray, ...]:
    """``(counts [N], offsets [N + 1], x, y [P] float64 mm, layer [P] int64, E [P] float64)``."""
    pts = showers.points
    counts = ak.to_numpy(ak.num(pts, axis=1))
    flat = ak.flatten(pts)
    x = ak.to_numpy(flat.x).astype(np.float64)
    y = ak.to_numpy(flat.y).astype(np.float64)
    layer = ak.to_numpy(flat.layer).astype(np.int64)
    e = ak.to_numpy(flat.E).astype(np.float64)
    return counts, np.concatenate([[0], np.cumsum(counts)]), x, y, layer, e


def point_structure(showers: ak.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(nn [P'], nn_owner [P'], pair [N, K])`` of point-cloud ``showers``: the distance (mm)
    of each point to the nearest other point of its layer (points alone in their layer are
    left out; ``nn_owner`` is the shower of each value) and the energy-weighted pair-distance
    profile per shower (rows sum to one; all zero for a shower without a pair). See the module
    docstring."""
    from scipy.spatial import cKDTree

    counts, offsets, x, y, layer, e = _columns(showers)
    n = len(counts)
    k = len(PAIR_EDGES) - 1
    pair = np.zeros((n, k))
    nn_parts, owner_parts = [], []
    radii = PAIR_EDGES[1:]
    for i in range(n):
        lo, hi = offsets[i], offsets[i + 1]
        if hi - lo < 2:
            continue
        xyz = _coords(x[lo:hi], y[lo:hi], layer[lo:hi])
        tree = cKDTree(xyz)
        d, _ = tree.query(xyz, k=2)
        nn = d[:, 1]
        ok = nn < 0.5 * _LAYER_SEPARATION
        nn_parts.append(nn[ok])
        owner_parts.append(np.full(int(ok.sum()), i, np.int64))
        w = e[lo:hi]
        cum = tree.count_neighbors(tree, radii, weights=(w, w), cumulative=True)
        cum = np.asarray(cum, np.float64) - float(np.sum(w * w))  # drop i == j
        hist = np.diff(np.concatenate([[0.0], cum]))
        total = hist.sum()
        if total > 0:
            pair[i] = np.clip(hist, 0.0, None) / total
    nn_all = np.concatenate(nn_parts) if nn_parts else np.zeros(0)
    owner = np.concatenate(owner_parts) if owner_parts else np.zeros(0, np.int64)
    return nn_all, owner, pair


#: Ring edges (mm from the shower's axis) of :func:`adjacency_profile`.
RING_EDGES = np.array([0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, np.inf])


def adjacency_profile(
    showers: ak.Array, pitch: float, edges: np.ndarray = RING_EDGES, reach: float = 1.5
) -> tuple[np.ndarray, np.ndarray]:
    """``(points [R], adjacent [R])`` over rings ``edges`` (mm) of transverse distance from each
    shower's energy-weighted centre: the mean number of points per shower in each ring and the
    share of them with another point of the same layer within ``reach * pitch`` (mm; ``pitch``:
    the data's sub-cell pitch). ``adjacent`` is NaN for an empty ring. See the module
    docstring."""
    from scipy.spatial import cKDTree

    counts, offsets, x, y, layer, e = _columns(showers)
    n_rings = len(edges) - 1
    total, near = np.zeros(n_rings), np.zeros(n_rings)
    for i in range(len(counts)):
        lo, hi = offsets[i], offsets[i + 1]
        w = e[lo:hi]
        if hi - lo < 1 or w.sum() <= 0:
            continue
        cx, cy = np.sum(w * x[lo:hi]) / w.sum(), np.sum(w * y[lo:hi]) / w.sum()
        ring = np.clip(
            np.digitize(np.hypot(x[lo:hi] - cx, y[lo:hi] - cy), edges) - 1, 0, n_rings - 1
        )
        has = np.zeros(hi - lo, bool)
        if hi - lo > 1:
            xyz = _coords(x[lo:hi], y[lo:hi], layer[lo:hi])
            d, _ = cKDTree(xyz).query(xyz, k=2)
            has = d[:, 1] <= reach * pitch
        total += np.bincount(ring, minlength=n_rings)
        near += np.bincount(ring, has, minlength=n_rings)
    with np.errstate(invalid="ignore"):
        share = np.where(total > 0, near / np.maximum(total, 1), np.nan)
    return total / max(len(counts), 1), share
