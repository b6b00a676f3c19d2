"""What the GAN families share: least-squares GAN training and generation for point clouds,
and the Wasserstein critic loss with gradient penalty of the grid models
(:func:`wgan_gp_critic_loss`; grid_gan and BIB-AE's critic in grid_vae).

A GAN family's model has a ``generator(z [P, z_dim], z_g [B, g_dim], cond [B, 2], ptr) ->
points [P, F]``, a ``critic(points, cond, ptr) -> [B]`` and a point-count model ``count``
(:class:`pointcalo.models.count.PointCount`). Training (:class:`LSGANTask`) alternates the
least-squares objectives (Mao et al., arXiv 1611.04076) of the critic (real to 1, generated to
0) and the generator (generated to 1), as EPiC-GAN (arXiv 2301.08128) and MPGAN
(arXiv 2106.11535) do, and fits the point-count flow by maximum likelihood for the first
``count_model_steps``. Generation (:func:`generate_gan`, one request batch at a time) gives
every cloud ``i`` its own random stream seeded from ``(seed, i)``: its number of points and its
noise come from it, so a cloud is the same whatever the batch size or device order it is
generated in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import nn

from pointcalo.clouds import GeneratedClouds, Normalizer
from pointcalo.config import ModelConfig
from pointcalo.models.optim import GAN_BETAS, adam
from pointcalo.models.registry import GenerationBatch, TaskBase
from pointcalo.streams import cloud_generators, cloud_noise


class GANConfig(ModelConfig):
    """Fields every GAN family has: per-point and per-cloud noise sizes, and the point-count
    flow (a conditional spline flow of ``log n``: ``count_transforms`` transforms of
    ``count_hidden`` units, learning rate ``count_lr``)."""

    z_dim: int = Field(8, ge=1)
    g_dim: int = Field(16, ge=1)
    count_transforms: int = Field(2, ge=1)
    count_hidden: int = Field(32, ge=1)
    count_lr: float = Field(1e-3, gt=0)


def critic_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Least-squares critic objective: real to 1, generated to 0."""
    return ((d_real - 1) ** 2).mean() + (d_fake**2).mean()


def generator_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Least-squares generator objective: generated to 1."""
    return ((d_fake - 1) ** 2).mean()


class LSGANTask(TaskBase):
    """Training of a GAN family by the engine (:mod:`pointcalo.train.engine`); a family
    subclasses it and builds its model in ``make_model``."""

    def __init__(self, cfg, n_features: int, mean_points: float, data=None) -> None:
        self.cfg = cfg
        self.model = self.make_model(cfg.model, n_features, mean_points)
        self.gen = self.model.generator
        self.critic = self.model.critic

    def make_model(self, cfg_model, n_features: int, mean_points: float) -> nn.Module:
        raise NotImplementedError

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        t, m = self.cfg.train, self.model
        return {
            "generator": adam(m.generator.parameters(), t.lr, t.betas, GAN_BETAS),
            "critic": adam(m.critic.parameters(), t.lr_critic, t.betas, GAN_BETAS),
            **self.count_optimizers(),
        }

    def count_optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        """The optimiser of the point-count model (:meth:`fit_count`): a likelihood fit, with
        Adam's own betas unless the run sets them."""
        t, m = self.cfg.train, self.model
        return {"count": adam(m.count.parameters(), m.cfg.count_lr, t.betas)}

    def ema_target(self) -> nn.Module:
        return self.model.generator

    def wrap(self, wrap) -> None:
        self.gen, self.critic = wrap(self.model.generator), wrap(self.model.critic)

    def condition(self, batch, ctx) -> torch.Tensor:
        """The condition the generator and critic see for the batch's clouds: the batch's
        standardised ``(log c, log n)``; a family may add to it (EPiC-GAN's shower flow)."""
        return batch.cond.to(ctx.device)

    def fit_count(self, batch, ctx) -> dict[str, float]:
        """Fit the point-count model by maximum likelihood for the first
        ``count_model_steps`` steps; returns its loss (nothing after those steps)."""
        if ctx.step >= self.cfg.train.count_model_steps:
            return {}
        loss_n = self.model.count.nll(batch.cond.to(ctx.device).float())
        ctx.update(loss_n, self.model.count, "count")
        return {"loss_count": loss_n.item()}

    def step(self, batch, ctx, opts) -> dict:
        counts = batch.counts.numpy()
        z, zg = cloud_noise(
            cloud_generators(ctx.keys), counts, self.cfg.model.z_dim, self.cfg.model.g_dim
        )
        real, cond, ptr = (
            batch.points.to(ctx.device),
            self.condition(batch, ctx),
            batch.ptr.to(ctx.device),
        )
        z, zg = z.to(ctx.device), zg.to(ctx.device)
        gen, critic = self.gen, self.critic
        with ctx.amp:
            with torch.no_grad():
                fake = gen(z, zg, cond, ptr)
            # real and generated clouds in one critic pass (one forward per backward)
            both = critic(
                torch.cat([real, fake.to(real.dtype)]),
                torch.cat([cond, cond]),
                torch.cat([ptr, ptr[1:] + ptr[-1]]),
            )
            loss_d = critic_loss(both[: len(cond)], both[len(cond) :])
        ctx.update(loss_d, self.model.critic, "critic")
        with ctx.amp:
            loss_g = generator_loss(critic(gen(z, zg, cond, ptr), cond, ptr))
        ctx.update(loss_g, self.model.generator, "generator")
        stats = {"loss_critic": loss_d.item(), "loss_generator": loss_g.item()}
        return stats | self.fit_count(batch, ctx)


