"""MPGAN: message-passing generator and critic (Kansal et al., arXiv 2106.11535) on full graphs
(jets) or k-nearest-neighbour graphs (showers), built with torch-geometric.

Trained by the engine with the shared least-squares GAN steps; generation with per-cloud random
streams (:mod:`pointcalo.models.gan`).
"""

from __future__ import annotations

from pointcalo.models.gan import LSGANTask, generate_gan
from pointcalo.models.mpgan.config import MPGANConfig
from pointcalo.models.mpgan.model import MPGAN
from pointcalo.models.registry import Family


class MPGANTask(LSGANTask):
    """Training of an MPGAN by the engine (:mod:`pointcalo.train.engine`)."""

    def make_model(self, cfg_model, n_features: int, mean_points: float) -> MPGAN:
        return MPGAN(cfg_model, n_features, mean_points)


def _build(cfg, meta, normalizer) -> MPGAN:
    return MPGAN(cfg.model, int(meta["n_features"]), float(meta["mean_points"]))


FAMILY = Family(
    name="mpgan",
    config=MPGANConfig,
    task=MPGANTask,
    build=_build,
    sampling_net=lambda model: model.generator,
    generate=generate_gan,
)

__all__ = ["FAMILY", "MPGAN", "MPGANConfig", "MPGANTask"]
