"""The geometry-aware autoregressive network: one small network shared by every cell of every
layer of every segmentation, giving the distribution of a cell's energy from its geometry and
what was generated before it (Liu, Ghosh, Smith, Baldi, Whiteson, "Geometry-aware
Autoregressive Models for Calorimeter Shower Simulations", NeurIPS ML4PS 2022; the MADE idea of
Germain et al., arXiv 1502.03509: one pass over the true energies gives every cell's
conditional distribution in training).

Inputs of cell ``i`` of layer ``l`` (:mod:`.cells` for the geometry):
- static: its centre ``x, y, r`` and log width and height, the layer (one-hot), the shower's
  standardised ``log E_inc``, and for each earlier layer (most recent first) the energy of that
  layer under the cell, under a window three cells wide around it, and the layer's total;
- the layer's total energy, and the part of it not yet placed in the cells before;
- autoregressive: the energies of its ``k`` causal neighbours (the nearest cells before it on
  the spiral) with their offsets.

Each layer's total is generated first, by a small categorical head over ``log(E_layer /
E_inc)`` given the incident energy and the earlier layers' totals (the layer energies first,
then the shape, as CaloFlow and CaloClouds II do); the layer's cells are then generated and
scaled to that total. Without it, one hot cell early on the spiral makes its neighbours hot
(exposure bias) and layer energies wander by factors of two in short trainings.

Energies enter and leave as ``u = 10 sqrt(E / E_inc)`` (the paper's square-root transform); the
output is categorical: class 0 for ``E < e_min`` and ``bins`` classes of ``u``
(:func:`class_edges`), within which a generated value is uniform.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pointcalo.models.geometry_arm.cells import N_STATIC, Segmentation

#: u = U_SCALE * sqrt(E / E_inc).
U_SCALE = 10.0


def to_u(e: torch.Tensor, incident: torch.Tensor) -> torch.Tensor:
    """``u`` of energies ``e [B, ...]`` (MeV) of showers of incident energy ``incident [B]``."""
    shape = (-1,) + (1,) * (e.dim() - 1)
    return U_SCALE * torch.sqrt(e.clamp(min=0.0) / incident.reshape(shape))


def from_u(u: torch.Tensor, incident: torch.Tensor) -> torch.Tensor:
    """Energies (MeV) of ``u [B, ...]``."""
    shape = (-1,) + (1,) * (u.dim() - 1)
    return (u / U_SCALE).pow(2) * incident.reshape(shape)


class GeometryARM(nn.Module):
    """The shared cell network and its buffers: ``edges [bins + 1]`` (the classes' ``u``
    bounds) and ``cond_stats [2]`` (mean and standard deviation of the training showers'
    ``log E_inc``)."""

    def __init__(self, cfg, n_layers: int) -> None:
        super().__init__()
        self.cfg, self.n_layers = cfg, n_layers
        k, h = cfg.neighbours, cfg.hidden
        self.n_static = N_STATIC + n_layers + 2 + 4 * (n_layers - 1)
        self.static_in = nn.Linear(self.n_static, h)
        self.dyn_in = nn.Linear(4 * k + 1, h, bias=False)
        body: list[nn.Module] = []
        for _ in range(cfg.depth - 1):
            body += [nn.SiLU(), nn.Linear(h, h)]
        self.body = nn.Sequential(*body, nn.SiLU(), nn.Linear(h, cfg.bins + 1))
        self.register_buffer("edges", torch.linspace(0.0, 1.0, cfg.bins + 1))
        self.register_buffer("cond_stats", torch.tensor([0.0, 1.0]))
        # the layer totals: log(E_layer / E_inc) in ``bins`` classes per layer
        n_tot = 1 + n_layers + (n_layers - 1)
        self.total_net = nn.Sequential(
            nn.Linear(n_tot, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, cfg.bins)
        )
        self.register_buffer("total_edges", torch.linspace(-12.0, 0.0, cfg.bins + 1).repeat(
            n_layers, 1))  # fmt: skip

    def cond(self, incident: torch.Tensor) -> torch.Tensor:
        """Standardised ``log E_inc`` ``[B]``."""
        return (torch.log(incident) - self.cond_stats[0]) / self.cond_stats[1]

    def total_logits(self, layer: int, before: list[torch.Tensor], incident: torch.Tensor):
        """Class logits ``[B, bins]`` of ``layer``'s ``log(E_layer / E_inc)`` given the
        earlier layers' totals ``before`` (each ``[B]``, MeV)."""
        b = len(incident)
        onehot = torch.zeros(b, self.n_layers, device=incident.device)
        onehot[:, layer] = 1.0
        prev = [log_share(before[layer - back], incident) if layer - back >= 0
                else torch.zeros(b, device=incident.device)
                for back in range(1, self.n_layers)]  # fmt: skip
        x = torch.cat([self.cond(incident)[:, None], onehot, torch.stack(prev, 1)], 1)
        return self.total_net(x)

    def total_loss(self, totals: list[torch.Tensor], incident: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the layer totals ``totals`` (each ``[B]``, MeV), summed over
        layers, averaged over showers."""
        loss = torch.zeros((), device=incident.device)
        for layer in range(self.n_layers):
            edges = self.total_edges[layer]
            target = torch.bucketize(log_share(totals[layer], incident), edges[1:-1].contiguous())
            logits = self.total_logits(layer, totals, incident)
            loss = loss + nn.functional.cross_entropy(logits, target)
        return loss

    @torch.no_grad()
    def sample_total(
        self, layer: int, before: list[torch.Tensor], incident: torch.Tensor, v: torch.Tensor
    ) -> torch.Tensor:
        """``layer``'s total energy ``[B]`` (MeV) from uniforms ``v [B, 2]``."""
        c = draw(torch.softmax(self.total_logits(layer, before, incident), 1), v[:, 0])
        edges = self.total_edges[layer]
        f = edges[c] + (edges[c + 1] - edges[c]) * v[:, 1]
        return torch.exp(f) * incident

    def classes(self, e: torch.Tensor, incident: torch.Tensor) -> torch.Tensor:
        """The class of each energy ``e [B, n]`` (MeV)."""
        u = to_u(e, incident)
        inner = self.edges[1:-1].contiguous()
        c = 1 + torch.bucketize(u.contiguous(), inner, right=True)
        return torch.where(e < self.cfg.e_min, torch.zeros_like(c), c)

    def static(
        self,
        seg: Segmentation,
        layer: int,
        images: list[torch.Tensor],
        incident: torch.Tensor,
        total: torch.Tensor,
    ) -> torch.Tensor:
        """Static inputs ``[B, n, n_static]`` of every cell of ``layer`` (generation order),
        given the energy images ``[B, ny, nx]`` (MeV) of the earlier layers and the layer's
        total ``[B]`` (MeV)."""
        cells = seg.layers[layer]
        b, n, dev = len(incident), len(cells), incident.device
        own = torch.from_numpy(cells.static).to(dev).expand(b, n, -1)
        onehot = torch.zeros(b, n, self.n_layers, device=dev)
        onehot[..., layer] = 1.0
        cond = self.cond(incident)[:, None, None].expand(b, n, 1)
        tot = to_u(total, incident)[:, None, None].expand(b, n, 1)
        order = torch.from_numpy(cells.order).to(dev)
        prev = []
        for back in range(1, self.n_layers):
            p = layer - back
            if p < 0:
                prev.append(torch.zeros(b, n, 4, device=dev))
                continue
            oy, ox, oy3, ox3 = (torch.from_numpy(m).to(dev) for m in seg.proj[(p, layer)])
            img = images[p]
            under = (oy @ img @ ox.T).reshape(b, -1)[:, order]
            window = (oy3 @ img @ ox3.T).reshape(b, -1)[:, order]
            earlier_total = img.sum((1, 2))[:, None].expand(b, n)
            prev.append(
                torch.stack([to_u(under, incident), to_u(window, incident),
                             to_u(earlier_total, incident), torch.ones_like(under)], 2)
            )  # fmt: skip
        return torch.cat([own, onehot, cond, tot, *prev], 2)

    def dynamic(
        self, u_pad: torch.Tensor, nb: torch.Tensor, rel: torch.Tensor, left: torch.Tensor
    ) -> torch.Tensor:
        """Autoregressive inputs ``[B, m, 4k + 1]`` from the layer's ``u`` so far ``u_pad [B,
        n + 1]`` (last column the zero pad), neighbour positions ``nb [m, k]``, offsets ``rel
        [m, k, 3]`` and the ``u`` of the layer's energy not yet placed ``left [B, m]``."""
        nu = u_pad[:, nb]
        rel = rel.expand(len(u_pad), *rel.shape)
        return torch.cat([torch.cat([nu[..., None], rel], 3).flatten(2), left[..., None]], 2)

    def logits(self, h_static: torch.Tensor, dyn: torch.Tensor) -> torch.Tensor:
        return self.body(h_static + self.dyn_in(dyn))

    def layer_loss(
        self,
        seg: Segmentation,
        layer: int,
        images: list[torch.Tensor],
        incident: torch.Tensor,
        sel: torch.Tensor,
        weight: torch.Tensor,
    ) -> torch.Tensor:
        """Weighted cross-entropy summed over cells ``sel`` (generation positions, weights
        ``weight``: inverse selection probabilities) and averaged over showers, of ``layer``
        given the true images of all layers ``images`` (teacher forcing)."""
        cells = seg.layers[layer]
        dev = incident.device
        order = torch.from_numpy(cells.order).to(dev)
        e = images[layer].flatten(1)[:, order]
        u_pad = torch.cat([to_u(e, incident), torch.zeros_like(e[:, :1])], 1)
        total = e.sum(1)
        left = to_u((total[:, None] - (e.cumsum(1) - e)).clamp(min=0.0), incident)[:, sel]
        static = self.static(seg, layer, images, incident, total)[:, sel]
        nb = torch.from_numpy(cells.nb).to(dev)[sel]
        rel = torch.from_numpy(cells.rel).to(dev)[sel]
        logits = self.logits(self.static_in(static), self.dynamic(u_pad, nb, rel, left))
        target = self.classes(e[:, sel], incident)
        ce = nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), reduction="none")
        return (ce.reshape(target.shape) * weight).sum(1).mean()

    @torch.no_grad()
    def generate_layer(
        self,
        seg: Segmentation,
        layer: int,
        images: list[torch.Tensor],
        incident: torch.Tensor,
        uniforms: torch.Tensor,
    ) -> torch.Tensor:
        """The energy image ``[B, ny, nx]`` (MeV) of ``layer``: its total first, then cell by
        cell along the spiral, scaled to the total; ``uniforms [B, n + 1, 2]``: each shower's
        own random numbers (class, place in the class; the first pair for the total)."""
        cells = seg.layers[layer]
        b, n, dev = len(incident), len(cells), incident.device
        before = [im.sum((1, 2)) for im in images]
        total = self.sample_total(layer, before, incident, uniforms[:, 0])
        uniforms = uniforms[:, 1:]
        h_static = self.static_in(self.static(seg, layer, images, incident, total))
        nb = torch.from_numpy(cells.nb).to(dev)
        rel = torch.from_numpy(cells.rel).to(dev)
        u_pad = torch.zeros(b, n + 1, device=dev)
        placed = torch.zeros(b, device=dev)
        lo, width = self.edges[:-1], self.edges[1:] - self.edges[:-1]
        for t in range(n):
            left = to_u((total - placed).clamp(min=0.0), incident)[:, None]
            dyn = self.dynamic(u_pad, nb[t : t + 1], rel[t : t + 1], left)[:, 0]
            c = draw(torch.softmax(self.logits(h_static[:, t], dyn), 1), uniforms[:, t, 0])
            k = (c - 1).clamp(min=0)
            u_pad[:, t] = torch.where(c > 0, lo[k] + width[k] * uniforms[:, t, 1], 0.0)
            placed = placed + from_u(u_pad[:, t], incident)
        e = from_u(u_pad[:, :n], incident)
        e = e * (total / placed.clamp(min=1e-12))[:, None]  # the layer's total, its shape
        img = torch.zeros(b, n, device=dev)
        img[:, torch.from_numpy(cells.order).to(dev)] = e
        return img.reshape(b, *cells.shape)


