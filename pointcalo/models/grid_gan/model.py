"""Conditional Wasserstein GAN with gradient penalty on a voxelize grid (Arjovsky et al., arXiv
1701.07875; Gulrajani et al., arXiv 1704.00028), the GAN line of calorimeter models (CaloGAN,
arXiv 1705.02355; 3DGAN; the HGCal WGAN).

Generator: noise and condition (standardised log E_inc) through the 3-d convolutional decoder
of :mod:`pointcalo.nn.grid`; critic: the 3-d convolutional encoder to one score. The critic
loss is ``D(fake) - D(real)`` plus ``gp_weight`` times the squared deviation from 1 of the
critic's gradient norm at random interpolates of real and generated showers; the generator
loss is ``-D(fake)``.
"""

from __future__ import annotations

import torch

from pointcalo.models.gan import wgan_gp_critic_loss
from pointcalo.models.grid_gan.config import GridGANConfig
from pointcalo.models.voxels import GridModel
from pointcalo.nn.grid import ConditionalGridDecoder, GridEncoder


class GridGAN(GridModel):
    """Generator, critic and voxel scale of one conditional grid WGAN-GP."""

    def __init__(self, cfg: GridGANConfig, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.cfg, self.shape = cfg, tuple(shape)
        self.generator = ConditionalGridDecoder(self.shape, cfg.channels, cfg.latent)
        self.critic = GridEncoder(self.shape, cfg.channels, 1)

    def critic_loss(
        self, real: torch.Tensor, fake: torch.Tensor, cond: torch.Tensor, alpha: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Wasserstein critic loss with gradient penalty, and the penalty alone; ``alpha [B]``
        places the interpolates between real and generated showers."""
        return wgan_gp_critic_loss(self.critic, real, fake, cond, alpha, self.cfg.gp_weight)

    def generator_loss(self, fake: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return -self.critic(fake, cond).mean()
