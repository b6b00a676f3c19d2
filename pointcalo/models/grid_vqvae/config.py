"""Grid VQ-VAE configuration (``model:`` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pointcalo.models.voxels import GridModelConfig


class GridVQVAEConfig(GridModelConfig):
    """Stage 1 of a two-stage latent model on a voxelize grid: ``tokens`` codes per shower,
    each one of ``codebook`` vectors of ``code_dim`` numbers; ``channels`` of the 3-d
    convolutions; ``commitment`` weight of the encoder's commitment loss; codebook updated as
    exponential moving averages with ``decay``, a code used by fewer than ``dead_below``
    (moving-average count) restarted on an encoder output of the batch; ``share_floor`` the
    voxel share below which the pixel loss stops resolving (log1p(share / floor));
    ``kl_weight`` of the divergence of the predicted voxel shares from the shower's beside
    the pixel loss (:mod:`.model`; 0: the pixel loss alone, as checkpoints before it);
    ``r_neighbours``: generation draws the visible-over-incident ratio R from that many
    training showers nearest in energy; ``periodic``: convolutions wrap around the angular
    axis of a cylindrical grid (:mod:`pointcalo.nn.periodic`; angular counts the halvings do
    not divide are FFT-resampled); ``latent``: ``dense`` (``tokens`` vectors from a dense map
    of the whole shower) or ``spatial`` (one token per cell of the grid halved ``halvings``
    times, fully convolutional, as Calo-VQ; ``tokens`` is then ignored). ``grid`` and
    ``e_min`` as every grid family."""

    name: Literal["grid_vqvae"] = "grid_vqvae"
    channels: int = Field(8, ge=1)
    tokens: int = Field(16, ge=1)
    codebook: int = Field(256, ge=2)
    code_dim: int = Field(8, ge=1)
    commitment: float = Field(0.25, ge=0)
    kl_weight: float = Field(0.0, ge=0)
    decay: float = Field(0.99, gt=0, lt=1)
    dead_below: float = Field(0.01, ge=0)
    share_floor: float = Field(1e-5, gt=0)
    r_neighbours: int = Field(5, ge=1)
    periodic: bool = False
    latent: Literal["dense", "spatial"] = "dense"
    halvings: int = Field(2, ge=1, le=4)
