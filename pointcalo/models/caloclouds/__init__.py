"""CaloClouds-style point diffusion (Buhmann et al., arXiv 2305.04847, 2309.05704) in the EDM
formulation (Karras et al., arXiv 2206.00364): network, preconditioning and loss apart."""

from __future__ import annotations

from pointcalo.models.caloclouds.loss import edm_loss, sample_ln_sigma
from pointcalo.models.caloclouds.network import PointDenoiserNet
from pointcalo.models.caloclouds.precond import EDMPrecond

__all__ = ["EDMPrecond", "PointDenoiserNet", "edm_loss", "sample_ln_sigma"]
