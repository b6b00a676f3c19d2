"""EPiC-GAN generator and critic (Buhmann, Kasieczka, Thaler, arXiv 2301.08128).

Generator: per-point noise ``z [P, z_dim]`` and per-cloud noise ``z_g [B, g_dim]`` with the
condition ``c [B, cond_dim]`` (standardised log energy and log number of points; with a shower
flow, log energy and the shower's standardised features) pass through EPiC layers
(:class:`pointcalo.nn.EPiCLayer`) to per-point features. Critic: EPiC layers over the points,
then a head on the pooled points, global vector and condition, one score per cloud.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from pointcalo.models.epic_gan.config import EPiCGANConfig
from pointcalo.nn import EPiCLayer, batch_index, segment_mean, segment_sum

COND_DIM = 2  # standardised log c and log n


class Generator(nn.Module):
    """Noise and condition to points ``[P, n_features]`` (normalised units)."""

    def __init__(
        self, cfg: EPiCGANConfig, n_features: int, sum_scale: float, cond_dim: int = COND_DIM
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.local_in = weight_norm(nn.Linear(cfg.z_dim, cfg.point_dim))
        self.global_in = weight_norm(nn.Linear(cfg.g_dim + cond_dim, cfg.global_dim))
        self.layers = nn.ModuleList(
            EPiCLayer(cfg.point_dim, cfg.global_dim, cfg.hidden, cond_dim, sum_scale)
            for _ in range(cfg.layers)
        )
        self.out = weight_norm(nn.Linear(cfg.point_dim, n_features))
        self.act = nn.LeakyReLU(0.01)

    def forward(
        self, z: torch.Tensor, zg: torch.Tensor, cond: torch.Tensor, ptr: torch.Tensor
    ) -> torch.Tensor:
        batch = batch_index(ptr)
        x = self.act(self.local_in(z))
        g = self.act(self.global_in(torch.cat([zg, cond], 1)))
        for layer in self.layers:
            x, g = layer(x, g, cond, ptr, batch)
        return self.out(x)


class Critic(nn.Module):
    """Points and condition to one score per cloud ``[B]``."""

    def __init__(
        self, cfg: EPiCGANConfig, n_features: int, sum_scale: float, cond_dim: int = COND_DIM
    ) -> None:
        super().__init__()
        self.sum_scale = sum_scale
        self.local_in = weight_norm(nn.Linear(n_features, cfg.point_dim))
        self.global_in = weight_norm(nn.Linear(2 * cfg.point_dim + cond_dim, cfg.global_dim))
        self.layers = nn.ModuleList(
            EPiCLayer(cfg.point_dim, cfg.global_dim, cfg.hidden, cond_dim, sum_scale)
            for _ in range(cfg.critic_layers)
        )
        self.head = nn.Sequential(
            weight_norm(nn.Linear(2 * cfg.point_dim + cfg.global_dim + cond_dim, cfg.hidden)),
            nn.LeakyReLU(0.01),
            weight_norm(nn.Linear(cfg.hidden, 1)),
        )
        self.act = nn.LeakyReLU(0.01)

    def _pooled(self, x: torch.Tensor, ptr: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [segment_mean(x, ptr, batch), self.sum_scale * segment_sum(x, ptr, batch)], 1
        )

    def forward(self, points: torch.Tensor, cond: torch.Tensor, ptr: torch.Tensor) -> torch.Tensor:
        batch = batch_index(ptr)
        x = self.act(self.local_in(points))
        g = self.act(self.global_in(torch.cat([self._pooled(x, ptr, batch), cond], 1)))
        for layer in self.layers:
            x, g = layer(x, g, cond, ptr, batch)
        return self.head(torch.cat([self._pooled(x, ptr, batch), g, cond], 1)).squeeze(1)
