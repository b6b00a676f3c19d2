"""Noise schedules and diffusion samplers, all with one signature.

``sample_x(denoiser, x, sigmas, *, cond=None, generator=None, callback=None) -> x0``

- ``denoiser(x, sigma, cond)`` returns ``D(x; sigma)``, the denoised estimate (EDM, Karras et
  al., arXiv 2206.00364); ``sigma`` is a float tensor broadcastable to ``x``.
- ``x`` is the starting sample at noise level ``sigmas[0]`` (pure noise times ``sigmas[0]``).
- ``sigmas`` is a decreasing schedule ending at 0 (e.g. :func:`karras_sigmas`).
- ``generator`` gives the fresh noise stochastic samplers need: a ``torch.Generator``, or a
  callable ``noise(step) -> tensor like x`` (how per-shower random streams are passed).
- ``callback(step, sigma, x, denoised)`` is called after every step.

Schedules are free functions, as in k-diffusion (Crowson): :func:`karras_levels` is the one
Karras ramp behind the sampling schedule :func:`karras_sigmas` and the consistency
discretisation :func:`karras_discretisation`; :func:`schedule` gives each sampler its levels
for a number of steps. One Heun step (:func:`heun_step`) serves the Heun samplers and the
teacher of consistency distillation. The consistency samplers (Song et al., arXiv 2303.01469)
share the signature: :func:`sample_consistency` (one step) and :func:`sample_multistep`.
This module imports no model: a sampler never knows which model made the denoiser.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]
Generator = torch.Generator | Callable[[int], torch.Tensor] | None
Callback = Callable[[int, float, torch.Tensor, torch.Tensor], None] | None


def karras_levels(
    n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0
) -> torch.Tensor:
    """``[n]`` increasing noise levels ``sigma_min = s_1 < ... < s_n = sigma_max``, evenly
    spaced in ``sigma^(1/rho)`` (Karras et al. eq. 5; ``n = 1`` gives ``[sigma_max]``)."""
    if n < 1:
        raise ValueError(f"number of levels must be >= 1, got {n}")
    if n == 1:
        return torch.tensor([sigma_max], dtype=torch.float64)
    ramp = torch.linspace(0, 1, n, dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return (lo + ramp * (hi - lo)) ** rho


def karras_sigmas(
    n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0
) -> torch.Tensor:
    """EDM sampling schedule ``[n + 1]``: ``n`` steps from ``sigma_max`` to ``sigma_min``, then
    0 (Karras et al. eq. 5)."""
    if n < 1:
        raise ValueError(f"number of steps must be >= 1, got {n}")
    levels = karras_levels(n, sigma_min, sigma_max, rho).flip(0)
    return torch.cat([levels, torch.zeros(1, dtype=torch.float64)])


def karras_discretisation(
    n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0
) -> torch.Tensor:
    """The ``N`` increasing levels ``t_1 = sigma_min < ... < t_N = sigma_max`` of consistency
    distillation (Song et al. 2023, as CaloClouds II)."""
    if n < 2:
        raise ValueError(f"consistency distillation needs >= 2 levels, got {n}")
    return karras_levels(n, sigma_min, sigma_max, rho)


def schedule(
    sampler: str, steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0
) -> torch.Tensor:
    """The noise levels ``sampler`` needs for ``steps`` network steps.

    ``consistency``: ``[sigma_max, 0]``; ``multistep``: ``steps`` levels above ``sigma_min``
    (where the consistency model is the identity), then ``sigma_min`` and 0; the ODE and
    Heun/Euler samplers: :func:`karras_sigmas`.
    """
    if sampler == "consistency":
        return karras_sigmas(1, sigma_min, sigma_max, rho)
    if sampler == "multistep":
        return karras_sigmas(steps + 1, sigma_min, sigma_max, rho)
    return karras_sigmas(steps, sigma_min, sigma_max, rho)


def _noise(generator: Generator, step: int, like: torch.Tensor) -> torch.Tensor:
    if callable(generator) and not isinstance(generator, torch.Generator):
        return generator(step).to(like)
    return torch.randn(like.shape, generator=generator, dtype=like.dtype).to(like.device)


def _level(sigma: float, like: torch.Tensor) -> torch.Tensor:
    return torch.full((1,), float(sigma), dtype=like.dtype, device=like.device)


def _denoise(denoiser: Denoiser, x: torch.Tensor, sigma: float, cond: Any) -> torch.Tensor:
    return denoiser(x, _level(sigma, x), cond)


def heun_step(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigma: torch.Tensor,
    sigma_next: torch.Tensor,
    cond: Any,
    denoised: torch.Tensor | None = None,
) -> torch.Tensor:
    """One Heun step of ``dx/dsigma = (x - D(x; sigma)) / sigma`` from ``sigma`` to
    ``sigma_next > 0`` (tensors broadcastable to ``x``: one level, or one per row); an Euler
    step corrected by the slope at its end. ``denoised``: ``D(x; sigma)`` if already known."""
    d = denoiser(x, sigma, cond) if denoised is None else denoised
    slope = (x - d) / sigma
    x_euler = x + (sigma_next - sigma) * slope
    slope_next = (x_euler - denoiser(x_euler, sigma_next, cond)) / sigma_next
    return x + (sigma_next - sigma) * 0.5 * (slope + slope_next)


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
        if s_next > 0:
            x = heun_step(denoiser, x, _level(s_hat, x), _level(s_next, x), cond, denoised=d)
        else:
            x = x + (s_next - s_hat) * (x - d) / s_hat
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


@torch.no_grad()
def sample_consistency(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    cond: Any = None,
    generator: Generator = None,
    callback: Callback = None,
) -> torch.Tensor:
    """One-step generation with a consistency model: ``f(x, sigmas[0])`` (one network
    evaluation)."""
    out = _denoise(denoiser, x, float(sigmas[0]), cond)
    if callback is not None:
        callback(0, float(sigmas[0]), out, out)
    return out


@torch.no_grad()
def sample_multistep(
    denoiser: Denoiser,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    cond: Any = None,
    generator: Generator = None,
    callback: Callback = None,
    sigma_min: float = 0.002,
) -> torch.Tensor:
    """Multistep consistency sampling (Song et al. algorithm 1): denoise from ``sigmas[0]``,
    then for every further level above ``sigma_min`` (the model's own; at ``sigma_min`` it is
    the identity) re-noise to it and denoise again: one network evaluation per such level
    (:func:`schedule` gives ``steps`` of them)."""
    levels = [float(s) for s in sigmas if float(s) > sigma_min * (1 + 1e-6)]
    out = _denoise(denoiser, x, levels[0], cond)
    if callback is not None:
        callback(0, levels[0], x, out)
    for i, s in enumerate(levels[1:], start=1):
        x_i = out + (s**2 - sigma_min**2) ** 0.5 * _noise(generator, i, out)
        out = _denoise(denoiser, x_i, s, cond)
        if callback is not None:
            callback(i, s, x_i, out)
    return out


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "euler": sample_euler,
    "heun": sample_heun,
    "heun_churn": sample_heun_churn,
    "ode": sample_ode,
    "consistency": sample_consistency,
    "multistep": sample_multistep,
}
#: Samplers that take the model's ``sigma_min`` as a keyword.
TAKES_SIGMA_MIN = frozenset({"ode", "multistep"})