@torch.no_grad()
def generate_gan(
    model: nn.Module,
    net: nn.Module,
    normalizer: Normalizer,
    cfg: Any,
    batch: GenerationBatch,
    max_points: int = 20000,
) -> GeneratedClouds:
    """A GAN family's ``generate``: the clouds of one request batch (physical conditions
    ``batch.condition``, MeV for showers) from the generator ``net`` (e.g. its EMA copy) and
    ``model.count``."""
    net.eval()
    count, device = model.count.cpu(), batch.device
    gens = batch.generators()
    base = torch.stack([torch.randn(1, generator=g)[0] for g in gens])
    log_c = normalizer.encode_cond(batch.condition, np.ones(len(batch)))[:, 0]
    std_log_n = count.sample(torch.as_tensor(log_c), base).numpy()
    log_n = std_log_n * normalizer.cond_std[1] + normalizer.cond_mean[1]
    counts = np.clip(np.rint(np.exp(log_n)), 1, max_points).astype(np.int64)
    cond = normalizer.encode_cond(batch.condition, counts)
    z, zg = cloud_noise(gens, counts, cfg.model.z_dim, cfg.model.g_dim)
    ptr = torch.as_tensor(np.concatenate([[0], np.cumsum(counts)]), device=device)
    x = net(z.to(device), zg.to(device), torch.as_tensor(cond, device=device), ptr)
    points = normalizer.decode_points(x.float().cpu().numpy())
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return GeneratedClouds(offsets, points, batch.condition)


def wgan_gp_critic_loss(
    critic: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    cond: torch.Tensor,
    alpha: torch.Tensor,
    gp_weight: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``D(fake) - D(real) + gp_weight * (|grad D(mix)| - 1)^2`` at interpolates ``mix`` of
    ``real`` and ``fake`` grids ``[B, L, H, W]`` placed by ``alpha [B]``; and the penalty."""
    d_real = critic(real, cond).squeeze(1)
    d_fake = critic(fake, cond).squeeze(1)
    a = alpha.view(-1, 1, 1, 1)
    mix = (a * real + (1 - a) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mix, cond).sum(), mix, create_graph=True)
    gp = (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
    return d_fake.mean() - d_real.mean() + gp_weight * gp, gp
