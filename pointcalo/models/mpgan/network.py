"""Message-passing generator and critic (MPGAN, Kansal et al., arXiv 2106.11535).

A layer (:class:`MPLayer`, a ``torch_geometric.nn.MessagePassing``) sends along every edge
``j -> i`` the message ``m_ij = f_e([h_i, h_j, |h_i - h_j|])``, averages a node's incoming
messages and updates the node residually, ``h_i <- h_i + f_n([h_i, mean_j m_ij, g_b])``, where
``g_b`` is its cloud's global vector (per-cloud noise and the condition: standardised log
energy and log number of points); the global vector is then updated from the mean node,
``g_b <- g_b + f_g([g_b, mean_i h_i])``. Edges are a cloud's full graph or its k-nearest-neighbour
graph (:mod:`pointcalo.nn.graph`) in the critic's input points or the generator's first node
features (optionally rebuilt per layer); graph building is not differentiated. The generator
maps per-point noise ``z [P, z_dim]`` and per-cloud noise ``z_g [B, g_dim]`` to points
``[P, n_features]`` (normalised units) from each final node and its cloud's global vector; the
critic maps points to one score per cloud from its mean node, global vector and condition. Both
treat every cloud on its own, so a cloud does not depend on the batch it is in.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import MessagePassing

from pointcalo.models.mpgan.config import MPGANConfig
from pointcalo.nn import batch_index, segment_mean
from pointcalo.nn.graph import full_graph, knn_graph

COND_DIM = 2


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, n_out))


class MPLayer(MessagePassing):
    """One message-passing step over ``edge_index`` (see the module docstring)."""

    def __init__(self, dim: int, global_dim: int, hidden: int) -> None:
        super().__init__(aggr="mean")
        self.edge = _mlp(2 * dim + 1, hidden, hidden)
        self.node = _mlp(dim + hidden + global_dim, hidden, dim)
        self.glob = _mlp(global_dim + dim, hidden, global_dim)

    def forward(
        self,
        h: torch.Tensor,
        g: torch.Tensor,
        edge_index: torch.Tensor,
        ptr: torch.Tensor,
        batch: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.propagate(edge_index, h=h)
        h = h + self.node(torch.cat([h, m, g[batch]], 1))
        g = g + self.glob(torch.cat([g, segment_mean(h, ptr, batch)], 1))
        return h, g

    def message(self, h_i: torch.Tensor, h_j: torch.Tensor) -> torch.Tensor:
        return self.edge(torch.cat([h_i, h_j, (h_i - h_j).norm(dim=1, keepdim=True)], 1))


class _Graphs:
    """The edges of each layer: the full graph, or a kNN graph of the first layer's input
    (``dynamic``: of every layer's input), built once per pass where it does not change."""

    def __init__(self, cfg: MPGANConfig) -> None:
        self.kind, self.k, self.dynamic = cfg.graph, cfg.k, cfg.dynamic
        self.edges: torch.Tensor | None = None

    def reset(self) -> None:
        self.edges = None

    def __call__(self, h: torch.Tensor, ptr: torch.Tensor) -> torch.Tensor:
        if self.edges is not None and (self.kind == "full" or not self.dynamic):
            return self.edges
        if self.kind == "full":
            self.edges = full_graph(ptr)
        else:
            self.edges = knn_graph(h.detach(), ptr, self.k)
        return self.edges


class Generator(nn.Module):
    """Noise and condition to points ``[P, n_features]`` (normalised units)."""

    def __init__(self, cfg: MPGANConfig, n_features: int) -> None:
        super().__init__()
        self.node_in = nn.Linear(cfg.z_dim, cfg.node_dim)
        self.global_in = nn.Linear(cfg.g_dim + COND_DIM, cfg.global_dim)
        self.layers = nn.ModuleList(
            MPLayer(cfg.node_dim, cfg.global_dim, cfg.hidden) for _ in range(cfg.layers)
        )
        self.out = nn.Linear(cfg.node_dim + cfg.global_dim, n_features)
        self.graphs = _Graphs(cfg)

    def forward(
        self, z: torch.Tensor, zg: torch.Tensor, cond: torch.Tensor, ptr: torch.Tensor
    ) -> torch.Tensor:
        batch = batch_index(ptr)
        h = self.node_in(z)
        g = self.global_in(torch.cat([zg, cond.to(zg.dtype)], 1))
        self.graphs.reset()
        for layer in self.layers:
            h, g = layer(h, g, self.graphs(h, ptr), ptr, batch)
        return self.out(torch.cat([h, g[batch]], 1))


class Critic(nn.Module):
    """Points and condition to one score per cloud ``[B]``."""

    def __init__(self, cfg: MPGANConfig, n_features: int) -> None:
        super().__init__()
        self.node_in = nn.Linear(n_features, cfg.node_dim)
        self.global_in = nn.Linear(COND_DIM, cfg.global_dim)
        self.layers = nn.ModuleList(
            MPLayer(cfg.node_dim, cfg.global_dim, cfg.hidden) for _ in range(cfg.critic_layers)
        )
        self.head = _mlp(cfg.node_dim + cfg.global_dim + COND_DIM, cfg.hidden, 1)
        self.graphs = _Graphs(cfg)

    def forward(self, points: torch.Tensor, cond: torch.Tensor, ptr: torch.Tensor) -> torch.Tensor:
        batch = batch_index(ptr)
        cond = cond.to(points.dtype)
        h, g = self.node_in(points), self.global_in(cond)
        self.graphs.reset()
        x = points  # the first graph is built on the input points themselves
        for layer in self.layers:
            h, g = layer(h, g, self.graphs(x, ptr), ptr, batch)
            x = h
        return self.head(torch.cat([segment_mean(h, ptr, batch), g, cond], 1)).squeeze(1)
