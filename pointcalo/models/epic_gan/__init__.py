"""EPiC-GAN: an equivariant point-cloud GAN (Buhmann, Kasieczka, Thaler, arXiv 2301.08128).

Generator and critic of EPiC layers (:mod:`.network`, :mod:`.model`); the least-squares GAN
training, the learned number of points and generation with per-cloud random streams are shared
with the other GAN families (:mod:`pointcalo.models.gan`, :mod:`pointcalo.models.count`); with
``shower_flow`` it is conditioned on CaloClouds II's shower features and calibrated to them
(:mod:`.generate`).
"""

from __future__ import annotations

from pointcalo.models.epic_gan.config import EPiCGANConfig
from pointcalo.models.epic_gan.generate import generate
from pointcalo.models.epic_gan.model import EPiCGAN
from pointcalo.models.epic_gan.task import EPiCGANTask
from pointcalo.models.registry import Family


def _build(cfg, meta, normalizer) -> EPiCGAN:
    n_layers = normalizer.spec.integer_max + 1 if normalizer.spec.integer_feature else 0
    return EPiCGAN(cfg.model, int(meta["n_features"]), float(meta["mean_points"]), n_layers)


FAMILY = Family(
    name="epic_gan",
    config=EPiCGANConfig,
    task=EPiCGANTask,
    build=_build,
    sampling_net=lambda model: model.generator,
    generate=generate,
)

__all__ = ["FAMILY", "EPiCGAN", "EPiCGANConfig", "EPiCGANTask"]
