"""Shower-level features and their conditional flow (CaloClouds II's "ShowerFlow",
Buhmann et al., arXiv 2309.05704).

Per shower: ``log n`` (points), ``log(E_vis / E_inc)``, the energy-weighted ``x``, ``y`` and
layer, the fraction of points and of energy in each of the ``L`` layers and, optionally, each
layer's energy-weighted transverse width (mm; ``sqrt(var x + var y)`` about the layer's centre,
0 for layers with fewer than two points) and, optionally, ``log`` of the number of hit cells
(pitch ``hit_cell`` mm, above ``hit_threshold`` MeV; :mod:`.hits`). Generation draws them from
a conditional neural spline flow (zuko) given the incident energy and then calibrates the
generated points to them (:mod:`.calibrate`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from pointcalo.clouds import Normalizer, PointCloudData
from pointcalo.models.showerflow.calibrate import N_SCALARS  # log n, log(E_vis/E_inc), cog, layer
from pointcalo.streams import cloud_base


def n_shower_features(n_layers: int, widths: bool, hits: bool = False) -> int:
    return N_SCALARS + (3 if widths else 2) * n_layers + int(hits)


def shower_features(
    offsets: np.ndarray,
    points: dict[str, np.ndarray],
    incident_energy: np.ndarray,
    n_layers: int,
    widths: bool = False,
    hit_cell: float = 0.0,
    hit_threshold: float = 0.1,
) -> np.ndarray:
    """``[N, n_shower_features(L, widths, hit_cell > 0)]`` features of showers given as flat
    columns."""
    counts = np.diff(offsets)
    n = len(counts)
    shower = np.repeat(np.arange(n), counts)
    e = points["E"].astype(np.float64)
    x, y = points["x"].astype(np.float64), points["y"].astype(np.float64)
    layer = points["layer"].astype(np.int64)
    e_vis = np.bincount(shower, e, n)
    safe = np.maximum(e_vis, 1e-12)
    cog = [np.bincount(shower, e * c, n) / safe for c in (x, y)]
    cog_l = np.bincount(shower, e * layer, n) / safe
    key = shower * n_layers + layer
    n_l = np.bincount(key, minlength=n * n_layers)
    e_l = np.bincount(key, e, n * n_layers)
    cols = [
        np.stack([np.log(np.maximum(counts, 1)), np.log(safe / incident_energy), *cog, cog_l], 1),
        n_l.reshape(-1, n_layers) / np.maximum(counts, 1)[:, None],
        e_l.reshape(-1, n_layers) / safe[:, None],
    ]
    if widths:
        el = np.maximum(e_l, 1e-300)
        cx, cy = (
            np.bincount(key, e * x, n * n_layers) / el,
            np.bincount(key, e * y, n * n_layers) / el,
        )
        var = np.bincount(key, e * ((x - cx[key]) ** 2 + (y - cy[key]) ** 2), n * n_layers) / el
        width = np.where(n_l > 1, np.sqrt(np.clip(var, 0, None)), 0.0)
        cols.append(width.reshape(-1, n_layers))
    if hit_cell > 0:
        from pointcalo.models.showerflow.hits import count_hits

        hits = count_hits(x, y, layer, e, counts, hit_cell, hit_threshold)
        cols.append(np.log(np.maximum(hits, 1))[:, None])
    return np.concatenate(cols, 1)


def data_features(
    data: PointCloudData, widths: bool = False, hits: tuple[float, float] | None = None
) -> np.ndarray:
    """Shower features (:func:`.features.shower_features`) of layered training clouds;
    ``hits``: ``(cell mm, threshold MeV)`` of the hit count, or None."""
    if data.spec.integer_feature is None:
        raise ValueError("CaloClouds needs layered showers (features E, x, y, layer)")
    return shower_features(
        data.offsets,
        data.points,
        data.condition,
        data.spec.integer_max + 1,
        widths,
        *(hits or (0.0, 0.1)),
    )


class ShowerFlow(nn.Module):
    """Conditional neural spline flow (zuko; Durkan et al., arXiv 1906.04032) of the
    standardised shower features given ``context`` numbers: the standardised log incident
    energy, then any named further conditions, standardised (:func:`flow_context`).

    ``passes``: sequential passes of each transform's inverse, i.e. of sampling. ``None`` is
    fully autoregressive (one pass per feature: ~100 network evaluations per transform for
    showers of 30 layers, the slowest part of generation); ``2`` makes each transform a
    coupling layer (two halves, alternating), sampled in two passes.
    """

    def __init__(
        self,
        n_features: int,
        transforms: int,
        hidden: int,
        passes: int | None = None,
        context: int = 1,
    ) -> None:
        super().__init__()
        import zuko

        self.flow = zuko.flows.NSF(
            features=n_features,
            context=context,
            transforms=transforms,
            hidden_features=(hidden, hidden),
            passes=passes,
        )
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))

    def fit_scaling(self, feats: np.ndarray) -> None:
        """Standardise with the training features' mean and std (std floored at 1e-3)."""
        self.mean.copy_(torch.as_tensor(feats.mean(0), dtype=torch.float32))
        self.std.copy_(torch.as_tensor(np.maximum(feats.std(0), 1e-3), dtype=torch.float32))

    def nll(self, feats: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of ``feats [B, D]`` given ``context`` (``[B]``: the
        standardised log energy alone, or ``[B, C]``)."""
        z = (feats - self.mean) / self.std
        return -self.flow(_columns(context)).log_prob(z).mean()

    @torch.no_grad()
    def sample(self, context: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """Features (physical units) from base noise ``[B, D]`` (each cloud's own draw) given
        ``context`` (``[B]`` or ``[B, C]``)."""
        z = self.flow(_columns(context)).transform.inv(base)
        return z * self.std + self.mean


class TrainingFeatures:
    """The shower features of a family's training clouds (:func:`data_features`), with the
    ``flow``'s standardisation fitted on them; :meth:`loss` is the flow's likelihood step on
    the clouds of a training step."""

    def __init__(self, flow: ShowerFlow, data: PointCloudData, widths: bool, hits=None) -> None:
        feats = data_features(data, widths, hits)
        flow.fit_scaling(feats)
        self.flow, self.table = flow, torch.as_tensor(feats, dtype=torch.float32)

    def of(self, ctx) -> torch.Tensor:
        """``[B, D]`` features of the step's clouds (:attr:`StepContext.index`)."""
        return self.table[torch.as_tensor(ctx.index)].to(ctx.device)

    def loss(self, cond: torch.Tensor, ctx) -> torch.Tensor:
        """The flow's negative log-likelihood of the step's clouds given their standardised
        condition ``cond [B, 2 + k]`` (:func:`flow_context`)."""
        return self.flow.nll(self.of(ctx), flow_context(cond.to(ctx.device)))


def _columns(context: torch.Tensor) -> torch.Tensor:
    return context[:, None] if context.dim() == 1 else context


def flow_context(cond: torch.Tensor) -> torch.Tensor:
    """The flow's context from a batch's standardised condition ``[B, 2 + k]`` (log E, log n,
    k named conditions): log E and the named conditions, ``[B, 1 + k]`` (the number of points
    is what the flow draws)."""
    return torch.cat([cond[:, :1], cond[:, 2:]], 1).float()


def draw_features(
    flow: ShowerFlow,
    normalizer: Normalizer,
    e_inc: np.ndarray,
    gens: list[torch.Generator],
    max_points: int,
    device: Any = "cpu",
    conditions: dict[str, np.ndarray] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(base [B, D], features [B, D] float64, counts [B])`` of showers of incident energies
    ``e_inc`` (MeV) and named ``conditions`` (for a flow that takes them): the flow's base
    noise, the first draw of each shower's stream ``gens``, through the shower ``flow``;
    ``counts`` the points per shower (at most ``max_points``)."""
    base = cloud_base(gens, flow.mean.shape[0]).to(device)
    cond = normalizer.encode_cond(e_inc, np.ones(len(e_inc)), conditions)
    context = flow_context(torch.as_tensor(cond, device=device))
    feats = flow.sample(context, base).double()
    counts = torch.round(torch.exp(feats[:, 0])).clamp(1, max_points).long()
    return base, feats, counts
