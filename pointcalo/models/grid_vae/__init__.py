"""Conditional VAE on a voxelize grid (3-d convolutional, heteroscedastic Gaussian
likelihood), trained by the engine on showers projected onto the grid; generation gives voxels
and, through voxelize.to_points, point showers (:mod:`pointcalo.models.voxels`)."""

from __future__ import annotations

import torch
from torch import nn

from pointcalo.models.grid_vae.config import GridVAEConfig
from pointcalo.models.grid_vae.model import GridVAE
from pointcalo.models.registry import Family
from pointcalo.models.voxels import GridTaskBase, generate_grid


class GridVAETask(GridTaskBase):
    """Training of a grid VAE by the engine: one ELBO step per batch."""

    def __init__(self, cfg, n_features: int, mean_points: float, data=None) -> None:
        super().__init__(cfg, data)
        self.cfg = cfg
        self.model = GridVAE(cfg.model, self.shape)
        self.model.set_scale(self.scale)
        with torch.no_grad():  # the decoder starts from the mean training shower
            self.model.decoder.net.bias.copy_(self.voxels.mean(0))
        self.vae = self.model

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        t = self.cfg.train
        return {"vae": (torch.optim.Adam(self.model.parameters(), lr=t.lr), t.lr)}

    def ema_target(self) -> nn.Module:
        return self.model.decoder

    def wrap(self, wrap) -> None:
        self.vae = wrap(self.model)

    def step(self, batch, ctx, opts) -> dict:
        from pointcalo.streams import cloud_generators

        y, c = self.rows(ctx)
        eps = torch.stack(
            [torch.randn(self.cfg.model.latent, generator=g) for g in cloud_generators(ctx.keys)]
        ).to(ctx.device)
        with ctx.amp:
            out = self.model.loss(y, c, eps)
        opts["vae"].zero_grad(set_to_none=True)
        out["loss"].backward()
        ctx.clip(self.model)
        opts["vae"].step()
        return {"loss": out["loss"].item(), "mse": out["mse"].item(), "kl": out["kl"].item()}


def _build(cfg, meta, normalizer) -> GridVAE:
    return GridVAE(cfg.model, tuple(meta["grid_shape"]))


FAMILY = Family(
    name="grid_vae",
    config=GridVAEConfig,
    task=GridVAETask,
    build=_build,
    sampling_net=lambda model: model.decoder,
    generate=generate_grid,
)

__all__ = ["FAMILY", "GridVAE", "GridVAEConfig", "GridVAETask"]
