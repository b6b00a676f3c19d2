"""EPiC-GAN configuration (``model:`` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pointcalo.models.gan import GANConfig


class EPiCGANConfig(GANConfig):
    """EPiC-GAN sizes (Buhmann, Kasieczka, Thaler, arXiv 2301.08128); noise sizes and the
    point-count flow as every GAN family (:class:`pointcalo.models.gan.GANConfig`)."""

    name: Literal["epic_gan"] = "epic_gan"
    point_dim: int = Field(32, ge=1)
    global_dim: int = Field(16, ge=1)
    hidden: int = Field(64, ge=1)
    layers: int = Field(4, ge=1)
    critic_layers: int = Field(3, ge=1)
