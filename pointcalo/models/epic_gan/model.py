"""EPiC-GAN: an equivariant point-cloud GAN (Buhmann, Kasieczka, Thaler, arXiv 2301.08128).

Generator: per-point noise ``z [P, z_dim]`` and per-cloud noise ``z_g [B, g_dim]`` with the
condition ``c [B, 2]`` (standardised log energy and log number of points) pass through EPiC
layers (:class:`pointcalo.nn.EPiCLayer`) to per-point features. Critic: EPiC layers over the
points, then a head on the pooled points, global vector and condition, one score per cloud.
Both are trained with the least-squares GAN objective (Mao et al., arXiv 1611.04076), as in
the paper. The number of points of a cloud is drawn from a learned conditional distribution
``p(log n | log c)`` (a small neural spline flow, zuko). Every cloud has its own random stream
(from ``(seed, index)``), so a cloud does not change with the batch it is generated in.

With ``shower_flow`` the count model is CaloClouds II's shower flow instead (arXiv 2309.05704)
and the condition is ``[B, 1 + D]``: the standardised log energy and the shower's ``D``
standardised features (:func:`flow_condition`).
"""

from __future__ import annotations

import torch
from torch import nn

from pointcalo.models.count import PointCount
from pointcalo.models.epic_gan.config import EPiCGANConfig
from pointcalo.models.epic_gan.network import COND_DIM, Critic, Generator
from pointcalo.models.gan import critic_loss, generator_loss
from pointcalo.models.showerflow.features import ShowerFlow, n_shower_features

#: Standardised shower features are clipped to this many standard deviations in the condition.
FEATURE_CLIP = 6.0


class EPiCGAN(nn.Module):
    """Generator, critic and point-count model (or shower flow) of one EPiC-GAN; ``n_layers``
    is needed with ``cfg.shower_flow``."""

    def __init__(
        self, cfg: EPiCGANConfig, n_features: int, mean_points: float, n_layers: int = 0
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_features = n_features
        sum_scale = 1.0 / max(mean_points, 1.0)
        cond_dim = COND_DIM
        self.flow: ShowerFlow | None = None
        self.n_layers, self.widths = n_layers, cfg.flow_widths
        if cfg.shower_flow:
            if n_layers < 1:
                raise ValueError("model.shower_flow: needs layered showers (E, x, y, layer)")
            n_feats = n_shower_features(n_layers, cfg.flow_widths)
            self.flow = ShowerFlow(n_feats, cfg.flow_transforms, cfg.flow_hidden, cfg.flow_passes)
            cond_dim = 1 + n_feats
        else:
            self.count = PointCount(cfg.count_transforms, cfg.count_hidden)
        self.generator = Generator(cfg, n_features, sum_scale, cond_dim)
        self.critic = Critic(cfg, n_features, sum_scale, cond_dim)

    critic_loss = staticmethod(critic_loss)
    generator_loss = staticmethod(generator_loss)


def flow_condition(flow: ShowerFlow, log_c: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """``[B, 1 + D]`` condition of the shower-flow EPiC-GAN: the standardised log incident
    energy ``log_c [B]`` and the shower features ``feats [B, D]`` (physical units) standardised
    with the flow's scaling and clipped to ``FEATURE_CLIP``."""
    z = ((feats - flow.mean) / flow.std).clamp(-FEATURE_CLIP, FEATURE_CLIP)
    return torch.cat([log_c[:, None].to(z.dtype), z], 1).float()