def draw(p: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The class ``[B]`` that uniforms ``v [B]`` pick from probabilities ``p [B, C]`` (inverse
    cumulative distribution; each shower's own number, so batching does not change it)."""
    c = torch.searchsorted(p.cumsum(1), v[:, None].contiguous())[:, 0]
    return c.clamp(max=p.shape[1] - 1)


def log_share(e: torch.Tensor, incident: torch.Tensor) -> torch.Tensor:
    """``log(E / E_inc)`` of energies ``e [B]`` (MeV; at least 1 keV)."""
    return torch.log(e.clamp(min=1e-3) / incident)


def class_edges(u: np.ndarray, bins: int) -> np.ndarray:
    """``bins + 1`` class bounds in ``u`` from the non-zero training cells' ``u``: half at
    their quantiles (resolution where most cells are: the soft halo) merged with half evenly
    spaced up to a little above the largest (resolution where the energy is: the few hot cells
    of the core, which quantiles would lump into one wide top class); the closest bounds
    merged or the widest classes split until there are ``bins + 1``."""
    top = float(u.max()) * 1.05
    a = np.quantile(u, np.linspace(0.0, 1.0, bins // 2 + 1))
    a[0], a[-1] = 0.0, top
    e = np.unique(np.concatenate([a, np.linspace(0.0, top, bins - bins // 2 + 1)]))
    while len(e) > bins + 1:
        i = int(np.argmin(e[2:] - e[:-2])) + 1
        e = np.delete(e, i)
    while len(e) < bins + 1:
        i = int(np.argmax(np.diff(e)))
        e = np.insert(e, i + 1, 0.5 * (e[i] + e[i + 1]))
    return e.astype(np.float32)
