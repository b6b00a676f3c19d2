"""Conditional VAE on a voxelize grid (3-d convolutional, heteroscedastic Gaussian
likelihood), trained by the engine on showers projected onto the grid; generation gives voxels
and, through voxelize.to_points, point showers (:mod:`pointcalo.models.voxels`)."""

from __future__ import annotations

import torch
from torch import nn

from pointcalo.models.grid_vae.config import GridVAEConfig
from pointcalo.models.grid_vae.model import GridVAE
from pointcalo.models.optim import GAN_BETAS, adam
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

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        t, m = self.cfg.train, self.model
        vae = [*m.encoder.parameters(), *m.decoder.net.parameters()]
        opts = {"vae": adam(vae, t.lr, t.betas)}
        if m.decoder.post is not None:
            opts["post"] = adam(m.decoder.post.parameters(), t.lr, t.betas)
        if m.critic is not None:
            opts["critic"] = adam(m.critic.parameters(), t.lr_critic, t.betas, GAN_BETAS)
        return opts

    def ema_target(self) -> nn.Module:
        return self.model.decoder

    def wrap(self, wrap) -> None:
        """Nothing goes through DDP (the loss is not a ``forward``): ``step`` averages the
        gradients over the processes by hand (``ctx.all_reduce``)."""

    def step(self, batch, ctx, opts) -> dict:
        from pointcalo.models.gan import wgan_gp_critic_loss
        from pointcalo.streams import cloud_generators

        m, cfg = self.model, self.cfg.model
        y, c = self.rows(ctx)
        gens = cloud_generators(ctx.keys)
        eps = torch.stack([torch.randn(cfg.latent, generator=g) for g in gens]).to(ctx.device)
        voxel_eps = None
        if m.critic is not None or m.decoder.post is not None:
            voxel_eps = torch.stack([torch.randn(self.shape, generator=g) for g in gens])
            voxel_eps = voxel_eps.to(ctx.device)
        with ctx.amp:
            out = self.model.loss(y, c, eps, voxel_eps)
        loss, stats = out["loss"], {"mse": out["mse"].item(), "kl": out["kl"].item()}
        if m.critic is not None:  # BIB-AE's critic: real showers against reconstructions
            alpha = torch.stack([torch.rand(1, generator=g)[0] for g in gens]).to(ctx.device)
            fake = out.get("post", out["recon"]).detach()
            loss_d, gp = wgan_gp_critic_loss(m.critic, y, fake, c, alpha, cfg.gp_weight)
            ctx.update(loss_d, m.critic, "critic")
            stats |= {"loss_critic": loss_d.item(), "gradient_penalty": gp.item()}
            loss = loss - cfg.critic_weight * m.critic(out["recon"], c).mean()
        if m.decoder.post is not None:
            loss_post = out["loss_post"]
            if m.critic is not None:
                loss_post = loss_post - cfg.critic_weight * m.critic(out["post"], c).mean()
            loss = loss + loss_post
            stats["loss_post"] = out["loss_post"].item()
        # the critic's own step is done: the VAE's loss passes through it without moving it
        names = [name for name in ("vae", "post") if name in opts]
        ctx.update(loss, m, *names, frozen=m.critic)
        return {"loss": out["loss"].item(), **stats}


def _build(cfg, meta, normalizer) -> GridVAE:
    return GridVAE(cfg.model, tuple(meta["grid_shape"]))


FAMILY = Family(
    name="grid_vae",
    config=GridVAEConfig,
    task=GridVAETask,
    build=_build,
    sampling_net=lambda model: model.decoder,
    generate=generate_grid,
    point_output=False,
)

__all__ = ["FAMILY", "GridVAE", "GridVAEConfig", "GridVAETask"]
