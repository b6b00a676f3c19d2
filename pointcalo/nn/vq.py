"""Vector quantisation with a codebook kept healthy (van den Oord, Vinyals, Kavukcuoglu,
"Neural Discrete Representation Learning", arXiv 1711.00937): each vector is replaced by its
nearest code; codes move as exponential moving averages of the vectors assigned to them
(Razavi et al., arXiv 1906.00446), start on encoder outputs of the first batch and a code whose
moving-average count falls below ``dead_below`` restarts on a random vector of the batch.
Shared by the grid and the point VQ-VAEs.
"""

from __future__ import annotations

import torch
from torch import nn


class Quantizer(nn.Module):
    """``K`` codes of ``D`` numbers, updated as moving averages (not by the optimiser)."""

    def __init__(self, k: int, d: int, decay: float, dead_below: float) -> None:
        super().__init__()
        self.decay, self.dead_below = decay, dead_below
        self.register_buffer("codes", torch.zeros(k, d))
        self.register_buffer("count", torch.zeros(k))
        self.register_buffer("sums", torch.zeros(k, d))
        self.register_buffer("ready", torch.zeros((), dtype=torch.bool))

    def nearest(self, z: torch.Tensor, chunk: int = 512) -> torch.Tensor:
        """Index ``[N]`` of the code nearest to each of ``z [N, D]`` (``chunk`` rows at a
        time; ``|z|^2`` is the same for every code of a row and left out)."""
        norms = self.codes.pow(2).sum(1)
        parts = [(norms - 2 * part @ self.codes.T).argmin(1) for part in z.split(chunk)]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64, device=z.device)

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
        hits = torch.bincount(idx, minlength=len(self.codes)).to(z.dtype)
        sums = torch.zeros_like(self.sums).index_add_(0, idx, z)
        self.count.mul_(self.decay).add_(hits, alpha=1 - self.decay)
        self.sums.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.count.sum()
        smoothed = (self.count + 1e-5) / (n + len(self.codes) * 1e-5) * n
        self.codes.copy_(self.sums / smoothed[:, None])
        dead = (self.count < self.dead_below).nonzero().flatten()
        if len(dead):
            fresh = z[pick[torch.arange(len(dead)) % len(pick)]]
            self.codes[dead] = fresh
            self.sums[dead] = fresh
            self.count[dead] = 1.0
