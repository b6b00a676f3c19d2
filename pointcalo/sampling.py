"""Noise schedules and diffusion samplers, all with one signature.

``sample_x(denoiser, x, sigmas, *, cond=None, generator=None, callback=None) -> x0``

- ``denoiser(x, sigma, cond)`` returns ``D(x; sigma)``, the denoised estimate (EDM, Karras et
  al., arXiv 2206.00364); ``sigma`` is a float tensor broadcastable to ``x``.
- ``x`` is the starting sample at noise level ``sigmas[0]`` (pure noise times ``sigmas[0]``).
- ``sigmas`` is a decreasing schedule ending at 0 (e.g. :func:`karras_sigmas`).
- ``generator`` gives the fresh noise stochastic samplers need: a ``torch.Generator``, or a
  callable ``noise(step) -> tensor like x`` (how per-shower random streams are passed).
- ``callback(step, sigma, x, denoised)`` is called after every step.

Schedules are free functions, as in k-diffusion (Crowson); the one-step consistency sampler of
later models shares the signature.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]
Generator = torch.Generator | Callable[[int], torch.Tensor] | None
Callback = Callable[[int, float, torch.Tensor, torch.Tensor], None] | None


def karras_sigmas(
    n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0
) -> torch.Tensor:
    """EDM noise levels ``[n + 1]``: ``n`` steps from ``sigma_max`` to ``sigma_min``, then 0
    (Karras et al. eq. 5)."""
    if n < 1:
        raise ValueError(f"number of steps must be >= 1, got {n}")
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    inv = sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    return torch.cat([inv**rho, torch.zeros(1, dtype=torch.float64)])


def _noise(generator: Generator, step: int, like: torch.Tensor) -> torch.Tensor:
    if callable(generator) and not isinstance(generator, torch.Generator):
        return generator(step).to(like)
    return torch.randn(like.shape, generator=generator, dtype=like.dtype).to(like.device)


def _denoise(denoiser: Denoiser, x: torch.Tensor, sigma: float, cond: Any) -> torch.Tensor:
    return denoiser(x, torch.full((1,), float(sigma), dtype=x.dtype, device=x.device), cond)


@torch.no_grad()
def sample_euler(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    cond: Any = None,
    generator: Generator = None,
    callback: Callback = None,
) -> torch.Tensor:
    """First-order (Euler) integration of the probability-flow ODE ``dx/dsigma = (x - D) /
    sigma``; one network evaluation per step."""
    for i in range(len(sigmas) - 1):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        d = _denoise(denoiser, x, s, cond)
        x = x + (s_next - s) * (x - d) / s
        if callback is not None:
            callback(i, s, x, d)
    return x


@torch.no_grad()
def sample_heun(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    cond: Any = None,
    generator: Generator = None,
    callback: Callback = None,
) -> torch.Tensor:
    """EDM's deterministic second-order Heun sampler (Karras et al. algorithm 1): an Euler step
    corrected by the slope at its end, except for the last step to sigma = 0; ``2 n - 1``
    network evaluations for ``n`` steps."""
    return sample_heun_churn(
        denoiser, x, sigmas, cond=cond, generator=generator, callback=callback, churn=0.0
    )


@torch.no_grad()
def sample_heun_churn(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    cond: Any = None,
    generator: Generator = None,
    callback: Callback = None,
    churn: float = 10.0,
    s_tmin: float = 0.05,
    s_tmax: float = 50.0,
    s_noise: float = 1.003,
) -> torch.Tensor:
    """EDM's stochastic Heun sampler (Karras et al. algorithm 2): before each step within
    ``[s_tmin, s_tmax]`` the noise level is raised by ``gamma = min(churn / n, sqrt 2 - 1)``
    with fresh noise; ``churn = 0`` is the deterministic sampler."""
    n = len(sigmas) - 1
    gamma_max = min(churn / max(n, 1), 2**0.5 - 1)
    for i in range(n):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        gamma = gamma_max if churn > 0 and s_tmin <= s <= s_tmax else 0.0
        s_hat = s * (1 + gamma)
        if gamma > 0:
            x = x + (s_hat**2 - s**2) ** 0.5 * s_noise * _noise(generator, i, x)
        d = _denoise(denoiser, x, s_hat, cond)
        slope = (x - d) / s_hat
        x_next = x + (s_next - s_hat) * slope
        if s_next > 0:
            d_next = _denoise(denoiser, x_next, s_next, cond)
            x_next = x + (s_next - s_hat) * 0.5 * (slope + (x_next - d_next) / s_next)
        x = x_next
        if callback is not None:
            callback(i, s, x, d)
    return x


@torch.no_grad()
def sample_ode(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    cond: Any = None,
    generator: Generator = None,
    callback: Callback = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    method: str = "dopri5",
    sigma_min: float = 0.002,
) -> torch.Tensor:
    """The probability-flow ODE solved with torchdiffeq's adaptive solver (``method``) in
    ``t = ln sigma`` from ``sigmas[0]`` to the smallest non-zero sigma, then one final
    denoising step to 0. Only the end points of ``sigmas`` matter (a schedule with a single
    non-zero level integrates down to ``sigma_min``)."""
    from torchdiffeq import odeint

    nonzero = sigmas[sigmas > 0]
    s_start, s_end = float(nonzero[0]), float(nonzero[-1])
    if s_end >= s_start:  # a one-level schedule: integrate down to sigma_min
        s_end = min(sigma_min, s_start / 2)
    evals = [0]

    def flow(t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # in t = ln(sigma): dx/dt = sigma dx/dsigma = x - D(x; sigma), well conditioned
        evals[0] += 1
        d = _denoise(denoiser, y.to(x.dtype), float(torch.exp(t)), cond).to(y.dtype)
        return y - d

    grid = torch.tensor([math.log(s_start), math.log(s_end)], dtype=torch.float64)
    y = odeint(flow, x.double(), grid, rtol=rtol, atol=atol, method=method)[-1].to(x.dtype)
    if float(sigmas[-1]) == 0.0:
        d = _denoise(denoiser, y, s_end, cond)
        if callback is not None:
            callback(evals[0], s_end, d, d)
        return d
    return y


def _consistency_sampler(name: str) -> Callable[..., torch.Tensor]:
    def sample(*args: Any, **kwargs: Any) -> torch.Tensor:
        from pointcalo.models import consistency

        return getattr(consistency, name)(*args, **kwargs)

    return sample


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "euler": sample_euler,
    "heun": sample_heun,
    "heun_churn": sample_heun_churn,
    "ode": sample_ode,
    "consistency": _consistency_sampler("sample_consistency"),
    "multistep": _consistency_sampler("sample_multistep"),
}
