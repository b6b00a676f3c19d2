"""EPiC-GAN configuration (``model:`` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pointcalo.config import ModelConfig


class EPiCGANConfig(ModelConfig):
    """EPiC-GAN sizes (Buhmann, Kasieczka, Thaler, arXiv 2301.08128) and the point-count flow
    (a conditional spline flow of ``log n``: ``count_transforms`` transforms of
    ``count_hidden`` units, learning rate ``count_lr``)."""

    name: Literal["epic_gan"] = "epic_gan"
    point_dim: int = Field(32, ge=1)
    global_dim: int = Field(16, ge=1)
    hidden: int = Field(64, ge=1)
    layers: int = Field(4, ge=1)
    z_dim: int = Field(8, ge=1)
    g_dim: int = Field(16, ge=1)
    critic_layers: int = Field(3, ge=1)
    count_transforms: int = Field(2, ge=1)
    count_hidden: int = Field(32, ge=1)
    count_lr: float = Field(1e-3, gt=0)
