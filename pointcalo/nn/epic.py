"""EPiC layers: equivariant point-cloud layers with a global attribute vector.

Buhmann, Kasieczka, Thaler, "EPiC-GAN: Equivariant Point Cloud Generation for Particle Jets",
arXiv 2301.08128. Each layer first updates the global vector of every shower from the mean
and (scaled) sum of its points and its previous value, then updates every point from itself
and the new global vector; both with residual connections. Points are a flat batch with
offsets ``ptr`` (see :mod:`pointcalo.nn.pooling`): no padding, any number of points.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from pointcalo.nn.pooling import segment_mean, segment_sum


def _linear(n_in: int, n_out: int) -> nn.Module:
    return weight_norm(nn.Linear(n_in, n_out))


class EPiCLayer(nn.Module):
    """One EPiC layer.

    Args:
        point_dim: width of the per-point features.
        global_dim: width of the per-shower global vector.
        hidden: width of the hidden layers.
        cond_dim: width of the per-shower condition appended to both updates.
        sum_scale: multiplies the summed pooling (keeps it of order one for large showers).

    Shapes: ``x [P, point_dim]``, ``g [B, global_dim]``, ``cond [B, cond_dim]``, ``ptr [B + 1]``,
    ``batch [P]`` (shower of every point).
    """

    def __init__(
        self, point_dim: int, global_dim: int, hidden: int, cond_dim: int, sum_scale: float
    ) -> None:
        super().__init__()
        self.sum_scale = sum_scale
        self.global1 = _linear(2 * point_dim + global_dim + cond_dim, hidden)
        self.global2 = _linear(hidden, global_dim)
        self.local1 = _linear(point_dim + global_dim + cond_dim, hidden)
        self.local2 = _linear(hidden, point_dim)
        self.act = nn.LeakyReLU(0.01)

    def forward(
        self,
        x: torch.Tensor,
        g: torch.Tensor,
        cond: torch.Tensor,
        ptr: torch.Tensor,
        batch: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = torch.cat(
            [segment_mean(x, ptr, batch), self.sum_scale * segment_sum(x, ptr, batch), g, cond], 1
        )
        g = g + self.act(self.global2(self.act(self.global1(pooled))))
        # local1 acts on [x, g[batch], cond[batch]]: its per-shower part is computed once per
        # shower and gathered, instead of concatenating wide per-point rows (same result);
        # index_select and addmm: one core gathers and adds several times faster than with
        # ``per_shower[batch]`` and a separate sum (benchmarks/sampling_bench.py --stages)
        w = self.local1.weight
        n = x.shape[1]
        per_shower = torch.cat([g, cond], 1) @ w[:, n:].T + self.local1.bias
        h = self.act(torch.addmm(per_shower.index_select(0, batch), x, w[:, :n].T))
        x = x + self.act(self.local2(h))
        return x, g
