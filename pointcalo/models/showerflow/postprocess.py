"""CaloClouds II post-processing as torch segment operations, on the model's device.

The same steps as the numpy reference (:mod:`.calibrate`: layer assignment by generated depth,
per-layer energy scaling, width stretch, centre-of-gravity shift, lattice snap), written with
torch ops (``index_add_``, stable sorts) so a batch never leaves the GPU, and
TorchScript-compatible so an exported sampler (:mod:`pointcalo.export`) carries it. Sums and
comparisons are in float64 and the columns are rounded to float32 between steps exactly where
the numpy path rounds them, so both paths give the same showers
(``tests/test_device_postprocess.py``).

Columns are flat over the batch: ``E, x, y [P]`` (float32; MeV, mm), ``layer [P]`` (int64),
``counts [B]`` points per shower.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

N_SCALARS = 5  # as features.N_SCALARS: log n, log(E_vis / E_inc), cog x, cog y, mean layer
MAX_STRETCH = 10.0  # as calibrate.MAX_STRETCH


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
    n_scalars: int = N_SCALARS,
    max_stretch: float = MAX_STRETCH,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Post-process generated points (:func:`.calibrate.calibrate` on tensors): returns
    ``E, x, y`` (float32) and ``layer`` (int64). ``feats [B, D]`` (float64, physical units),
    ``e_inc [B]`` MeV, ``depth [P]`` the continuous generated depth."""
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


class PostProcess(nn.Module):
    """Decode normalised generated points and calibrate them to the shower flow's features:
    ``forward(x0 [P, F] float32, counts [B], feats [B, D] float64, e_inc [B] MeV)
    -> (E, x, y [P] float32, layer [P] int64)``, the numpy path's decode, calibrate and snap
    (:meth:`.Normalizer.decode_points`, :func:`.calibrate.calibrate`, :meth:`.Normalizer.snap`).
    """

    def __init__(
        self,
        normalizer,
        n_layers: int,
        widths: bool,
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
        self.n_scalars, self.max_stretch = N_SCALARS, MAX_STRETCH

    def forward(
        self, x0: Tensor, counts: Tensor, feats: Tensor, e_inc: Tensor
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
            self.n_scalars,
            self.max_stretch,
        )
        if self.pitch > 0:  # back onto the sensor lattice (cells unchanged: it is finer)
            x32, y32 = on_lattice(x32, self.pitch), on_lattice(y32, self.pitch)
        return e32, x32, y32, layer
