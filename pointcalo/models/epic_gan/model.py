"""EPiC-GAN: an equivariant point-cloud GAN (Buhmann, Kasieczka, Thaler, arXiv 2301.08128).

Generator: per-point noise ``z [P, z_dim]`` and per-cloud noise ``z_g [B, g_dim]`` with the
condition ``c [B, 2]`` (standardised log energy and log number of points) pass through EPiC
layers (:class:`pointcalo.nn.EPiCLayer`) to per-point features. Critic: EPiC layers over the
points, then a head on the pooled points, global vector and condition, one score per cloud.
Both are trained with the least-squares GAN objective (Mao et al., arXiv 1611.04076), as in
the paper. The number of points of a cloud is drawn from a learned conditional distribution
``p(log n | log c)`` (a small neural spline flow, zuko). Every cloud has its own random stream
(from ``(seed, index)``), so a cloud does not change with the batch it is generated in.
"""

from __future__ import annotations

from torch import nn

from pointcalo.models.count import PointCount
from pointcalo.models.epic_gan.config import EPiCGANConfig
from pointcalo.models.epic_gan.network import Critic, Generator
from pointcalo.models.gan import critic_loss, generator_loss


class EPiCGAN(nn.Module):
    """Generator, critic and point-count model of one EPiC-GAN."""

    def __init__(self, cfg: EPiCGANConfig, n_features: int, mean_points: float) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_features = n_features
        sum_scale = 1.0 / max(mean_points, 1.0)
        self.generator = Generator(cfg, n_features, sum_scale)
        self.critic = Critic(cfg, n_features, sum_scale)
        self.count = PointCount(cfg.count_transforms, cfg.count_hidden)

    critic_loss = staticmethod(critic_loss)
    generator_loss = staticmethod(generator_loss)
