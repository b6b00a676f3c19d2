"""Conditional grid VAE configuration (``model:`` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pointcalo.models.voxels import GridModelConfig


class GridVAEConfig(GridModelConfig):
    """Sizes of the conditional VAE on a voxelize grid: ``channels`` of the 3-d convolutions,
    ``latent`` dimensions; ``grid`` and ``e_min`` as every grid family.

    BIB-AE's additions (Buhmann et al., arXiv 2005.05334), each off by default: ``critic``, a
    Wasserstein critic (gradient penalty ``gp_weight``) between training showers and their
    sampled reconstructions, whose score enters the VAE loss with ``critic_weight``;
    ``post_processor``, a residual voxel-wise network after the decoder's sample,
    trained on detached reconstructions to give each shower its own sorted voxel energies
    (BIB-AE's sorted-energy MMD, here the exact 1-d W2 of the sorted values) and, with the
    critic, to fool it."""

    name: Literal["grid_vae"] = "grid_vae"
    channels: int = Field(8, ge=1)
    latent: int = Field(32, ge=1)
    critic: bool = False
    critic_weight: float = Field(0.01, ge=0)
    gp_weight: float = Field(10.0, ge=0)
    post_processor: bool = False
