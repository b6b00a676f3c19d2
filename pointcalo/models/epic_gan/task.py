"""Training of an EPiC-GAN by the engine: the shared least-squares GAN steps
(:class:`pointcalo.models.gan.LSGANTask`) on an :class:`EPiCGAN`; with ``shower_flow`` the
condition carries each real shower's own features and the shower flow is fitted every step."""

from __future__ import annotations

import torch

from pointcalo.models.epic_gan.model import EPiCGAN, flow_condition
from pointcalo.models.gan import LSGANTask
from pointcalo.models.optim import GAN_BETAS, adam
from pointcalo.models.showerflow.features import data_features


class EPiCGANTask(LSGANTask):
    """Training of an EPiC-GAN by the engine (:mod:`pointcalo.train.engine`)."""

    def __init__(self, cfg, n_features: int, mean_points: float, data=None) -> None:
        layered = data is not None and data.spec.integer_feature is not None
        self.n_layers = data.spec.integer_max + 1 if layered else 0
        super().__init__(cfg, n_features, mean_points, data)
        self.feats: torch.Tensor | None = None
        if self.model.flow is not None:
            feats = data_features(data, cfg.model.flow_widths)
            self.model.flow.fit_scaling(feats)
            self.feats = torch.as_tensor(feats, dtype=torch.float32)

    def make_model(self, cfg_model, n_features: int, mean_points: float) -> EPiCGAN:
        return EPiCGAN(cfg_model, n_features, mean_points, self.n_layers)

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        if self.model.flow is None:
            return super().optimizers()
        t, m = self.cfg.train, self.model
        return {
            "generator": adam(m.generator.parameters(), t.lr, t.betas, GAN_BETAS),
            "critic": adam(m.critic.parameters(), t.lr_critic, t.betas, GAN_BETAS),
            "flow": adam(m.flow.parameters(), m.cfg.flow_lr, t.betas),
        }

    def _feats(self, ctx) -> torch.Tensor:
        return self.feats[torch.as_tensor(ctx.index)].to(ctx.device)

    def condition(self, batch, ctx) -> torch.Tensor:
        if self.model.flow is None:
            return super().condition(batch, ctx)
        log_c = batch.cond[:, 0].to(ctx.device)
        return flow_condition(self.model.flow, log_c, self._feats(ctx))

    def fit_count(self, batch, ctx) -> dict[str, float]:
        if self.model.flow is None:
            return super().fit_count(batch, ctx)
        loss = self.model.flow.nll(self._feats(ctx), batch.cond[:, 0].to(ctx.device).float())
        ctx.update(loss, self.model.flow, "flow")
        return {"loss_flow": loss.item()}
