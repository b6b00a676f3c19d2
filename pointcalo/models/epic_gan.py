"""EPiC-GAN: an equivariant point-cloud GAN (Buhmann, Kasieczka, Thaler, arXiv 2301.08128).

Generator: per-point noise ``z [P, z_dim]`` and per-cloud noise ``z_g [B, g_dim]`` with the
condition ``c [B, 2]`` (standardised log energy and log number of points) pass through EPiC
layers (:class:`pointcalo.nn.EPiCLayer`) to per-point features. Critic: EPiC layers over the
points, then a head on the pooled points, global vector and condition, one score per cloud.
Both are trained with the least-squares GAN objective (Mao et al., arXiv 1611.04076), as in
the paper. The number of points of a cloud is drawn from a learned conditional distribution
``p(log n | log c)`` (a small neural spline flow, zuko). Every cloud has its own random stream
(from ``(seed, index)``), so a cloud does not change with the batch it is generated in.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from pointcalo.config import EPiCGANConfig
from pointcalo.models.streams import cloud_generators, cloud_noise
from pointcalo.nn import EPiCLayer, batch_index, segment_mean, segment_sum

COND_DIM = 2


class Generator(nn.Module):
    """Noise and condition to points ``[P, n_features]`` (normalised units)."""

    def __init__(self, cfg: EPiCGANConfig, n_features: int, sum_scale: float) -> None:
        super().__init__()
        self.cfg = cfg
        self.local_in = weight_norm(nn.Linear(cfg.z_dim, cfg.point_dim))
        self.global_in = weight_norm(nn.Linear(cfg.g_dim + COND_DIM, cfg.global_dim))
        self.layers = nn.ModuleList(
            EPiCLayer(cfg.point_dim, cfg.global_dim, cfg.hidden, COND_DIM, sum_scale)
            for _ in range(cfg.layers)
        )
        self.out = weight_norm(nn.Linear(cfg.point_dim, n_features))
        self.act = nn.LeakyReLU(0.01)

    def forward(
        self, z: torch.Tensor, zg: torch.Tensor, cond: torch.Tensor, ptr: torch.Tensor
    ) -> torch.Tensor:
        batch = batch_index(ptr)
        x = self.act(self.local_in(z))
        g = self.act(self.global_in(torch.cat([zg, cond], 1)))
        for layer in self.layers:
            x, g = layer(x, g, cond, ptr, batch)
        return self.out(x)


class Critic(nn.Module):
    """Points and condition to one score per cloud ``[B]``."""

    def __init__(self, cfg: EPiCGANConfig, n_features: int, sum_scale: float) -> None:
        super().__init__()
        self.sum_scale = sum_scale
        self.local_in = weight_norm(nn.Linear(n_features, cfg.point_dim))
        self.global_in = weight_norm(nn.Linear(2 * cfg.point_dim + COND_DIM, cfg.global_dim))
        self.layers = nn.ModuleList(
            EPiCLayer(cfg.point_dim, cfg.global_dim, cfg.hidden, COND_DIM, sum_scale)
            for _ in range(cfg.critic_layers)
        )
        self.head = nn.Sequential(
            weight_norm(nn.Linear(2 * cfg.point_dim + cfg.global_dim + COND_DIM, cfg.hidden)),
            nn.LeakyReLU(0.01),
            weight_norm(nn.Linear(cfg.hidden, 1)),
        )
        self.act = nn.LeakyReLU(0.01)

    def _pooled(self, x: torch.Tensor, ptr: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [segment_mean(x, ptr, batch), self.sum_scale * segment_sum(x, ptr, batch)], 1
        )

    def forward(self, points: torch.Tensor, cond: torch.Tensor, ptr: torch.Tensor) -> torch.Tensor:
        batch = batch_index(ptr)
        x = self.act(self.local_in(points))
        g = self.act(self.global_in(torch.cat([self._pooled(x, ptr, batch), cond], 1)))
        for layer in self.layers:
            x, g = layer(x, g, cond, ptr, batch)
        return self.head(torch.cat([self._pooled(x, ptr, batch), g, cond], 1)).squeeze(1)


class PointCount(nn.Module):
    """Learned ``p(log n | log c)`` in standardised units: a conditional spline flow (zuko)."""

    def __init__(self) -> None:
        super().__init__()
        import zuko

        self.flow = zuko.flows.NSF(features=1, context=1, transforms=2, hidden_features=(32, 32))

    def nll(self, cond: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of ``cond[:, 1]`` given ``cond[:, 0]``."""
        return -self.flow(cond[:, :1]).log_prob(cond[:, 1:2]).mean()

    @torch.no_grad()
    def sample(self, log_c: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """Standardised log n for standardised ``log_c [B]``, from base noise ``[B]``."""
        dist = self.flow(log_c[:, None])
        return dist.transform.inv(base[:, None]).squeeze(1)


class EPiCGAN(nn.Module):
    """Generator, critic and point-count model of one EPiC-GAN."""

    def __init__(self, cfg: EPiCGANConfig, n_features: int, mean_points: float) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_features = n_features
        sum_scale = 1.0 / max(mean_points, 1.0)
        self.generator = Generator(cfg, n_features, sum_scale)
        self.critic = Critic(cfg, n_features, sum_scale)
        self.count = PointCount()

    @staticmethod
    def critic_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        """Least-squares critic objective: real to 1, generated to 0."""
        return ((d_real - 1) ** 2).mean() + (d_fake**2).mean()

    @staticmethod
    def generator_loss(d_fake: torch.Tensor) -> torch.Tensor:
        """Least-squares generator objective: generated to 1."""
        return ((d_fake - 1) ** 2).mean()


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
            "count": (torch.optim.Adam(m.count.parameters(), lr=1e-3), 1e-3),
        }

    def ema_target(self) -> nn.Module:
        return self.model.generator

    def wrap(self, wrap) -> None:
        self.gen, self.critic = wrap(self.model.generator), wrap(self.model.critic)

    def step(self, batch, ctx, opts) -> dict:
        from pointcalo.train.task import all_reduce_grads

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
            all_reduce_grads(self.model.count, ctx.world)
            opts["count"].step()
            stats["loss_count"] = loss_n.item()
        return stats
