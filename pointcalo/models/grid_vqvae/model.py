"""Stage 1 of a two-stage latent calorimeter model: a vector-quantised auto-encoder that turns
a shower on a grid into a short sequence of tokens (van den Oord, Vinyals, Kavukcuoglu, "Neural
Discrete Representation Learning", arXiv 1711.00937; for calorimeters Calo-VQ, Liu et al.,
arXiv 2405.06605, and the latent models of Shimmin et al.).

The encoder (3-d convolutions, :class:`pointcalo.nn.grid.GridEncoder`) maps a shower's network
units ``[B, L, H, W]`` and its condition (standardised log E_inc) to ``tokens`` vectors of
``code_dim`` numbers; each is replaced by its nearest codebook vector (straight-through
gradients; commitment loss on the encoder); the decoder (:class:`GridDecoder`) maps the codes
and the condition to one logit per voxel, a softmax over all voxels to the shower's voxel
shares (summing to one). Energies are ``shares * R * E_inc`` with ``R = E_vis / E_inc``
handled beside the tokens (Calo-VQ's normalisation: the pixel loss sees shape, not scale).
Pixel loss: mean squared difference of ``log1p(share / share_floor)``, so halo voxels count;
plus ``kl_weight`` times the Kullback-Leibler divergence of the predicted shares from the
shower's (energy-weighted). The log-space pixel loss alone is met by the typical (geometric-
mean-like) share of a sparse halo voxel, below its mean, and the softmax piles the missing
energy into the core: one mean shape fitted to the validation photons on the cylindrical grid
puts 93.5 % of the energy in the innermost radial bin with the pixel loss alone, 87.8 / 77.8 /
73.5 % with ``kl_weight`` 1 / 10 / 100, against their mean 72.8 %; the configs use 100.

Codebook health (dead codes are the failure of VQ training): the codebook starts from encoder
outputs of the first batch, is updated as exponential moving averages of the vectors assigned
to each code (Razavi et al., arXiv 1906.00446), and a code whose moving-average count falls
below ``dead_below`` is restarted on a random encoder output of the batch.

Generation with stage 1 alone uses an independent-code prior: per token position, the moving-
average frequency of each code over the training showers (``prior``), and R from the training
showers nearest in energy. It is the baseline a stage-2 prior (a GPT over the tokens) has to
beat; reconstruction (encode then decode) scores the tokens themselves.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pointcalo.models.grid_vqvae.config import GridVQVAEConfig
from pointcalo.models.voxels import GridModel
from pointcalo.nn.grid import GridDecoder, GridEncoder, LatentDecoder, LatentEncoder
from pointcalo.nn.vq import Quantizer


def share_losses(
    logits: torch.Tensor, target: torch.Tensor, floor: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(pixel, kl)`` of voxel logits ``[B, ...]`` against target shares ``[B, ...]`` (each
    shower's summing to one): the mean squared difference of ``log1p(share / floor)`` over
    voxels and the Kullback-Leibler divergence ``sum target log(target / predicted)`` (nats,
    mean over showers) of the softmax of the logits."""
    log_pred = torch.log_softmax(logits.flatten(1), 1)
    t = target.flatten(1)
    pixel = (torch.log1p(log_pred.exp() / floor) - torch.log1p(t / floor)).pow(2).mean()
    kl = (t * (torch.log(t.clamp(min=1e-30)) - log_pred)).sum(1).mean()
    return pixel, kl


