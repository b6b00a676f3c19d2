"""CaloClouds-style point diffusion (Buhmann et al., arXiv 2305.04847, 2309.05704) in the EDM
formulation (Karras et al., arXiv 2206.00364).

Kept apart as in NVlabs/edm: the point network (:mod:`.network`), the EDM preconditioning
(:mod:`.precond`), the loss (:mod:`.loss`), the model (:mod:`.model`), its training task
(:mod:`.task`) and generation (:mod:`.generate`); the shower-level features, their flow and the
CaloClouds II post-processing are shared with other point families
(:mod:`pointcalo.models.showerflow`).
"""

from __future__ import annotations

from pointcalo.models.caloclouds.config import CaloCloudsConfig
from pointcalo.models.caloclouds.generate import generate, generate_caloclouds
from pointcalo.models.caloclouds.loss import edm_loss, sample_ln_sigma
from pointcalo.models.caloclouds.model import CaloClouds, build
from pointcalo.models.caloclouds.network import PointDenoiserNet
from pointcalo.models.caloclouds.precond import EDMPrecond
from pointcalo.models.caloclouds.task import CaloCloudsTask
from pointcalo.models.registry import Family


def _migrate(model: dict, version: int) -> None:
    """Format-1 checkpoints predate the noise embedding, the flow's widths and hit count and
    its coupling layers: they were built without them."""
    if version < 2:
        legacy = {"noise_embedding": 0, "flow_widths": False, "hit_cell": 0.0, "flow_passes": None}
        for key, value in legacy.items():
            model.setdefault(key, value)


FAMILY = Family(
    name="caloclouds",
    config=CaloCloudsConfig,
    task=CaloCloudsTask,
    build=build,
    sampling_net=lambda model: model.denoiser,
    generate=generate,
    migrate=_migrate,
    extra_conditions=True,
)

__all__ = [
    "FAMILY",
    "CaloClouds",
    "CaloCloudsConfig",
    "CaloCloudsTask",
    "EDMPrecond",
    "PointDenoiserNet",
    "edm_loss",
    "generate_caloclouds",
    "sample_ln_sigma",
]
