"""EDM training loss (Karras et al., arXiv 2206.00364, eq. 8 with table 1's choices).

Per shower a noise level ``ln sigma ~ N(P_mean, P_std^2)``; every point of the shower is
noised with it, and the loss is the mean over points and features of
``lambda(sigma) |D(x + sigma n; sigma) - x|^2`` with ``lambda = (sigma^2 + sd^2) / (sigma sd)^2``
(per-feature sd), which makes the effective target unit-variance at every sigma.
"""

from __future__ import annotations

from typing import Any

import torch

from pointcalo.models.caloclouds.precond import EDMPrecond


def edm_loss(
    denoiser: EDMPrecond,
    x0: torch.Tensor,
    ptr: torch.Tensor,
    cond: Any,
    *,
    ln_sigma: torch.Tensor,
    noise: torch.Tensor,
) -> torch.Tensor:
    """Loss of clean points ``x0 [P, F]`` of showers ``ptr [B + 1]``.

    ``ln_sigma [B]`` (one level per shower) and ``noise [P, F]`` are given by the caller, so
    each shower's randomness comes from its own stream.
    """
    counts = ptr[1:] - ptr[:-1]
    sigma = torch.repeat_interleave(ln_sigma.exp(), counts)[:, None].to(x0.dtype)
    sd = getattr(denoiser, "module", denoiser).sigma_data  # also through DDP
    weight = (sigma**2 + sd**2) / (sigma * sd) ** 2
    d = denoiser(x0 + sigma * noise, sigma, cond)
    return (weight * (d - x0) ** 2).mean()


def sample_ln_sigma(
    n: int, generator: torch.Generator | None = None, p_mean: float = -1.2, p_std: float = 1.2
) -> torch.Tensor:
    """``[n]`` log noise levels of the EDM training distribution."""
    return p_mean + p_std * torch.randn(n, generator=generator)
