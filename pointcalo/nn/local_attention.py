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

Shapes: ``h [P, dim]``, ``pos [P, p]`` (the coordinates the graph was built in), the
neighbours as a dense table ``nbr [P, k]`` with ``valid [P, k]`` (:func:`neighbour_table`);
returns ``[P, dim]``. ``W_o`` starts at zero, so a residual block
``h + attn(h)`` is the identity when created: a network with these blocks added to a trained
one starts as that network (fine-tuning from its weights).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def neighbour_table(edge_index: torch.Tensor, n: int, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(nbr [n, k], valid [n, k])``: the sources of each target's edges as a dense table
    (``edge_index`` grouped by target, at most ``k`` edges each, as
    :func:`pointcalo.nn.graph.knn_graph` gives); missing slots point at the node itself and are
    not ``valid``."""
    src, dst = edge_index[0], edge_index[1]
    per = torch.bincount(dst, minlength=n)
    start = torch.cumsum(per, 0) - per
    slot = torch.arange(dst.shape[0], device=dst.device) - start[dst]
    nbr = torch.arange(n, device=dst.device)[:, None].repeat(1, k)
    valid = torch.zeros((n, k), dtype=torch.bool, device=dst.device)
    nbr[dst, slot] = src
    valid[dst, slot] = True
    return nbr, valid


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

    def forward(
        self, h: torch.Tensor, pos: torch.Tensor, nbr: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        """``h [P, dim]``, ``pos [P, p]``, ``nbr``, ``valid [P, k]`` (:func:`neighbour_table`)."""
        n, k = nbr.shape
        heads, d = self.heads, self.head_dim
        q, key, v = self.qkv(self.norm(h)).chunk(3, dim=1)
        delta = self.rel(pos[nbr] - pos[:, None, :]).view(n, k, heads, d)
        kj = key[nbr].view(n, k, heads, d) + delta
        score = (q.view(n, 1, heads, d) * kj).sum(-1) / math.sqrt(d)  # [P, k, H]
        score = score.masked_fill(~valid[:, :, None], -math.inf)
        a = torch.softmax(score, dim=1)
        a = torch.nan_to_num(a)  # a point without neighbours receives nothing
        agg = ((v[nbr].view(n, k, heads, d) + delta) * a[..., None]).sum(1)
        return self.out(agg.reshape(n, heads * d))
