"""Consistency distillation of a CaloClouds teacher with the training engine.

The distilled model keeps the teacher's shower flow and network architecture; its denoiser is
a :class:`~pointcalo.models.consistency.ConsistencyPrecond` initialised from the teacher's EMA
weights, trained against an EMA target on one teacher Heun step per training step. Teacher,
student and target live in one module, so a distillation run resumes exactly and the distilled
model is rebuilt from its own checkpoint.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from pointcalo.config import validate_config
from pointcalo.models.caloclouds.network import denoiser_net
from pointcalo.models.caloclouds.task import CaloClouds
from pointcalo.models.consistency import (
    ConsistencyPrecond,
    distillation_loss,
    ema_target_update,
    karras_discretisation,
)
from pointcalo.models.streams import cloud_generators, point_noise
from pointcalo.train.checkpoint import load_checkpoint
from pointcalo.train.data import Normalizer


class DistilledCaloClouds(CaloClouds):
    """Teacher (frozen), consistency student (``denoiser``), EMA target, shower flow."""

    def __init__(
        self, teacher_cfg, n_features: int, mean_points: float, n_layers: int, sigma_min: float
    ) -> None:
        super().__init__(teacher_cfg, n_features, mean_points, n_layers)
        self.teacher_cfg = teacher_cfg
        self.teacher = self.denoiser
        net = denoiser_net(teacher_cfg, n_features, mean_points)
        self.denoiser = ConsistencyPrecond(net, torch.ones(n_features), sigma_min)
        self.target = copy.deepcopy(self.denoiser)
        self.teacher.requires_grad_(False)
        self.target.requires_grad_(False)
        self.flow.requires_grad_(False)


def build_from_teacher(path: str) -> tuple[DistilledCaloClouds, Any, Normalizer, dict]:
    """A distilled model initialised from a CaloClouds checkpoint (student = target = teacher
    EMA network weights); returns (model, teacher config, normaliser, teacher meta)."""
    state = load_checkpoint(path)
    tcfg = validate_config(state["config"], source=str(path))
    if tcfg.model.name != "caloclouds":
        raise ValueError(f"{path}: the teacher must be a caloclouds model, got {tcfg.model.name}")
    meta = state["meta"]
    normalizer = Normalizer.from_dict(state["normalizer"])
    model = DistilledCaloClouds(
        tcfg.model,
        int(meta["n_features"]),
        float(meta["mean_points"]),
        normalizer.spec.integer_max + 1,
        tcfg.model.sigma_min,
    )
    teacher_model = CaloClouds(
        tcfg.model,
        int(meta["n_features"]),
        float(meta["mean_points"]),
        normalizer.spec.integer_max + 1,
    )
    teacher_model.load_state_dict(state["model"])
    teacher_model.denoiser.load_state_dict(state["ema"])
    model.teacher.load_state_dict(teacher_model.denoiser.state_dict())
    model.flow.load_state_dict(teacher_model.flow.state_dict())
    model.denoiser.load_state_dict(teacher_model.denoiser.state_dict())
    model.target.load_state_dict(teacher_model.denoiser.state_dict())
    return model, tcfg, normalizer, meta


class DistillTask:
    """Engine task of consistency distillation (one teacher Heun step per training step)."""

    def __init__(self, cfg, n_features: int, mean_points: float, data=None) -> None:
        self.cfg = cfg
        self.model, self.teacher_cfg, self.normalizer, tmeta = build_from_teacher(cfg.model.teacher)
        m = self.teacher_cfg.model
        self.levels = karras_discretisation(
            cfg.model.n_discretisation, m.sigma_min, m.sigma_max, m.rho
        ).float()
        self.meta = {
            "teacher_config": self.teacher_cfg.model_dump(mode="json"),
            "n_features": tmeta["n_features"],
            "mean_points": tmeta["mean_points"],
        }
        self.student = self.model.denoiser

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        t = self.cfg.train
        return {"student": (torch.optim.Adam(self.model.denoiser.parameters(), lr=t.lr), t.lr)}

    def ema_target(self) -> nn.Module:
        return self.model.denoiser

    def wrap(self, wrap) -> None:
        self.student = wrap(self.model.denoiser)

    def step(self, batch, ctx, opts) -> dict[str, Any]:
        gens = cloud_generators(ctx.keys)
        counts = batch.counts.tolist()
        n_levels = len(self.levels)
        level = torch.stack([torch.randint(0, n_levels - 1, (1,), generator=g)[0] for g in gens])
        noise = point_noise(gens, counts, batch.points.shape[1])
        x0, cond, ptr = (
            batch.points.to(ctx.device),
            batch.cond.to(ctx.device),
            batch.ptr.to(ctx.device),
        )
        per_point = torch.repeat_interleave(level, batch.counts)
        t_next = self.levels[per_point + 1][:, None].to(ctx.device)
        t_now = self.levels[per_point][:, None].to(ctx.device)
        with ctx.amp:
            loss = distillation_loss(
                self.student,
                self.model.target,
                self.model.teacher,
                x0,
                t_next,
                t_now,
                noise.to(ctx.device),
                (cond, ptr),
            )
        opts["student"].zero_grad(set_to_none=True)
        loss.backward()
        ctx.clip(self.model.denoiser)
        opts["student"].step()
        ema_target_update(self.model.target, self.model.denoiser, self.cfg.model.target_ema)
        return {"loss_consistency": loss.item()}


def rebuild(cfg, meta: dict, normalizer: Normalizer) -> DistilledCaloClouds:
    """The distilled model's modules from its own checkpoint's config and meta."""
    tcfg = validate_config(meta["teacher_config"], source="teacher config").model
    return DistilledCaloClouds(
        tcfg,
        int(meta["n_features"]),
        float(meta["mean_points"]),
        normalizer.spec.integer_max + 1,
        tcfg.sigma_min,
    )


def sampling_config(model: DistilledCaloClouds, cfg) -> Any:
    """The teacher's model config with the distilled sampler (for generation)."""
    return model.teacher_cfg.model_copy(
        update={"sampler": cfg.model.sampler, "steps": cfg.model.steps}
    )
