"""Consistency distillation of a CaloClouds teacher (Song et al., arXiv 2303.01469), as in
CaloClouds II (Buhmann et al., arXiv 2309.05704): boundary-condition preconditioning
(:mod:`.precond`), the distillation loss and target EMA (:mod:`.loss`), the distilled model
(:mod:`.model`), its training task (:mod:`.task`) and its exports (:mod:`.export`, :mod:`.ddml`).
It generates like CaloClouds, with the
one-step (``consistency``) or ``multistep`` sampler of :mod:`pointcalo.sampling`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pointcalo.models.caloclouds.generate import generate_caloclouds
from pointcalo.models.consistency.config import ConsistencyConfig
from pointcalo.models.consistency.ddml import export_ddml
from pointcalo.models.consistency.export import export_onnx, export_torchscript
from pointcalo.models.consistency.loss import distillation_loss, ema_target_update
from pointcalo.models.consistency.model import (
    DistilledCaloClouds,
    build,
    build_from_teacher,
    sampling_config,
)
from pointcalo.models.consistency.precond import ConsistencyPrecond
from pointcalo.models.consistency.task import DistillTask
from pointcalo.models.registry import Family, GenerationBatch


def export(loaded, out, fmt: str, **options: Any):
    """The family's export entry (:class:`pointcalo.models.registry.Family`): ``(path, what
    the card adds)``; ``options``: the ``fixed`` conditions of a DDML export."""
    if fmt == "ddml":
        return export_ddml(loaded, out, fixed=options.get("fixed"))
    if fmt == "torchscript":
        return export_torchscript(loaded, out), {}
    return export_onnx(loaded, out), {}


def generate(model, net, normalizer, cfg, batch: GenerationBatch, **options: Any):
    """Showers from the distilled student ``net`` with the teacher's flow and schedule;
    ``steps`` > 1 without a sampler means the multistep consistency sampler (the one-step
    sampler has no steps to take)."""
    if batch.sampler is None and (batch.steps or 1) > 1:
        batch = dataclasses.replace(batch, sampler="multistep")
    return generate_caloclouds(
        model, net, normalizer, sampling_config(model, cfg), batch, **options
    )


FAMILY = Family(
    name="consistency",
    config=ConsistencyConfig,
    task=DistillTask,
    build=build,
    sampling_net=lambda model: model.denoiser,
    generate=generate,
    export=export,
    extra_conditions=True,
)

__all__ = [
    "FAMILY",
    "ConsistencyConfig",
    "ConsistencyPrecond",
    "DistillTask",
    "DistilledCaloClouds",
    "build_from_teacher",
    "distillation_loss",
    "ema_target_update",
]
