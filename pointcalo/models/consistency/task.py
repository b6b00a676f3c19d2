"""Consistency distillation by the engine: one teacher Heun step per training step."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pointcalo.errors import ConfigError
from pointcalo.models.consistency.loss import distillation_loss, ema_target_update
from pointcalo.models.consistency.model import build_from_teacher
from pointcalo.models.optim import adam
from pointcalo.models.registry import TaskBase
from pointcalo.sampling import karras_discretisation
from pointcalo.streams import cloud_generators, point_noise


class DistillTask(TaskBase):
    """Engine task of consistency distillation (one teacher Heun step per training step)."""

    def __init__(self, cfg, n_features: int, mean_points: float, data=None) -> None:
        self.cfg = cfg
        self.model, self.teacher_cfg, self.normalizer, tmeta = build_from_teacher(cfg.model.teacher)
        have = tuple(data.extra) if data is not None else ()
        if have != self.normalizer.extra_names:
            raise ConfigError(
                f"data.conditions: the teacher is conditioned on "
                f"[{', '.join(self.normalizer.extra_names)}], this run reads [{', '.join(have)}]"
            )
        m = self.teacher_cfg.model
        self.levels = karras_discretisation(
            cfg.model.n_discretisation, m.sigma_min, m.sigma_max, m.rho
        ).float()
        self.meta = {
            "teacher_config": self.teacher_cfg.model_dump(mode="json"),
            "n_features": tmeta["n_features"],
            "mean_points": tmeta["mean_points"],
            # a two-level teacher: its pattern library and sub-cell limits go on
            **({k: tmeta[k] for k in ("blocks", "point_limits")} if "blocks" in tmeta else {}),
        }
        self.student = self.model.denoiser

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        t = self.cfg.train
        return {"student": adam(self.model.denoiser.parameters(), t.lr, t.betas)}

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
        ctx.update(loss, self.model.denoiser, "student")
        ema_target_update(self.model.target, self.model.denoiser, self.cfg.model.target_ema)
        return {"loss_consistency": loss.item()}
