"""Training of an EPiC-GAN by the engine: the shared least-squares GAN steps
(:class:`pointcalo.models.gan.LSGANTask`) on an :class:`EPiCGAN`."""

from __future__ import annotations

from pointcalo.models.epic_gan.model import EPiCGAN
from pointcalo.models.gan import LSGANTask


class EPiCGANTask(LSGANTask):
    """Training of an EPiC-GAN by the engine (:mod:`pointcalo.train.engine`)."""

    def make_model(self, cfg_model, n_features: int, mean_points: float) -> EPiCGAN:
        return EPiCGAN(cfg_model, n_features, mean_points)
