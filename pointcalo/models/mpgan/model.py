"""MPGAN: a message-passing GAN for point clouds (Kansal et al., arXiv 2106.11535).

Generator and critic of message-passing layers on full or k-nearest-neighbour graphs
(:mod:`.network`), trained with the shared least-squares GAN objective, with the number of
points from the shared point-count flow (:mod:`pointcalo.models.gan`,
:mod:`pointcalo.models.count`).
"""

from __future__ import annotations

from torch import nn

from pointcalo.models.count import PointCount
from pointcalo.models.mpgan.config import MPGANConfig
from pointcalo.models.mpgan.network import Critic, Generator


class MPGAN(nn.Module):
    """Generator, critic and point-count model of one MPGAN."""

    def __init__(self, cfg: MPGANConfig, n_features: int, mean_points: float = 0.0) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_features = n_features
        self.generator = Generator(cfg, n_features)
        self.critic = Critic(cfg, n_features)
        self.count = PointCount(cfg.count_transforms, cfg.count_hidden)
