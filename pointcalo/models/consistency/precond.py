"""Consistency-model preconditioning (Song et al., arXiv 2303.01469): EDM's wrapper with the
boundary-condition scalings ``c_skip = sd^2 / ((sigma - sigma_min)^2 + sd^2)`` and
``c_out = (sigma - sigma_min) sd / sqrt(sigma^2 + sd^2)``, so ``f(x, sigma_min) = x`` exactly."""

from __future__ import annotations

import torch
from torch import nn

from pointcalo.models.caloclouds.precond import EDMPrecond


class ConsistencyPrecond(EDMPrecond):
    """EDM preconditioning with the consistency boundary condition at ``sigma_min``."""

    def __init__(self, net: nn.Module, sigma_data: torch.Tensor, sigma_min: float = 0.002) -> None:
        super().__init__(net, sigma_data)
        self.sigma_min = sigma_min

    def scalings(self, sigma: torch.Tensor) -> tuple[torch.Tensor, ...]:
        sd, s0 = self.sigma_data, self.sigma_min
        c_skip = sd**2 / ((sigma - s0) ** 2 + sd**2)
        c_out = (sigma - s0) * sd / (sigma**2 + sd**2).sqrt()
        c_in = 1 / (sigma**2 + sd**2).sqrt()
        return c_skip, c_out, c_in, sigma.log() / 4
