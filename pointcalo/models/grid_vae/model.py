"""Conditional VAE on a voxelize grid (Kingma and Welling, arXiv 1312.6114), the auto-encoder
line of calorimeter models (ATLAS VAE; BIB-AE, Buhmann et al., arXiv 2005.05334, built for
ILD-like 30x30x30 photon showers).

Encoder and decoder are 3-d convolutional (:mod:`pointcalo.nn.grid`); both see the condition
``c = standardised log E_inc``. The decoder gives every voxel a mean and a standard deviation
(a heteroscedastic Gaussian likelihood, Nix and Weigend 1994; Kendall and Gal, arXiv
1703.04977), and generation samples it: a halo voxel that is empty in most showers and holds a
few MeV in some gets a low mean and a wide spread, so it is drawn empty or full as in Geant4,
where the conditional mean alone (a global-variance likelihood) decoded to an empty halo
(``docs/fidelity.md``). The map between voxel energies and network units is kept in buffers, so
a checkpoint alone rebuilds the sampler.

BIB-AE's critic and post-processor are optional (:class:`GridVAEConfig`): the post-processor
is part of the sampling network (and of its EMA), the critic only of training.
"""

from __future__ import annotations

import torch
from torch import nn

from pointcalo.models.grid_vae.config import GridVAEConfig
from pointcalo.models.voxels import GridModel
from pointcalo.nn.grid import GridDecoder, GridEncoder

#: smallest per-voxel standard deviation (network units, [0, 1]): without a floor the precision
#: of deterministic voxels grows without bound and the latent code takes over what the
#: condition should explain (the toy test then drew the wrong energy's pattern)
LOG_STD_MIN = -3.0


class PostProcessor(nn.Module):
    """BIB-AE's post-processor: ``x + f(x)`` voxel by voxel on a ``[B, L, H, W]`` grid, ``f`` a
    small network of the voxel's value (1x1x1 convolutions, the last starting at zero, so it
    starts as the identity). It reshapes the distribution of voxel values, which its sorted
    loss measures, and cannot move energy between voxels: with 3x3x3 convolutions the
    location-blind sorted loss let it shift whole patterns (the toy test failed)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv3d(1, 4 * channels, 1),
            nn.LeakyReLU(0.2),
            nn.Conv3d(4 * channels, 4 * channels, 1),
            nn.LeakyReLU(0.2),
            nn.Conv3d(4 * channels, 1, 1),
        )
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x[:, None])[:, 0]


def sorted_w2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the descending-sorted voxel values of each shower pair
    ``a, b [B, ...]``: the squared 1-d Wasserstein-2 distance between their voxel-value
    distributions, which does not care where a value sits (BIB-AE's sorted-energy MMD)."""
    sa = a.flatten(1).sort(dim=1, descending=True).values
    sb = b.flatten(1).sort(dim=1, descending=True).values
    return (sa - sb).pow(2).mean()


class VAEDecoder(nn.Module):
    """Latent and condition to each voxel's mean and log standard deviation; as the sampling
    network, ``forward(noise [B, latent + V], cond)`` draws network-unit voxels from them (and
    passes them through the post-processor, if there is one)."""

    def __init__(
        self, shape: tuple[int, int, int], channels: int, latent: int, post: bool = False
    ) -> None:
        super().__init__()
        self.latent = latent
        self.net = GridDecoder(shape, channels, latent + 1, out_channels=2)
        self.post = PostProcessor(channels) if post else None

    def params(self, z: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(torch.cat([z, cond], 1))
        return out[:, 0], out[:, 1].clamp(LOG_STD_MIN, 2.0)

    def forward(self, noise: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        mean, log_std = self.params(noise[:, : self.latent], cond)
        eps = noise[:, self.latent :].reshape(mean.shape)
        x = mean + torch.exp(log_std) * eps
        return x if self.post is None else self.post(x)


class GridVAE(GridModel):
    """Encoder, decoder and the voxel scale of one conditional grid VAE."""

    def __init__(self, cfg: GridVAEConfig, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.cfg, self.shape = cfg, tuple(shape)
        self.encoder = GridEncoder(self.shape, cfg.channels, 2 * cfg.latent)
        self.decoder = VAEDecoder(self.shape, cfg.channels, cfg.latent, cfg.post_processor)
        self.critic = GridEncoder(self.shape, cfg.channels, 1) if cfg.critic else None

    @property
    def noise_dim(self) -> int:
        return self.cfg.latent + int(torch.tensor(self.shape).prod())

    def loss(
        self,
        y: torch.Tensor,
        cond: torch.Tensor,
        eps: torch.Tensor,
        voxel_eps: torch.Tensor | None = None,
    ) -> dict:
        """Negative ELBO per shower and its parts, for network-unit voxels ``y [B, L, H, W]``,
        ``cond [B, 1]`` and noise ``eps [B, latent]``. With ``voxel_eps [B, L, H, W]`` (needed
        by the critic and the post-processor) also the sampled reconstruction ``recon``, its
        post-processed version ``post`` and the post-processor's loss ``loss_post`` (the sorted
        W2 to ``y``, on the detached reconstruction: it trains the post-processor alone)."""
        mu, logvar = self.encoder(y, cond).chunk(2, 1)
        logvar = logvar.clamp(-12, 8)
        z = mu + torch.exp(0.5 * logvar) * eps
        mean, log_std = self.decoder.params(z, cond)
        nll = (0.5 * (y - mean).pow(2) * torch.exp(-2 * log_std) + log_std).flatten(1).sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        mse = (mean - y).pow(2).mean()
        out = {"loss": (nll + kl).mean() / y[0].numel(), "mse": mse, "kl": kl.mean()}
        if voxel_eps is not None:
            out["recon"] = mean + torch.exp(log_std) * voxel_eps
            if self.decoder.post is not None:
                out["post"] = self.decoder.post(out["recon"].detach())
                out["loss_post"] = sorted_w2(out["post"], y)
        return out
