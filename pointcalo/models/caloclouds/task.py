"""Training of CaloClouds by the engine: the EDM loss for the denoiser and maximum likelihood
for the shower flow, both every step."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pointcalo.blocks import PatternBuffers, library_meta, training_library
from pointcalo.clouds import PointCloudData
from pointcalo.errors import ConfigError
from pointcalo.models.caloclouds.loss import edm_loss
from pointcalo.models.caloclouds.model import CaloClouds
from pointcalo.models.optim import adam
from pointcalo.models.registry import TaskBase
from pointcalo.models.showerflow.features import TrainingFeatures
from pointcalo.streams import cloud_generators, point_noise


class CaloCloudsTask(TaskBase):
    """Training of CaloClouds by the engine: EDM loss for the denoiser, maximum likelihood for
    the shower flow, both every step."""

    def __init__(self, cfg, n_features: int, mean_points: float, data: PointCloudData) -> None:
        self.cfg = cfg
        m = cfg.model
        self.model = CaloClouds(
            m, n_features, mean_points, data.spec.integer_max + 1, data.normalizer.n_extra
        )
        if m.blocks > 0:  # a two-level model: its pattern library goes with it
            if m.blocks_from is None:
                raise ConfigError("model.blocks_from: a block model needs its sub-cell showers")
            library, limits = training_library(
                m.blocks_from, m.blocks, m.block_patterns, cfg.train.seed,
                m.core_window, m.core_patterns, m.halo_patches,
            )  # fmt: skip
            self.model.blocks = PatternBuffers.of(library)
            self.meta = {"blocks": library_meta(library), "point_limits": limits}
        self.feats = TrainingFeatures(self.model.flow, data, self.model.widths, self.model.hits)
        self.den = self.model.denoiser

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        t = self.cfg.train
        return {
            "denoiser": adam(self.model.denoiser.parameters(), t.lr, t.betas),
            "flow": adam(self.model.flow.parameters(), self.cfg.model.flow_lr, t.betas),
        }

    def ema_target(self) -> nn.Module:
        return self.model.denoiser

    def wrap(self, wrap) -> None:
        self.den = wrap(self.model.denoiser)

    def step(self, batch, ctx, opts) -> dict[str, Any]:
        m = self.cfg.model
        gens = cloud_generators(ctx.keys)
        counts = batch.counts.tolist()
        ln_sigma = torch.stack([m.p_mean + m.p_std * torch.randn(1, generator=g)[0] for g in gens])
        noise = point_noise(gens, counts, batch.points.shape[1])
        x0, cond, ptr = (
            batch.points.to(ctx.device),
            batch.cond.to(ctx.device),
            batch.ptr.to(ctx.device),
        )
        with ctx.amp:
            loss = edm_loss(
                self.den,
                x0,
                ptr,
                (cond, ptr),
                ln_sigma=ln_sigma.to(ctx.device),
                noise=noise.to(ctx.device),
            )
        ctx.update(loss, self.model.denoiser, "denoiser")
        loss_f = self.feats.loss(cond, ctx)
        ctx.update(loss_f, self.model.flow, "flow")
        return {"loss_edm": loss.item(), "loss_flow": loss_f.item()}
