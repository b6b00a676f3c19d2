"""CaloClouds II post-processing of generated points (Buhmann et al., arXiv 2309.05704),
vectorised over a batch of showers (segment operations, no per-shower loop).

Given the shower flow's features for each shower (:mod:`.features`), the points are

1. assigned to layers in order of their generated depth, each layer getting its share of the
   shower's points (largest remainders);
2. scaled in energy so each layer holds the flow's energy fraction of the flow's visible energy
   (the energy of a layer left without points goes to the others in proportion);
3. with per-layer widths in the flow, stretched transversely about each layer's
   energy-weighted centre so the layer's width is the flow's (stretch clipped to 0.1-10);
4. shifted transversely to the flow's centre of gravity.

Earlier versions also merged small cells of the ILD 5.088 mm grid into neighbouring hit cells
until the shower had the flow's number of hit cells. That tuned the output to one grid and one
alignment of it (on a grid shifted by half a cell the hit counts were off again,
``docs/fidelity.md``); it is gone. What stays acts on the points alone.
"""

from __future__ import annotations

import numpy as np

#: Shower-level scalars before the per-layer features: log n, log(E_vis / E_inc), cog x, cog y,
#: mean layer (:mod:`.features`).
N_SCALARS = 5
MAX_STRETCH = 10.0


def largest_remainder(frac: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``[B, L]`` integers summing to ``counts [B]`` row by row, proportional to ``frac``."""
    fn = frac / np.maximum(frac.sum(1, keepdims=True), 1e-12)
    want = fn * counts[:, None]
    per = np.floor(want).astype(np.int64)
    rest = counts - per.sum(1)
    rank = np.argsort(np.argsort(-(want - per), axis=1, kind="stable"), axis=1, kind="stable")
    return per + (rank < rest[:, None])


def calibrate(
    pts: dict[str, np.ndarray],
    depth: np.ndarray,
    counts: np.ndarray,
    feats: np.ndarray,
    e_inc: np.ndarray,
    n_layers: int,
    widths: bool = False,
) -> None:
    """Post-process generated points ``pts`` (columns ``E, x, y, layer`` of ``sum(counts)``
    points) in place, from the flow features ``feats [B, D]`` (physical units) and incident
    energies ``e_inc [B]`` (MeV); ``depth [P]`` is the continuous generated depth."""
    B, L = len(counts), n_layers
    shower = np.repeat(np.arange(B), counts)
    frac_n = np.clip(feats[:, N_SCALARS : N_SCALARS + L], 0, None)
    frac_e = np.clip(feats[:, N_SCALARS + L : N_SCALARS + 2 * L], 0, None)
    e_vis = np.exp(feats[:, 1]) * e_inc

    per_layer = largest_remainder(frac_n, counts)
    order = np.lexsort((depth, shower))
    assigned = np.empty(len(shower), np.int64)
    assigned[order] = np.repeat(np.tile(np.arange(L), B), per_layer.ravel())
    pts["layer"][:] = assigned
    key = shower * L + assigned

    e = pts["E"].astype(np.float64)
    target = frac_e / np.maximum(frac_e.sum(1, keepdims=True), 1e-12) * e_vis[:, None]
    target = np.where(per_layer > 0, target, 0.0)
    total = target.sum(1, keepdims=True)
    target = np.where(total > 0, target * (e_vis[:, None] / np.maximum(total, 1e-300)), 0.0)
    have = np.bincount(key, e, B * L)
    scale = np.where(have > 0, target.ravel() / np.maximum(have, 1e-300), 0.0)
    e = e * scale[key]
    e_sum = np.bincount(shower, e, B)
    empty = e_sum <= 0  # nothing to calibrate against: spread E_vis evenly
    if empty.any():
        even = e_vis / np.maximum(counts, 1)
        e = np.where(empty[shower], even[shower], e)
        e_sum = np.bincount(shower, e, B)
    pts["E"][:] = e.astype(np.float32)

    target_w = None
    if widths:
        target_w = np.clip(feats[:, N_SCALARS + 2 * L : N_SCALARS + 3 * L], 0, None).ravel()
    ok = per_layer.ravel() > 1
    _stretch_and_shift(pts, e, key, shower, e_sum, target_w, ok, feats[:, 2:4], B * L)


def _stretch_and_shift(
    pts: dict[str, np.ndarray],
    e: np.ndarray,
    key: np.ndarray,
    shower: np.ndarray,
    e_sum: np.ndarray,
    target_w: np.ndarray | None,
    ok: np.ndarray,
    cog: np.ndarray,
    n_keys: int,
) -> None:
    """Stretch each (shower, layer) about its energy-weighted centre to ``target_w`` (if given;
    only where ``ok``), then shift each shower to the centre of gravity ``cog [B, 2]``."""
    x, y = pts["x"].astype(np.float64), pts["y"].astype(np.float64)
    if target_w is not None:
        e_l = np.maximum(np.bincount(key, e, n_keys), 1e-300)
        cx, cy = np.bincount(key, e * x, n_keys) / e_l, np.bincount(key, e * y, n_keys) / e_l
        dx, dy = x - cx[key], y - cy[key]
        cur = np.sqrt(np.bincount(key, e * (dx**2 + dy**2), n_keys) / e_l)
        ok = ok & (cur > 1e-9)
        stretch = np.where(ok, np.clip(target_w / np.maximum(cur, 1e-9), 0, MAX_STRETCH), 1.0)
        stretch = np.where(ok, np.maximum(stretch, 1 / MAX_STRETCH), 1.0)
        x, y = cx[key] + dx * stretch[key], cy[key] + dy * stretch[key]
    w_sum = np.maximum(e_sum, 1e-300)
    n = len(e_sum)
    for name, col, j in (("x", x, 0), ("y", y, 1)):
        shift = cog[:, j] - np.bincount(shower, e * col, n) / w_sum
        pts[name][:] = (col + shift[shower]).astype(np.float32)
