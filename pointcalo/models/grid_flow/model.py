"""CaloFlow-style grid model, layer by layer (CaloFlow: Krause and Shih, arXiv 2106.05285;
layer-to-layer flows: Buckley et al., arXiv 2312.11618 (L2LFlows)).

Two normalising flows (neural spline flows with coupling transforms, zuko):

1. ``energy``: the layer energies given the incident energy, ``p(x1 | c)`` with
   ``x1_l = log(E_l / E_inc + 1e-9)`` standardised per layer.
2. ``voxels``: one flow shared by all layers for the layer's voxels normalised to the layer
   energy, ``u = e / E_l`` mapped through ``logit(alpha + (1 - 2 alpha) u)`` and standardised,
   given ``c``, the layer's and the previous layer's standardised energies, the layer index
   (one-hot) and the previous layer's normalised voxels: autoregressive over layers, so it scales
   to grids of thousands of voxels where one flow over all voxels would not.

Training adds uniform noise of ``noise`` MeV to every voxel (dequantisation, as CaloFlow), so
every normalised voxel is positive; the loss is the negative log-likelihood per dimension.
Sampling draws ``x1``, then each layer from the previous one, turns the normalised voxels back
into energies (renormalised to the sampled layer energy) and returns them in the network units
of every grid family (:class:`pointcalo.models.voxels.VoxelScale`), so generation is shared.
"""

from __future__ import annotations

import torch
from torch import nn

from pointcalo.models.grid_flow.config import GridFlowConfig
from pointcalo.models.voxels import GridModel, VoxelScale

TINY = 1e-9


class LayerFlows(nn.Module):
    """The two flows, their standardisation and the voxel scale, as buffers (the sampling
    network: ``forward(noise [B, L + L V], cond [B, 1]) -> [B, L, H, W]`` network units)."""

    def __init__(self, cfg: GridFlowConfig, shape: tuple[int, int, int]) -> None:
        super().__init__()
        import zuko

        self.shape = tuple(shape)
        L, V = shape[0], shape[1] * shape[2]
        self.L, self.V, self.alpha = L, V, cfg.alpha
        hidden = (cfg.hidden, cfg.hidden)
        self.energy = zuko.flows.NSF(
            L, context=1, transforms=cfg.transforms, hidden_features=hidden, passes=2
        )
        self.voxels = zuko.flows.NSF(
            V, context=3 + L + V, transforms=cfg.transforms, hidden_features=hidden, passes=2
        )
        self.register_buffer("x1_mean", torch.zeros(L))
        self.register_buffer("x1_std", torch.ones(L))
        self.register_buffer("x2_stats", torch.tensor([0.0, 1.0]))
        self.register_buffer("scale_values", torch.zeros(4, dtype=torch.float64))

    # -- features ------------------------------------------------------------------------
    def _raw(self, e: torch.Tensor, inc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x1 [B, L]`` and ``x2 [B, L, V]`` before standardisation of energies ``e [B, L, V]``."""
        layer = e.sum(2)
        x1 = torch.log(layer / inc[:, None] + TINY)
        u = e / layer.clamp_min(TINY)[..., None]
        x2 = torch.logit(self.alpha + (1 - 2 * self.alpha) * u)
        return x1, x2

    @torch.no_grad()
    def fit(self, e: torch.Tensor, inc: torch.Tensor, scale: VoxelScale) -> None:
        """Standardisation from (dequantised) training energies ``e [N, L, V]`` MeV."""
        x1, x2 = self._raw(e, inc)
        self.x1_mean.copy_(x1.mean(0))
        self.x1_std.copy_(x1.std(0).clamp_min(1e-3))
        self.x2_stats.copy_(torch.stack([x2.mean(), x2.std().clamp_min(1e-3)]))
        self.scale_values.copy_(
            torch.tensor([scale.s, scale.cond_mean, scale.cond_std, scale.e0], dtype=torch.float64)
        )

    def _context(self, c: torch.Tensor, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        """``[B, L, 3 + L + V]`` context of every layer (standardised inputs)."""
        B = c.shape[0]
        prev_e = torch.cat([torch.zeros_like(x1[:, :1]), x1[:, :-1]], 1)
        prev_v = torch.cat([torch.zeros_like(x2[:, :1]), x2[:, :-1]], 1)
        onehot = torch.eye(self.L, device=c.device).expand(B, self.L, self.L)
        return torch.cat(
            [c[:, None, :].expand(B, self.L, 1), x1[..., None], prev_e[..., None], onehot, prev_v],
            2,
        )

    def nll(self, e: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood per dimension of energies ``e [B, L, V]`` MeV."""
        inc = torch.exp(c[:, 0].double() * self.scale_values[2] + self.scale_values[1]).float()
        x1, x2 = self._raw(e, inc)
        x1 = (x1 - self.x1_mean) / self.x1_std
        x2 = (x2 - self.x2_stats[0]) / self.x2_stats[1]
        nll1 = -self.energy(c).log_prob(x1)  # [B]
        ctx = self._context(c, x1, x2)
        nll2 = -self.voxels(ctx.reshape(-1, ctx.shape[2])).log_prob(x2.reshape(-1, self.V))
        return (nll1.sum() + nll2.sum()) / (c.shape[0] * self.L * (1 + self.V))

    def forward(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Sample from base noise ``z [B, L + L V]``; returns network units ``[B, L, H, W]``."""
        B = c.shape[0]
        inc = torch.exp(c[:, 0].double() * self.scale_values[2] + self.scale_values[1])
        x1 = self.energy(c).transform.inv(z[:, : self.L])
        layer = (torch.exp(x1.double() * self.x1_std + self.x1_mean) - TINY).clamp_min(0)
        layer = layer * inc[:, None]  # [B, L] MeV
        zv = z[:, self.L :].reshape(B, self.L, self.V)
        x2 = torch.zeros(B, self.L, self.V, device=z.device)
        onehot = torch.eye(self.L, device=z.device)
        for i in range(self.L):
            ctx = torch.cat(
                [
                    c,
                    x1[:, i : i + 1],
                    x1[:, i - 1 : i] if i else torch.zeros_like(c),
                    onehot[i].expand(B, self.L),
                    x2[:, i - 1] if i else torch.zeros(B, self.V, device=z.device),
                ],
                1,
            )
            x2[:, i] = self.voxels(ctx).transform.inv(zv[:, i])
        raw = x2.double() * self.x2_stats[1] + self.x2_stats[0]
        u = ((torch.sigmoid(raw) - self.alpha) / (1 - 2 * self.alpha)).clamp_min(0)
        u = u / u.sum(2, keepdim=True).clamp_min(TINY)
        e = u * layer[..., None]  # MeV
        s, e0 = self.scale_values[0], self.scale_values[3]
        y = torch.log1p(e / e0) / s
        return y.float().reshape(B, *self.shape)


class GridFlow(GridModel):
    """The layer flows and voxel scale of one CaloFlow-style grid model."""

    def __init__(self, cfg: GridFlowConfig, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.cfg, self.shape = cfg, tuple(shape)
        self.flows = LayerFlows(cfg, self.shape)

    @property
    def noise_dim(self) -> int:
        return self.flows.L * (1 + self.flows.V)
