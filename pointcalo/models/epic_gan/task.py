"""Training of an EPiC-GAN by the engine: least-squares GAN steps (critic, then generator) and,
for the first ``count_model_steps``, maximum likelihood for the point-count flow."""

from __future__ import annotations

import torch
from torch import nn

from pointcalo.models.epic_gan.model import EPiCGAN
from pointcalo.streams import cloud_generators, cloud_noise


class EPiCGANTask:
    """Training of an EPiC-GAN by the engine (:mod:`pointcalo.train.engine`)."""

    def __init__(self, cfg, n_features: int, mean_points: float, data=None) -> None:
        self.cfg = cfg
        self.model = EPiCGAN(cfg.model, n_features, mean_points)
        self.gen = self.model.generator
        self.critic = self.model.critic

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        t, m = self.cfg.train, self.model
        return {
            "generator": (torch.optim.Adam(m.generator.parameters(), lr=t.lr, betas=t.betas), t.lr),
            "critic": (
                torch.optim.Adam(m.critic.parameters(), lr=t.lr_critic, betas=t.betas),
                t.lr_critic,
            ),
            "count": (torch.optim.Adam(m.count.parameters(), lr=m.cfg.count_lr), m.cfg.count_lr),
        }

    def ema_target(self) -> nn.Module:
        return self.model.generator

    def wrap(self, wrap) -> None:
        self.gen, self.critic = wrap(self.model.generator), wrap(self.model.critic)

    def step(self, batch, ctx, opts) -> dict:
        counts = batch.counts.numpy()
        z, zg = cloud_noise(
            cloud_generators(ctx.keys), counts, self.cfg.model.z_dim, self.cfg.model.g_dim
        )
        real, cond, ptr = (
            batch.points.to(ctx.device),
            batch.cond.to(ctx.device),
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
            loss_d = self.model.critic_loss(both[: len(cond)], both[len(cond) :])
        opts["critic"].zero_grad(set_to_none=True)
        loss_d.backward()
        ctx.clip(self.model.critic)
        opts["critic"].step()
        with ctx.amp:
            loss_g = self.model.generator_loss(critic(gen(z, zg, cond, ptr), cond, ptr))
        opts["generator"].zero_grad(set_to_none=True)
        loss_g.backward()
        ctx.clip(self.model.generator)
        opts["generator"].step()
        stats = {"loss_critic": loss_d.item(), "loss_generator": loss_g.item()}
        if ctx.step < self.cfg.train.count_model_steps:
            loss_n = self.model.count.nll(cond.float())
            opts["count"].zero_grad(set_to_none=True)
            loss_n.backward()
            ctx.all_reduce(self.model.count)
            opts["count"].step()
            stats["loss_count"] = loss_n.item()
        return stats
