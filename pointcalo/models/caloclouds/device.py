"""CaloClouds II post-processing as torch segment operations, on the model's device.

The same steps as the numpy reference (:mod:`.calibrate`, :mod:`.hits`: layer assignment by
generated depth, per-layer energy scaling, width stretch, centre-of-gravity shift, hit-cell
merging, lattice snap), written with torch ops (``index_add_``, ``unique``, ``searchsorted``,
stable sorts) so a batch never leaves the GPU, and TorchScript-compatible so an exported
sampler (:mod:`pointcalo.export`) carries it. Sums and comparisons are in float64 and the
columns are rounded to float32 between steps exactly where the numpy path rounds them, so both
paths give the same showers (``tests/test_device_postprocess.py``).

Columns are flat over the batch: ``E, x, y [P]`` (float32; MeV, mm), ``layer [P]`` (int64),
``counts [B]`` points per shower.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

N_SCALARS = 5  # as features.N_SCALARS: log n, log(E_vis / E_inc), cog x, cog y, mean layer
MAX_STRETCH = 10.0  # as calibrate.MAX_STRETCH
HIT_STEP = 1.0  # as hits.STEP
MAX_MOVED = 3  # as hits.MAX_MOVED
SPAN = 1 << 12  # as hits._SPAN


def segment_sum(values: Tensor, index: Tensor, n: int) -> Tensor:
    """``[n]`` sums of ``values [P]`` by ``index [P]`` (numpy's weighted ``bincount``)."""
    return torch.zeros(n, dtype=values.dtype, device=values.device).index_add_(0, index, values)


def _stable_argsort(values: Tensor) -> Tensor:
    return torch.sort(values, stable=True)[1]


def lexsort2(minor: Tensor, major: Tensor) -> Tensor:
    """Indices sorting by ``major`` then ``minor`` (``np.lexsort((minor, major))``)."""
    idx = _stable_argsort(minor)
    return idx[_stable_argsort(major[idx])]


def largest_remainder(frac: Tensor, counts: Tensor) -> Tensor:
    """``[B, L]`` integers summing to ``counts [B]`` row by row, proportional to ``frac``."""
    fn = frac / frac.sum(1, keepdim=True).clamp(min=1e-12)
    want = fn * counts[:, None].to(frac.dtype)
    per = torch.floor(want).to(torch.int64)
    rest = counts - per.sum(1)
    rem = -(want - per.to(want.dtype))
    rank = torch.sort(torch.sort(rem, dim=1, stable=True)[1], dim=1, stable=True)[1]
    return per + (rank < rest[:, None]).to(torch.int64)


def on_lattice(col: Tensor, pitch: float) -> Tensor:
    """Lattice cell centres of ``col`` (pitch mm), in ``col``'s dtype."""
    return (torch.floor(col / pitch) + 0.5) * pitch


def calibrate(
    e32: Tensor,
    x32: Tensor,
    y32: Tensor,
    depth: Tensor,
    counts: Tensor,
    feats: Tensor,
    e_inc: Tensor,
    n_layers: int,
    widths: bool,
    hit_cell: float,
    hit_threshold: float,
    u: Tensor,
    n_scalars: int = N_SCALARS,
    max_stretch: float = MAX_STRETCH,
    hit_step: float = HIT_STEP,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Post-process generated points (:func:`.calibrate.calibrate` on tensors): returns
    ``E, x, y`` (float32) and ``layer`` (int64). ``feats [B, D]`` (float64, physical units),
    ``e_inc [B]`` MeV, ``depth [P]`` the continuous generated depth; ``hit_cell > 0`` turns on
    the hit-count calibration with ``u [P]`` uniform numbers."""
    B, L = counts.shape[0], n_layers
    dev = e32.device
    f64 = torch.float64
    shower = torch.repeat_interleave(torch.arange(B, device=dev), counts)
    frac_n = feats[:, n_scalars : n_scalars + L].clamp(min=0)
    frac_e = feats[:, n_scalars + L : n_scalars + 2 * L].clamp(min=0)
    e_vis = torch.exp(feats[:, 1]) * e_inc

    per_layer = largest_remainder(frac_n, counts)
    order = lexsort2(depth, shower)
    layer_ids = torch.arange(L, device=dev).repeat(B)
    assigned = torch.empty_like(shower)
    assigned[order] = torch.repeat_interleave(layer_ids, per_layer.reshape(-1))
    key = shower * L + assigned

    e = e32.to(f64)
    target = frac_e / frac_e.sum(1, keepdim=True).clamp(min=1e-12) * e_vis[:, None]
    target = torch.where(per_layer > 0, target, torch.zeros_like(target))
    total = target.sum(1, keepdim=True)
    target = torch.where(
        total > 0, target * (e_vis[:, None] / total.clamp(min=1e-300)), torch.zeros_like(target)
    )
    have = segment_sum(e, key, B * L)
    flat = target.reshape(-1)
    scale = torch.where(have > 0, flat / have.clamp(min=1e-300), torch.zeros_like(have))
    e = e * scale[key]
    e_sum = segment_sum(e, shower, B)
    empty = e_sum <= 0  # nothing to calibrate against: spread E_vis evenly
    if bool(empty.any()):
        even = e_vis / counts.clamp(min=1).to(f64)
        e = torch.where(empty[shower], even[shower], e)
        e_sum = segment_sum(e, shower, B)
    e_out = e.to(torch.float32)

    target_w = torch.zeros(B * L, dtype=f64, device=dev)
    if widths:
        target_w = feats[:, n_scalars + 2 * L : n_scalars + 3 * L].clamp(min=0).reshape(-1)
    ok = per_layer.reshape(-1) > 1
    cog = feats[:, 2:4]
    x32, y32 = _stretch_and_shift(
        x32, y32, e, key, shower, e_sum, widths, target_w, ok, cog, max_stretch
    )
    if hit_cell > 0:
        hit_target = torch.round(torch.exp(feats[:, -1])).to(torch.int64)
        x32, y32 = calibrate_hits(
            e_out, x32, y32, assigned, counts, hit_target, hit_cell, hit_threshold, u, hit_step
        )
        x32, y32 = _stretch_and_shift(
            x32, y32, e, key, shower, e_sum, widths, target_w, ok, cog, max_stretch
        )
        x32, y32 = calibrate_hits(
            e_out, x32, y32, assigned, counts, hit_target, hit_cell, hit_threshold, u, hit_step
        )
    return e_out, x32, y32, assigned


def _stretch_and_shift(
    x32: Tensor,
    y32: Tensor,
    e: Tensor,
    key: Tensor,
    shower: Tensor,
    e_sum: Tensor,
    use_w: bool,
    target_w: Tensor,
    ok: Tensor,
    cog: Tensor,
    max_stretch: float,
) -> tuple[Tensor, Tensor]:
    n_keys = target_w.shape[0]
    x, y = x32.to(torch.float64), y32.to(torch.float64)
    if use_w:
        e_l = segment_sum(e, key, n_keys).clamp(min=1e-300)
        cx, cy = segment_sum(e * x, key, n_keys) / e_l, segment_sum(e * y, key, n_keys) / e_l
        dx, dy = x - cx[key], y - cy[key]
        cur = torch.sqrt(segment_sum(e * (dx * dx + dy * dy), key, n_keys) / e_l)
        ok = ok & (cur > 1e-9)
        one = torch.ones_like(cur)
        stretch = torch.where(ok, (target_w / cur.clamp(min=1e-9)).clamp(0, max_stretch), one)
        stretch = torch.where(ok, stretch.clamp(min=1 / max_stretch), one)
        x, y = cx[key] + dx * stretch[key], cy[key] + dy * stretch[key]
    w_sum = e_sum.clamp(min=1e-300)
    n = e_sum.shape[0]
    x_new = (x + (cog[:, 0] - segment_sum(e * x, shower, n) / w_sum)[shower]).to(torch.float32)
    y_new = (y + (cog[:, 1] - segment_sum(e * y, shower, n) / w_sum)[shower]).to(torch.float32)
    return x_new, y_new


def _cell_index(c: Tensor, cell: float, span: int) -> Tensor:
    return (torch.floor(c / cell + 0.5).to(torch.int64) + span // 2).clamp(0, span - 1)


def count_hits(
    x: Tensor,
    y: Tensor,
    layer: Tensor,
    e: Tensor,
    counts: Tensor,
    cell: float,
    threshold: float,
    span: int = SPAN,
) -> Tensor:
    """``[B]`` cells (pitch ``cell`` mm) above ``threshold`` MeV per shower (as
    :func:`.hits.count_hits`; coordinates and energies float64)."""
    B = counts.shape[0]
    shower = torch.repeat_interleave(torch.arange(B, device=x.device), counts)
    keys = ((shower * 64 + layer) * span + _cell_index(x, cell, span)) * span
    keys = keys + _cell_index(y, cell, span)
    uniq, inv = torch.unique(keys, sorted=True, return_inverse=True)
    hit = segment_sum(e, inv, uniq.shape[0]) > threshold
    owner = uniq // (64 * span * span)
    return segment_sum(hit.to(torch.int64), owner, B)


def calibrate_hits(
    e32: Tensor,
    x32: Tensor,
    y32: Tensor,
    layer_all: Tensor,
    counts: Tensor,
    target: Tensor,
    cell: float,
    threshold: float,
    u: Tensor,
    step: float = HIT_STEP,
    rounds: int = 12,
    max_points: int = MAX_MOVED,
    span: int = SPAN,
) -> tuple[Tensor, Tensor]:
    """Merge small hit cells into neighbouring hit cells until each shower has at most
    ``target [B]`` hits (:func:`.hits.calibrate_hits` on tensors); returns new ``x, y``."""
    B = counts.shape[0]
    dev = x32.device
    shower_all = torch.repeat_interleave(torch.arange(B, device=dev), counts)
    x_all, y_all = x32.to(torch.float64), y32.to(torch.float64)
    e_all = e32.to(torch.float64)
    d = torch.tensor(
        [[-1, -1], [-1, 0], [-1, 1], [0, -1], [0, 1], [1, -1], [1, 0], [1, 1]], device=dev
    )
    per_shower = 64 * span * span
    half = span // 2
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    sel = torch.arange(shower_all.shape[0], device=dev)
    for r in range(rounds):
        shower, layer = shower_all[sel], layer_all[sel]
        x, y, e = x_all[sel], y_all[sel], e_all[sel]
        ix, iy = _cell_index(x, cell, span), _cell_index(y, cell, span)
        keys = ((shower * 64 + layer) * span + ix) * span + iy
        uniq, inv, n_in = torch.unique(keys, sorted=True, return_inverse=True, return_counts=True)
        n_cells = uniq.shape[0]
        pos_all = torch.arange(keys.shape[0], device=dev)
        first = torch.full((n_cells,), keys.shape[0], dtype=torch.int64, device=dev)
        first = first.scatter_reduce(0, inv, pos_all, "amin")
        e_cell = segment_sum(e, inv, n_cells)
        hit = e_cell > threshold
        cell_shower = uniq // per_shower
        hits = segment_sum(hit.to(torch.int64), cell_shower, B)
        quota = torch.ceil(step * (hits - target).clamp(min=0).to(torch.float64))
        quota = quota.to(torch.int64)
        small = torch.nonzero(hit & (n_in <= max_points) & (quota[cell_shower] > 0))[:, 0]
        if small.shape[0] == 0:
            break
        w = e_cell[small].clamp(min=1e-300)
        cx = segment_sum(e * x, inv, n_cells)[small] / w
        cy = segment_sum(e * y, inv, n_cells)[small] / w
        cix, ciy = ix[first[small]], iy[first[small]]
        nkeys = uniq[small][:, None] + d[:, 0] * span + d[:, 1]
        pos = torch.searchsorted(uniq, nkeys).clamp(0, n_cells - 1)
        found = (uniq[pos] == nkeys) & hit[pos]
        centre_x = (cix[:, None] + d[:, 0] - half).to(torch.float64) * cell
        centre_y = (ciy[:, None] + d[:, 1] - half).to(torch.float64) * cell
        ccx, ccy = cx[:, None], cy[:, None]
        lo, hi = 0.45 * cell, 0.45 * cell
        move = (torch.minimum(torch.maximum(ccx, centre_x - lo), centre_x + hi) - ccx) ** 2
        move = move + (torch.minimum(torch.maximum(ccy, centre_y - lo), centre_y + hi) - ccy) ** 2
        move = torch.where(found, move, torch.full_like(move, float("inf")))
        best = torch.argmin(move, 1)
        ok = torch.isfinite(move[torch.arange(small.shape[0], device=dev), best])
        small, best = small[ok], best[ok]
        rand = torch.remainder(u[sel][first[small]].to(torch.float64) + r * golden, 1.0)
        order = lexsort2(rand, cell_shower[small])
        small, best = small[order], best[order]
        owner = cell_shower[small]
        rank = torch.arange(small.shape[0], device=dev) - torch.searchsorted(owner, owner)
        take = rank < quota[owner]
        small, best = small[take], best[take]
        if small.shape[0] == 0:
            break
        chosen = torch.full((n_cells,), -1, dtype=torch.int64, device=dev)
        chosen[small] = best
        moving = torch.nonzero(chosen[inv] >= 0)[:, 0]
        dm = d[chosen[inv[moving]]]
        moved = sel[moving]
        centre = (ix[moving] + dm[:, 0] - half).to(torch.float64) * cell
        x_all[moved] = torch.minimum(torch.maximum(x_all[moved], centre - lo), centre + hi)
        centre = (iy[moving] + dm[:, 1] - half).to(torch.float64) * cell
        y_all[moved] = torch.minimum(torch.maximum(y_all[moved], centre - lo), centre + hi)
        busy = torch.zeros(B, dtype=torch.bool, device=dev)
        busy[owner] = True
        sel = sel[busy[shower]]
    return x_all.to(torch.float32), y_all.to(torch.float32)


class PostProcess(nn.Module):
    """Decode normalised generated points and calibrate them to the shower flow's features:
    ``forward(x0 [P, F] float32, counts [B], feats [B, D] float64, e_inc [B] MeV, u [P])
    -> (E, x, y [P] float32, layer [P] int64)``, the numpy path's decode, calibrate and snap
    (:meth:`.Normalizer.decode_points`, :func:`.calibrate.calibrate`, :meth:`.Normalizer.snap`).
    """

    def __init__(
        self,
        normalizer,
        n_layers: int,
        widths: bool,
        hits: tuple[float, float] | None,
        clip: float = 10.0,
    ) -> None:
        super().__init__()
        spec = normalizer.spec
        names = list(spec.features)
        if names != ["E", "x", "y", "layer"] or spec.integer_feature != "layer":
            raise ValueError(f"on-device post-processing needs features E, x, y, layer: {names}")
        self.register_buffer("mean", torch.as_tensor(normalizer.mean, dtype=torch.float64))
        self.register_buffer("std", torch.as_tensor(normalizer.std, dtype=torch.float64))
        self.log_e = "E" in spec.log_features
        self.pitch = float(spec.lattice_pitch) if set(spec.lattice_features) == {"x", "y"} else 0.0
        self.layer_max = int(spec.integer_max)
        self.n_layers, self.widths, self.clip = n_layers, widths, clip
        self.hit_cell = float(hits[0]) if hits is not None else 0.0
        self.hit_threshold = float(hits[1]) if hits is not None else 0.0
        self.n_scalars, self.max_stretch, self.hit_step = N_SCALARS, MAX_STRETCH, HIT_STEP

    def forward(
        self, x0: Tensor, counts: Tensor, feats: Tensor, e_inc: Tensor, u: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        x = torch.nan_to_num(x0.to(torch.float64)).clamp(-self.clip, self.clip)
        x = x * self.std + self.mean
        e = torch.exp(x[:, 0]) if self.log_e else x[:, 0]
        px, py = x[:, 1], x[:, 2]
        if self.pitch > 0:
            px, py = on_lattice(px, self.pitch), on_lattice(py, self.pitch)
        depth = x0[:, 3]  # the continuous generated depth, for the layer assignment
        e32, x32, y32, layer = calibrate(
            e.to(torch.float32),
            px.to(torch.float32),
            py.to(torch.float32),
            depth,
            counts,
            feats,
            e_inc,
            self.n_layers,
            self.widths,
            self.hit_cell,
            self.hit_threshold,
            u,
            self.n_scalars,
            self.max_stretch,
            self.hit_step,
        )
        if self.pitch > 0:  # back onto the sensor lattice (cells unchanged: it is finer)
            x32, y32 = on_lattice(x32, self.pitch), on_lattice(y32, self.pitch)
        return e32, x32, y32, layer
