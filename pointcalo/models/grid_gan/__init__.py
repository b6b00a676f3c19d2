"""Conditional WGAN-GP on a voxelize grid (3-d convolutional generator and critic), trained by
the engine on showers projected onto the grid; generation as every grid family
(:mod:`pointcalo.models.voxels`)."""

from __future__ import annotations

import torch
from torch import nn

from pointcalo.models.grid_gan.config import GridGANConfig
from pointcalo.models.grid_gan.model import GridGAN
from pointcalo.models.optim import GAN_BETAS, adam
from pointcalo.models.registry import Family
from pointcalo.models.voxels import GridTaskBase, generate_grid
from pointcalo.streams import cloud_generators


class GridGANTask(GridTaskBase):
    """Training of a grid WGAN-GP by the engine: a critic step every step, a generator step
    every ``n_critic`` steps."""

    def __init__(self, cfg, n_features: int, mean_points: float, data=None) -> None:
        super().__init__(cfg, data)
        self.cfg = cfg
        self.model = GridGAN(cfg.model, self.shape)
        self.model.set_scale(self.scale)
        with torch.no_grad():  # the generator starts from the mean training shower
            self.model.generator.net.bias.copy_(self.voxels.mean(0))
        self.gen = self.model.generator

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        t, m = self.cfg.train, self.model
        return {
            "generator": adam(m.generator.parameters(), t.lr, t.betas, GAN_BETAS),
            "critic": adam(m.critic.parameters(), t.lr_critic, t.betas, GAN_BETAS),
        }

    def ema_target(self) -> nn.Module:
        return self.model.generator

    def wrap(self, wrap) -> None:
        """The generator goes through DDP; the critic's loss is not its ``forward``, so
        ``step`` averages its gradients by hand (``ctx.all_reduce``)."""
        self.gen = wrap(self.model.generator)

    def step(self, batch, ctx, opts) -> dict:
        y, c = self.rows(ctx)
        gens = cloud_generators(ctx.keys)
        z = torch.stack([torch.randn(self.cfg.model.latent, generator=g) for g in gens])
        alpha = torch.stack([torch.rand(1, generator=g)[0] for g in gens])
        z, alpha = z.to(ctx.device), alpha.to(ctx.device)
        with torch.no_grad():
            fake = self.gen(z, c)
        loss_d, gp = self.model.critic_loss(y, fake, c, alpha)
        ctx.update(loss_d, self.model.critic, "critic")
        stats = {"loss_critic": loss_d.item(), "gradient_penalty": gp.item()}
        if ctx.step % self.cfg.model.n_critic == 0:
            loss_g = self.model.generator_loss(self.gen(z, c), c)
            ctx.update(loss_g, self.model.generator, "generator")
            stats["loss_generator"] = loss_g.item()
        return stats


def _build(cfg, meta, normalizer) -> GridGAN:
    return GridGAN(cfg.model, tuple(meta["grid_shape"]))


FAMILY = Family(
    name="grid_gan",
    config=GridGANConfig,
    task=GridGANTask,
    build=_build,
    sampling_net=lambda model: model.generator,
    generate=generate_grid,
    point_output=False,
)

__all__ = ["FAMILY", "GridGAN", "GridGANConfig", "GridGANTask"]