class GridVQVAE(GridModel):
    """Encoder, codebook, decoder, the token prior and the R table of one grid VQ-VAE."""

    def __init__(self, cfg: GridVQVAEConfig, shape: tuple[int, int, int], n_train: int) -> None:
        super().__init__()
        self.cfg, self.shape = cfg, tuple(shape)
        d, ch, per = cfg.code_dim, cfg.channels, cfg.periodic
        if cfg.latent == "spatial":
            self.encoder = LatentEncoder(self.shape, ch, d, cfg.halvings, periodic=per)
            self.decoder = LatentDecoder(self.shape, ch, d, cfg.halvings, periodic=per)
            self.latent = self.decoder.shapes[-1]
            t = int(np.prod(self.latent))
        else:
            t = cfg.tokens
            self.encoder = GridEncoder(self.shape, ch, t * d, periodic=per)
            self.decoder = GridDecoder(self.shape, ch, t * d + 1, periodic=per)
        self.n_tokens = t
        self.quantizer = Quantizer(cfg.codebook, d, cfg.decay, cfg.dead_below)
        self.register_buffer("prior", torch.full((t, cfg.codebook), 1.0 / cfg.codebook))
        # training showers' standardised condition and R = E_vis / E_inc, for generation
        self.register_buffer("train_cond", torch.zeros(n_train))
        self.register_buffer("train_r", torch.zeros(n_train))

    def encode(self, y: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Continuous encoder outputs ``[B, n_tokens, code_dim]`` (spatial latent: the coarse
        cells in (layer, row, column) order)."""
        z = self.encoder(y, cond)
        if self.cfg.latent == "spatial":
            return z.flatten(2).transpose(1, 2)
        return z.reshape(len(y), self.n_tokens, self.cfg.code_dim)

    def decode(self, q: torch.Tensor, cond: torch.Tensor, decoder: nn.Module | None = None):
        """Voxel logits ``[B, L, H, W]`` of code vectors ``q [B, n_tokens, code_dim]``."""
        dec = decoder or self.decoder
        if self.cfg.latent == "spatial":
            return dec(q.transpose(1, 2).reshape(len(q), -1, *self.latent), cond)
        return dec(torch.cat([q.flatten(1), cond], 1))

    def tokens(self, y: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The tokens ``[B, tokens]`` of network-unit showers ``y``."""
        z = self.encode(y, cond)
        return self.quantizer.nearest(z.reshape(-1, z.shape[2])).reshape(z.shape[:2])

    @torch.no_grad()
    def tokens_of(self, voxels: np.ndarray, energy: np.ndarray, chunk: int = 512) -> torch.Tensor:
        """The tokens ``[N, tokens]`` of showers given as voxel energies ``[N, V]`` (MeV) on
        the model's grid with incident energies ``energy [N]`` (MeV), ``chunk`` at a time."""
        out = []
        for lo in range(0, len(voxels), chunk):
            y = torch.from_numpy(self.scale.encode(voxels[lo : lo + chunk]))
            c = torch.from_numpy(self.scale.cond(energy[lo : lo + chunk]))
            out.append(self.tokens(y.reshape(-1, *self.shape), c))
        return torch.cat(out)

    def shares(
        self, idx: torch.Tensor, cond: torch.Tensor, decoder: nn.Module | None = None
    ) -> torch.Tensor:
        """Voxel shares ``[B, V]`` float64 (each shower's sum to one) of tokens ``idx`` and
        conditions ``cond [B, 1]``, by ``decoder`` (default the model's own; generation passes
        its EMA copy)."""
        q = self.quantizer.codes[idx]
        logits = self.decode(q, cond.to(q.device), decoder)
        return torch.softmax(logits.flatten(1).double(), 1)

    def loss(self, y, cond, target, pick) -> dict:
        """Pixel and commitment losses for network-unit showers ``y``, their voxel shares
        ``target`` and a permutation ``pick`` of the batch's vectors (dead-code restarts);
        updates the codebook and the token prior (moving averages)."""
        cfg = self.cfg
        z = self.encode(y, cond)
        flat = z.reshape(-1, cfg.code_dim)
        idx = self.quantizer.nearest(flat.detach())
        if self.training:
            self.quantizer.update(flat.detach(), idx, pick)
            idx = self.quantizer.nearest(flat.detach())
            with torch.no_grad():
                onehot = nn.functional.one_hot(idx.reshape(z.shape[:2]), cfg.codebook).float()
                self.prior.mul_(cfg.decay).add_(onehot.mean(0), alpha=1 - cfg.decay)
        q = self.quantizer.codes[idx]
        commit = (flat - q).pow(2).mean()
        q = flat + (q - flat).detach()  # straight-through
        logits = self.decode(q.reshape(len(y), -1, cfg.code_dim), cond)
        pixel, kl = share_losses(logits, target, cfg.share_floor)
        used = int((self.quantizer.count > cfg.dead_below).sum())
        loss = pixel + cfg.kl_weight * kl + cfg.commitment * commit
        return {"loss": loss, "pixel": pixel, "kl": kl, "commit": commit,
                "codes_used": used}  # fmt: skip
