"""EDM preconditioning (Karras et al., arXiv 2206.00364, table 1), one sigma_data per feature.

``D(x; sigma) = c_skip x + c_out F(c_in x; c_noise)`` with ``c_skip = sd^2 / (sigma^2 + sd^2)``,
``c_out = sigma sd / sqrt(sigma^2 + sd^2)``, ``c_in = 1 / sqrt(sigma^2 + sd^2)`` and
``c_noise = ln(sigma) / 4``. At sigma -> 0, ``D(x) -> x``. The wrapped network ``F`` never
sees the formulation: swapping it touches neither the network nor the samplers.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class EDMPrecond(nn.Module):
    """Wrap a network ``net(x_in [P, F], c_noise [P, 1], cond) -> [P, F]`` as a denoiser.

    Args:
        net: the raw network.
        sigma_data: ``[F]`` standard deviation of the (normalised) data per feature.

    ``forward(x, sigma, cond)``: ``x [P, F]``, ``sigma`` broadcastable to ``[P, 1]``.
    """

    def __init__(self, net: nn.Module, sigma_data: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("sigma_data", torch.as_tensor(sigma_data, dtype=torch.float32))

    def scalings(self, sigma: torch.Tensor) -> tuple[torch.Tensor, ...]:
        sd = self.sigma_data
        denom = sigma**2 + sd**2
        return sd**2 / denom, sigma * sd / denom.sqrt(), 1 / denom.sqrt(), sigma.log() / 4

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: Any) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, dtype=x.dtype, device=x.device).reshape(-1, 1)
        if sigma.shape[0] == 1:
            sigma = sigma.expand(x.shape[0], 1)
        c_skip, c_out, c_in, c_noise = self.scalings(sigma)
        return c_skip * x + c_out * self.net(c_in * x, c_noise, cond)
