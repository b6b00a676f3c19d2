"""Noise-level embedding for diffusion denoisers.

Random Fourier features of the scalar ``c_noise`` (Tancik et al., arXiv 2006.10739; used for
the noise level by Song et al., arXiv 2011.13456, and by EDM's NCSN++ networks, Karras et al.,
arXiv 2206.00364), followed by a linear layer and SiLU, so every layer of the denoiser sees the
noise level as a learned vector rather than one raw number.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class FourierEmbedding(nn.Module):
    """``emb(c [B, 1]) -> [B, dim]``: ``SiLU(W [sin 2 pi f c, cos 2 pi f c])``.

    The frequencies ``f ~ N(0, scale^2)`` are a fixed buffer drawn from a fixed seed, so a model
    rebuilt from its checkpoint has the same embedding.
    """

    def __init__(self, dim: int, n_frequencies: int = 16, scale: float = 4.0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.register_buffer("freqs", torch.randn(n_frequencies, generator=gen) * scale)
        self.linear = nn.Linear(2 * n_frequencies, dim)
        self.act = nn.SiLU()

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        phase = 2 * math.pi * c.reshape(-1, 1).to(self.freqs.dtype) * self.freqs
        return self.act(self.linear(torch.cat([phase.sin(), phase.cos()], 1)))
