"""EPiC-GAN: an equivariant point-cloud GAN (Buhmann, Kasieczka, Thaler, arXiv 2301.08128).

Generator and critic of EPiC layers (:mod:`.network`, :mod:`.model`); the least-squares GAN
training, the learned number of points and generation with per-cloud random streams are shared
with the other GAN families (:mod:`pointcalo.models.gan`, :mod:`pointcalo.models.count`).
"""

from __future__ import annotations

from pointcalo.models.epic_gan.config import EPiCGANConfig
from pointcalo.models.epic_gan.model import EPiCGAN
from pointcalo.models.epic_gan.task import EPiCGANTask
from pointcalo.models.gan import generate_gan
from pointcalo.models.registry import Family


def _build(cfg, meta, normalizer) -> EPiCGAN:
    return EPiCGAN(cfg.model, int(meta["n_features"]), float(meta["mean_points"]))


FAMILY = Family(
    name="epic_gan",
    config=EPiCGANConfig,
    task=EPiCGANTask,
    build=_build,
    sampling_net=lambda model: model.generator,
    generate=generate_gan,
)

__all__ = ["FAMILY", "EPiCGAN", "EPiCGANConfig", "EPiCGANTask"]
