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
Pixel loss: mean squared difference of ``log1p(share / share_floor)``, so halo voxels count.

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
from pointcalo.nn.grid import GridDecoder, GridEncoder


class Quantizer(nn.Module):
    """``K`` codes of ``D`` numbers, updated as moving averages (not by the optimiser)."""

    def __init__(self, k: int, d: int, decay: float, dead_below: float) -> None:
        super().__init__()
        self.decay, self.dead_below = decay, dead_below
        self.register_buffer("codes", torch.zeros(k, d))
        self.register_buffer("count", torch.zeros(k))
        self.register_buffer("sums", torch.zeros(k, d))
        self.register_buffer("ready", torch.zeros((), dtype=torch.bool))

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Index ``[N]`` of the code nearest to each of ``z [N, D]``."""
        d = z.pow(2).sum(1, keepdim=True) - 2 * z @ self.codes.T + self.codes.pow(2).sum(1)
        return d.argmin(1)

    @torch.no_grad()
    def update(self, z: torch.Tensor, idx: torch.Tensor, pick: torch.Tensor) -> None:
        """Moving-average step on the assigned vectors ``z [N, D]`` (``idx`` their codes);
        dead codes restart on the vectors ``z[pick]`` (``pick``: a random permutation)."""
        if not bool(self.ready):  # data-dependent start: codes on encoder outputs
            self.codes.copy_(z[pick[torch.arange(len(self.codes)) % len(pick)]])
            self.sums.copy_(self.codes)
            self.count.fill_(1.0)
            self.ready.fill_(True)
            return
        onehot = nn.functional.one_hot(idx, len(self.codes)).to(z.dtype)
        self.count.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.sums.mul_(self.decay).add_(onehot.T @ z, alpha=1 - self.decay)
        n = self.count.sum()
        smoothed = (self.count + 1e-5) / (n + len(self.codes) * 1e-5) * n
        self.codes.copy_(self.sums / smoothed[:, None])
        dead = (self.count < self.dead_below).nonzero().flatten()
        if len(dead):
            fresh = z[pick[torch.arange(len(dead)) % len(pick)]]
            self.codes[dead] = fresh
            self.sums[dead] = fresh
            self.count[dead] = 1.0


class GridVQVAE(GridModel):
    """Encoder, codebook, decoder, the token prior and the R table of one grid VQ-VAE."""

    def __init__(self, cfg: GridVQVAEConfig, shape: tuple[int, int, int], n_train: int) -> None:
        super().__init__()
        self.cfg, self.shape = cfg, tuple(shape)
        t, d = cfg.tokens, cfg.code_dim
        self.encoder = GridEncoder(self.shape, cfg.channels, t * d, periodic=cfg.periodic)
        self.decoder = GridDecoder(self.shape, cfg.channels, t * d + 1, periodic=cfg.periodic)
        self.quantizer = Quantizer(cfg.codebook, d, cfg.decay, cfg.dead_below)
        self.register_buffer("prior", torch.full((t, cfg.codebook), 1.0 / cfg.codebook))
        # training showers' standardised condition and R = E_vis / E_inc, for generation
        self.register_buffer("train_cond", torch.zeros(n_train))
        self.register_buffer("train_r", torch.zeros(n_train))

    def encode(self, y: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Continuous encoder outputs ``[B, tokens, code_dim]``."""
        return self.encoder(y, cond).reshape(len(y), self.cfg.tokens, self.cfg.code_dim)

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
        q = self.quantizer.codes[idx].flatten(1)
        logits = (decoder or self.decoder)(torch.cat([q, cond.to(q.device)], 1))
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
        logits = self.decoder(torch.cat([q.reshape(len(y), -1), cond], 1))
        pred = torch.softmax(logits.flatten(1), 1)
        f = cfg.share_floor
        pixel = (torch.log1p(pred / f) - torch.log1p(target.flatten(1) / f)).pow(2).mean()
        used = int((self.quantizer.count > cfg.dead_below).sum())
        return {"loss": pixel + cfg.commitment * commit, "pixel": pixel, "commit": commit,
                "codes_used": used}  # fmt: skip
