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


class VAEDecoder(nn.Module):
    """Latent and condition to each voxel's mean and log standard deviation; as the sampling
    network, ``forward(noise [B, latent + V], cond)`` draws network-unit voxels from them."""

    def __init__(self, shape: tuple[int, int, int], channels: int, latent: int) -> None:
        super().__init__()
        self.latent = latent
        self.net = GridDecoder(shape, channels, latent + 1, out_channels=2)

    def params(self, z: torch.Tensor, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(torch.cat([z, cond], 1))
        return out[:, 0], out[:, 1].clamp(LOG_STD_MIN, 2.0)

    def forward(self, noise: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        mean, log_std = self.params(noise[:, : self.latent], cond)
        eps = noise[:, self.latent :].reshape(mean.shape)
        return mean + torch.exp(log_std) * eps


class GridVAE(GridModel):
    """Encoder, decoder and the voxel scale of one conditional grid VAE."""

    def __init__(self, cfg: GridVAEConfig, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.cfg, self.shape = cfg, tuple(shape)
        self.encoder = GridEncoder(self.shape, cfg.channels, 2 * cfg.latent)
        self.decoder = VAEDecoder(self.shape, cfg.channels, cfg.latent)

    @property
    def noise_dim(self) -> int:
        return self.cfg.latent + int(torch.tensor(self.shape).prod())

    def loss(self, y: torch.Tensor, cond: torch.Tensor, eps: torch.Tensor) -> dict:
        """Negative ELBO per shower and its parts, for network-unit voxels ``y [B, L, H, W]``,
        ``cond [B, 1]`` and noise ``eps [B, latent]``."""
        mu, logvar = self.encoder(y, cond).chunk(2, 1)
        logvar = logvar.clamp(-12, 8)
        z = mu + torch.exp(0.5 * logvar) * eps
        mean, log_std = self.decoder.params(z, cond)
        nll = (0.5 * (y - mean).pow(2) * torch.exp(-2 * log_std) + log_std).flatten(1).sum(1)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
        mse = (mean - y).pow(2).mean()
        return {"loss": (nll + kl).mean() / y[0].numel(), "mse": mse, "kl": kl.mean()}
