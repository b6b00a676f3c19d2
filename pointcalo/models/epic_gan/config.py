"""EPiC-GAN configuration (``model:`` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pointcalo.models.gan import GANConfig


class EPiCGANConfig(GANConfig):
    """EPiC-GAN sizes (Buhmann, Kasieczka, Thaler, arXiv 2301.08128); noise sizes and the
    point-count flow as every GAN family (:class:`pointcalo.models.gan.GANConfig`).

    ``shower_flow: true`` (layered showers only) replaces the point-count flow by CaloClouds
    II's shower flow (arXiv 2309.05704; :mod:`pointcalo.models.showerflow.features`): the
    generator and critic are conditioned on the shower's standardised features (number of
    points, visible energy, centre of gravity, per-layer point and energy fractions and,
    with ``flow_widths``, per-layer widths) besides the incident energy, so the GAN only
    learns the shapes of the points, and generated points are calibrated to the flow's
    features as CaloClouds' are. ``flow_*`` as in :class:`CaloCloudsConfig`; the flow trains
    every step at ``flow_lr``."""

    name: Literal["epic_gan"] = "epic_gan"
    point_dim: int = Field(32, ge=1)
    global_dim: int = Field(16, ge=1)
    hidden: int = Field(64, ge=1)
    layers: int = Field(4, ge=1)
    critic_layers: int = Field(3, ge=1)
    shower_flow: bool = False
    flow_transforms: int = Field(5, ge=1)
    flow_hidden: int = Field(64, ge=1)
    flow_passes: int | None = Field(2, ge=2)
    flow_widths: bool = True
    flow_lr: float = Field(1e-3, gt=0)
