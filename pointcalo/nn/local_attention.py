"""Attention between the points of a shower, restricted to each point's nearest neighbours.

A per-point denoiser with only global context (EPiC layers, CaloClouds II) draws every point
given the shower, not given its neighbours, so it cannot put deposits next to each other the way
Geant4's tracks do (``docs/fidelity.md``: too few close pairs, smeared core). Current point
models let points attend to each other (AllShowers, arXiv 2601.11716; CaloClouds 3 and
CaloHadronic use transformers over the points); full attention costs ``P^2`` per shower, so
here each point attends only to its ``k`` nearest points of the same shower (Point
Transformer, Zhao et al., arXiv 2012.09164: vector-free variant with a learned relative-position
term), which keeps the cost linear in ``P`` for fixed ``k``.

For target point ``i`` and neighbours ``j`` (``edge_index`` from :func:`pointcalo.nn.graph.
knn_graph`, source row 0, target row 1), per head::

    delta_ij = MLP(pos_j - pos_i)
    a_ij = softmax_j((q_i . (k_j + delta_ij)) / sqrt(d))
    out_i = W_o sum_j a_ij (v_j + delta_ij)

Shapes: ``h [P, dim]``, ``pos [P, p]`` (the coordinates the graph was built in),
``edge_index [2, E]``; returns ``[P, dim]``. ``W_o`` starts at zero, so a residual block
``h + attn(h)`` is the identity when created: a network with these blocks added to a trained
one starts as that network (fine-tuning from its weights).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def edge_softmax(score: torch.Tensor, target: torch.Tensor, n: int) -> torch.Tensor:
    """Softmax of ``score [E, H]`` over the edges of each target node (``target [E]``)."""
    heads = score.shape[1]
    idx = target[:, None].expand(-1, heads)
    peak = torch.full((n, heads), -math.inf, dtype=score.dtype, device=score.device)
    peak = peak.scatter_reduce(0, idx, score, "amax", include_self=True)
    w = torch.exp(score - peak[target])
    total = torch.zeros((n, heads), dtype=score.dtype, device=score.device).index_add_(0, target, w)
    return w / total[target].clamp(min=1e-30)


class LocalAttention(nn.Module):
    """Multi-head attention of each point over its graph neighbours (module docstring)."""

    def __init__(self, dim: int, pos_dim: int, heads: int = 4, hidden: int = 32) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
        self.heads, self.head_dim = heads, dim // heads
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.rel = nn.Sequential(nn.Linear(pos_dim, hidden), nn.SiLU(), nn.Linear(hidden, dim))
        self.out = nn.Linear(dim, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, h: torch.Tensor, pos: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        n, heads, d = h.shape[0], self.heads, self.head_dim
        src, dst = edge_index[0], edge_index[1]
        q, k, v = self.qkv(self.norm(h)).chunk(3, dim=1)
        delta = self.rel(pos[src] - pos[dst]).view(-1, heads, d)
        kj = k[src].view(-1, heads, d) + delta
        score = (q[dst].view(-1, heads, d) * kj).sum(-1) / math.sqrt(d)
        a = edge_softmax(score, dst, n)
        msg = (v[src].view(-1, heads, d) + delta) * a[..., None]
        agg = torch.zeros((n, heads, d), dtype=h.dtype, device=h.device)
        agg = agg.index_add_(0, dst, msg)
        return self.out(agg.reshape(n, heads * d))
