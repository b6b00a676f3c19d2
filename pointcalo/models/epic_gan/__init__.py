"""EPiC-GAN: an equivariant point-cloud GAN (Buhmann, Kasieczka, Thaler, arXiv 2301.08128).

Generator and critic of EPiC layers (:mod:`.network`), the least-squares GAN objective (Mao et
al., arXiv 1611.04076) as in the paper (:mod:`.model`, :mod:`.task`), a learned conditional
distribution of the number of points (:mod:`.count`), generation with per-cloud random streams
(:mod:`.generate`).
"""

from __future__ import annotations

from pointcalo.models.epic_gan.config import EPiCGANConfig
from pointcalo.models.epic_gan.generate import generate_epic_gan
from pointcalo.models.epic_gan.model import EPiCGAN
from pointcalo.models.epic_gan.task import EPiCGANTask
from pointcalo.models.registry import Family


def _build(cfg, meta, normalizer) -> EPiCGAN:
    return EPiCGAN(cfg.model, int(meta["n_features"]), float(meta["mean_points"]))


FAMILY = Family(
    name="epic_gan",
    config=EPiCGANConfig,
    task=EPiCGANTask,
    build=_build,
    sampling_net=lambda model: model.generator,
    generate=generate_epic_gan,
)

__all__ = ["FAMILY", "EPiCGAN", "EPiCGANConfig", "EPiCGANTask", "generate_epic_gan"]
