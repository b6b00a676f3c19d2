"""Training of an EPiC-GAN by the engine: the shared least-squares GAN steps
(:class:`pointcalo.models.gan.LSGANTask`) on an :class:`EPiCGAN`; with ``shower_flow`` the
condition carries each real shower's own features and the shower flow is fitted every step."""

from __future__ import annotations

import torch

from pointcalo.models.epic_gan.model import EPiCGAN, flow_condition
from pointcalo.models.gan import LSGANTask
from pointcalo.models.optim import adam
from pointcalo.models.showerflow.features import TrainingFeatures


class EPiCGANTask(LSGANTask):
    """Training of an EPiC-GAN by the engine (:mod:`pointcalo.train.engine`)."""

    def __init__(self, cfg, n_features: int, mean_points: float, data=None) -> None:
        layered = data is not None and data.spec.integer_feature is not None
        self.n_layers = data.spec.integer_max + 1 if layered else 0
        super().__init__(cfg, n_features, mean_points, data)
        self.feats: TrainingFeatures | None = None
        if self.model.flow is not None:
            self.feats = TrainingFeatures(self.model.flow, data, cfg.model.flow_widths)

    def make_model(self, cfg_model, n_features: int, mean_points: float) -> EPiCGAN:
        return EPiCGAN(cfg_model, n_features, mean_points, self.n_layers)

    def count_optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        if self.model.flow is None:
            return super().count_optimizers()
        m = self.model
        return {"flow": adam(m.flow.parameters(), m.cfg.flow_lr, self.cfg.train.betas)}

    def condition(self, batch, ctx) -> torch.Tensor:
        if self.model.flow is None:
            return super().condition(batch, ctx)
        log_c = batch.cond[:, 0].to(ctx.device)
        return flow_condition(self.model.flow, log_c, self.feats.of(ctx))

    def fit_count(self, batch, ctx) -> dict[str, float]:
        if self.model.flow is None:
            return super().fit_count(batch, ctx)
        loss = self.feats.loss(batch.cond, ctx)
        ctx.update(loss, self.model.flow, "flow")
        return {"loss_flow": loss.item()}
