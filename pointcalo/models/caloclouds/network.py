"""Per-point denoiser network with global context (EPiC layers over each shower).

Input per point: the noisy, scaled features ``x_in [P, F]`` and ``c_noise [P, 1]``; per shower:
the condition ``c [B, C]`` (standardised log incident energy and log number of points). The
noise level, embedded by Fourier features and a linear layer (:class:`FourierEmbedding`, as in
EDM and CaloClouds II; ``noise_dim = 0`` feeds the raw scalar, as checkpoints of format 1 did),
and the condition enter every EPiC layer through the global vector, and the layers pool over
the shower (mean and sum over ``ptr``), so points are not denoised independently (CaloClouds
II, Buhmann et al., arXiv 2309.05704, uses an EPiC-style network for this).
"""

from __future__ import annotations

import torch
from torch import nn

from pointcalo.nn import EPiCLayer, batch_index
from pointcalo.nn.embedding import FourierEmbedding
from pointcalo.nn.graph import knn_graph
from pointcalo.nn.local_attention import LocalAttention, neighbour_table


class PointDenoiserNet(nn.Module):
    """``net(x_in [P, F], c_noise [P, 1], (cond [B, C], ptr [B + 1])) -> [P, F]``.

    ``knn > 0`` adds, after each of the last ``attention_layers`` EPiC layers, a residual block
    of attention between each point and its ``knn`` nearest points of the shower
    (:class:`pointcalo.nn.local_attention.LocalAttention`; the graph is built once per call in
    the noisy, scaled coordinates ``x_in[:, 1:]``): points are denoised given their neighbours,
    not only the shower. The blocks start as the identity, so a network with them starts as
    one without."""

    def __init__(
        self,
        n_features: int,
        cond_dim: int = 2,
        point_dim: int = 64,
        global_dim: int = 16,
        hidden: int = 128,
        layers: int = 4,
        sum_scale: float = 1e-3,
        noise_dim: int = 0,
        knn: int = 0,
        heads: int = 4,
        attention_layers: int = 2,
    ) -> None:
        super().__init__()
        self.knn = knn
        n_att = min(attention_layers, layers) if knn else 0
        self.first_attention = layers - n_att
        self.attention = nn.ModuleList(
            LocalAttention(point_dim, n_features - 1, heads) for _ in range(n_att)
        )
        self.embed = FourierEmbedding(noise_dim) if noise_dim > 0 else None
        ctx = cond_dim + (noise_dim or 1)  # condition and the (embedded) noise level
        self.local_in = nn.Linear(n_features + 1, point_dim)
        self.global_in = nn.Linear(ctx, global_dim)
        self.layers = nn.ModuleList(
            EPiCLayer(point_dim, global_dim, hidden, ctx, sum_scale) for _ in range(layers)
        )
        self.out = nn.Linear(point_dim, n_features)
        self.act = nn.SiLU()

    def forward(
        self, x: torch.Tensor, c_noise: torch.Tensor, cond: tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        c, ptr = cond
        batch = batch_index(ptr)
        # one noise level per shower: take it from the shower's first point
        first = ptr[:-1].clamp(max=x.shape[0] - 1).clamp(min=0)  # traceable in P
        noise = c_noise[first]
        ctx = torch.cat([c, self.embed(noise) if self.embed is not None else noise], 1)
        h = self.act(self.local_in(torch.cat([x, c_noise], 1)))
        g = self.act(self.global_in(ctx))
        table, pos = None, x[:, 1:]
        if self.knn > 0:
            with torch.no_grad():
                table = neighbour_table(
                    knn_graph(pos.detach(), ptr, self.knn), x.shape[0], self.knn
                )
        for i, layer in enumerate(self.layers):
            h, g = layer(h, g, ctx, ptr, batch)
            if table is not None and i >= self.first_attention:
                h = h + self.attention[i - self.first_attention](h, pos, *table)
        return self.out(h)


def denoiser_net(cfg, n_features: int, mean_points: float, cond_dim: int = 2) -> PointDenoiserNet:
    """The point network of a CaloClouds config (``cfg.model`` section), sum pooling scaled
    by the mean number of points, for a condition of ``cond_dim`` numbers."""
    return PointDenoiserNet(
        n_features,
        cond_dim,
        cfg.point_dim,
        cfg.global_dim,
        cfg.hidden,
        cfg.layers,
        1.0 / max(mean_points, 1.0),
        cfg.noise_embedding,
        cfg.knn,
        cfg.heads,
        cfg.attention_layers,
    )
