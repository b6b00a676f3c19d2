"""CaloClouds configuration (``model:`` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pointcalo.config import ModelConfig


class CaloCloudsConfig(ModelConfig):
    """CaloClouds-style point diffusion (arXiv 2305.04847, 2309.05704) in the EDM formulation
    (arXiv 2206.00364): EPiC-style denoiser sizes with a Fourier embedding of the noise level
    of width ``noise_embedding`` (0: the raw scalar), the EDM noise distribution and schedule,
    the default sampler, and the shower-level flow (``flow_passes``: 2 for coupling layers,
    fast to sample, None for fully autoregressive ones; ``flow_widths``: also each layer's
    transverse width, to which generated points are calibrated; ``hit_cell > 0``: also the
    number of cells of that pitch (mm) above ``hit_threshold`` (MeV), a feature kept for older
    checkpoints and no longer used in generation). ``knn > 0``: attention between each point
    and its ``knn`` nearest points after each of the last ``attention_layers`` EPiC layers, with
    ``heads`` heads (:class:`pointcalo.nn.local_attention.LocalAttention`).

    ``blocks > 0``: a two-level model (:mod:`pointcalo.blocks`, ``docs/fidelity.md`` sessions
    11-12). The training files hold showers coarsened to one point per ``blocks x blocks``
    block of sub-cells (``scripts/block_model.py coarsen``); ``blocks_from`` names the
    sub-cell showers (the same training split) whose blocks' patterns, at most
    ``block_patterns`` per bin, the checkpoint carries to re-expand generated blocks into
    sub-cells. ``core_window > 0`` (even, in blocks): each layer's core, the ``core_window``
    blocks square around the block corner nearest the shower's centre, is filled whole by a
    training core of its layer and incident-energy quartile near it in energy (at most
    ``core_patterns`` per layer and quartile;
    :class:`pointcalo.blocks.CoreLibrary`). ``halo_patches > 0`` (with a core window): the
    blocks outside it are replaced by Geant4 halo patches (a training block with the 8 around
    it, at most ``halo_patches`` per bin), thinned so the number of lit blocks stays
    (:class:`pointcalo.blocks.HaloLibrary`; session 13)."""

    name: Literal["caloclouds"] = "caloclouds"
    point_dim: int = Field(64, ge=1)
    global_dim: int = Field(16, ge=1)
    hidden: int = Field(128, ge=1)
    layers: int = Field(4, ge=1)
    p_mean: float = -1.2
    p_std: float = Field(1.2, gt=0)
    sigma_min: float = Field(0.002, gt=0)
    sigma_max: float = Field(80.0, gt=0)
    rho: float = Field(7.0, gt=0)
    sampler: Literal["euler", "heun", "heun_churn", "ode"] = "heun"
    steps: int = Field(13, ge=1)
    noise_embedding: int = Field(16, ge=0)
    knn: int = Field(0, ge=0)
    heads: int = Field(4, ge=1)
    attention_layers: int = Field(2, ge=1)
    flow_transforms: int = Field(3, ge=1)
    flow_hidden: int = Field(128, ge=1)
    flow_passes: int | None = Field(2, ge=2)
    flow_widths: bool = True
    flow_lr: float = Field(1e-3, gt=0)
    hit_cell: float = Field(5.088, ge=0)
    hit_threshold: float = Field(0.1, ge=0)
    blocks: int = Field(0, ge=0)
    blocks_from: str | None = None
    block_patterns: int = Field(1024, ge=1)
    core_window: int = Field(0, ge=0, multiple_of=2)
    core_patterns: int = Field(48, ge=1)
    halo_patches: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _halo_needs_a_core(self) -> CaloCloudsConfig:
        if self.halo_patches and not self.core_window:
            raise ValueError("model.halo_patches needs model.core_window > 0")
        return self
