"""Conditional VAE on a voxelize grid (Kingma and Welling, arXiv 1312.6114), the auto-encoder
line of calorimeter models (ATLAS VAE; BIB-AE, Buhmann et al., arXiv 2005.05334, built for
ILD-like 30x30x30 photon showers).

Encoder and decoder are 3-d convolutional (:mod:`pointcalo.nn.grid`); both see the condition
``c = standardised log E_inc``. The reconstruction term is a Gaussian likelihood whose variance
is set to the batch's mean squared error (the "optimal sigma" VAE, Rybkin et al., arXiv
2006.13202), so the balance between reconstruction and the KL term needs no tuning. The map
between voxel energies and network units (:class:`pointcalo.models.voxels.VoxelScale`) is kept
in buffers, so a checkpoint alone rebuilds the sampler.
"""

from __future__ import annotations

import torch

from pointcalo.models.grid_vae.config import GridVAEConfig
from pointcalo.models.voxels import GridModel
from pointcalo.nn.grid import ConditionalGridDecoder, GridEncoder


class GridVAE(GridModel):
    """Encoder, decoder and the voxel scale of one conditional grid VAE."""

    def __init__(self, cfg: GridVAEConfig, shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.cfg, self.shape = cfg, tuple(shape)
        self.encoder = GridEncoder(self.shape, cfg.channels, 2 * cfg.latent)
        self.decoder = ConditionalGridDecoder(self.shape, cfg.channels, cfg.latent)

    def loss(self, y: torch.Tensor, cond: torch.Tensor, eps: torch.Tensor) -> dict:
        """Negative ELBO per shower (optimal-sigma Gaussian likelihood) and its parts, for
        network-unit voxels ``y [B, L, H, W]``, ``cond [B, 1]`` and noise ``eps [B, latent]``."""
        mu, logvar = self.encoder(y, cond).chunk(2, 1)
        logvar = logvar.clamp(-12, 8)
        z = mu + torch.exp(0.5 * logvar) * eps
        rec = self.decoder(z, cond)
        mse = (rec - y).pow(2).mean()
        n_vox = y[0].numel()
        nll = 0.5 * n_vox * torch.log(mse.detach() + 1e-8) + 0.5 * n_vox * mse / (
            mse.detach() + 1e-8
        )
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
        return {"loss": nll + kl, "mse": mse, "kl": kl}
