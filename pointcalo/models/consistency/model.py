"""The distilled model: frozen teacher, consistency student, EMA target and the teacher's flow
in one module, so a distillation run resumes exactly and the distilled model is rebuilt from
its own checkpoint."""

from __future__ import annotations

import copy
from typing import Any

import torch

from pointcalo.checkpoint import load_checkpoint
from pointcalo.clouds import Normalizer
from pointcalo.config import validate_config
from pointcalo.errors import PointcaloError
from pointcalo.models.caloclouds.model import CaloClouds
from pointcalo.models.caloclouds.network import denoiser_net
from pointcalo.models.consistency.precond import ConsistencyPrecond


class DistilledCaloClouds(CaloClouds):
    """Teacher (frozen), consistency student (``denoiser``), EMA target, shower flow."""

    def __init__(
        self,
        teacher_cfg,
        n_features: int,
        mean_points: float,
        n_layers: int,
        sigma_min: float,
        n_extra: int = 0,
        blocks: dict | None = None,
    ) -> None:
        super().__init__(teacher_cfg, n_features, mean_points, n_layers, n_extra, blocks)
        self.teacher_cfg = teacher_cfg
        self.teacher = self.denoiser
        net = denoiser_net(teacher_cfg, n_features, mean_points, 2 + n_extra)
        self.denoiser = ConsistencyPrecond(net, torch.ones(n_features), sigma_min)
        self.target = copy.deepcopy(self.denoiser)
        self.teacher.requires_grad_(False)
        self.target.requires_grad_(False)
        self.flow.requires_grad_(False)


def build_from_teacher(path: str) -> tuple[DistilledCaloClouds, Any, Normalizer, dict]:
    """A distilled model initialised from a CaloClouds checkpoint (student = target = teacher
    EMA network weights); returns (model, teacher config, normaliser, teacher meta).
    ``path`` may name a shipped pretrained model."""
    from pointcalo.pretrained import resolve

    path = resolve(path)
    state = load_checkpoint(path)
    tcfg = validate_config(state["config"], source=str(path))
    if tcfg.model.name != "caloclouds":
        raise PointcaloError(
            f"{path}: the teacher must be a caloclouds model, got {tcfg.model.name}"
        )
    meta = state["meta"]
    normalizer = Normalizer.from_dict(state["normalizer"])
    model = DistilledCaloClouds(
        tcfg.model,
        int(meta["n_features"]),
        float(meta["mean_points"]),
        normalizer.spec.integer_max + 1,
        tcfg.model.sigma_min,
        normalizer.n_extra,
        meta.get("blocks"),
    )
    teacher_model = CaloClouds(
        tcfg.model,
        int(meta["n_features"]),
        float(meta["mean_points"]),
        normalizer.spec.integer_max + 1,
        normalizer.n_extra,
        meta.get("blocks"),
    )
    teacher_model.load_state_dict(state["model"])
    if teacher_model.blocks is not None:
        model.blocks.load_state_dict(teacher_model.blocks.state_dict())
    teacher_model.denoiser.load_state_dict(state["ema"])
    model.teacher.load_state_dict(teacher_model.denoiser.state_dict())
    model.flow.load_state_dict(teacher_model.flow.state_dict())
    model.denoiser.load_state_dict(teacher_model.denoiser.state_dict())
    model.target.load_state_dict(teacher_model.denoiser.state_dict())
    return model, tcfg, normalizer, meta


def build(cfg, meta: dict, normalizer: Normalizer) -> DistilledCaloClouds:
    """The distilled model's modules from its own checkpoint's config and meta."""
    tcfg = validate_config(meta["teacher_config"], source="teacher config").model
    return DistilledCaloClouds(
        tcfg,
        int(meta["n_features"]),
        float(meta["mean_points"]),
        normalizer.spec.integer_max + 1,
        tcfg.sigma_min,
        normalizer.n_extra,
        meta.get("blocks"),
    )


def sampling_config(model: DistilledCaloClouds, cfg) -> Any:
    """The teacher's model config with the distilled sampler (for generation)."""
    return model.teacher_cfg.model_copy(
        update={"sampler": cfg.model.sampler, "steps": cfg.model.steps}
    )
