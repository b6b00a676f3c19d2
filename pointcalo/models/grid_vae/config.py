"""Conditional grid VAE configuration (``model:`` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pointcalo.models.voxels import GridModelConfig


class GridVAEConfig(GridModelConfig):
    """Sizes of the conditional VAE on a voxelize grid: ``channels`` of the 3-d convolutions,
    ``latent`` dimensions; ``grid`` and ``e_min`` as every grid family."""

    name: Literal["grid_vae"] = "grid_vae"
    channels: int = Field(8, ge=1)
    latent: int = Field(32, ge=1)
