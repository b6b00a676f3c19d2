"""Conditional grid WGAN-GP configuration (``model:`` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pointcalo.models.voxels import GridModelConfig


class GridGANConfig(GridModelConfig):
    """Sizes and training of the conditional WGAN-GP on a voxelize grid: ``channels`` of the
    3-d convolutions, ``latent`` noise dimensions, gradient-penalty weight ``gp_weight`` and
    ``n_critic`` critic steps per generator step (Gulrajani et al.'s 10 and 5)."""

    name: Literal["grid_gan"] = "grid_gan"
    channels: int = Field(8, ge=1)
    latent: int = Field(32, ge=1)
    gp_weight: float = Field(10.0, ge=0)
    n_critic: int = Field(5, ge=1)
