"""Consistency distillation (Song et al., arXiv 2303.01469), as used by CaloClouds II
(Buhmann et al., arXiv 2309.05704), each piece a small function.

- :class:`ConsistencyPrecond`: the EDM-style wrapper with the boundary-condition scalings
  ``c_skip = sd^2 / ((sigma - sigma_min)^2 + sd^2)`` and ``c_out = (sigma - sigma_min) sd /
  sqrt(sigma^2 + sd^2)``, so ``f(x, sigma_min) = x`` exactly.
- :func:`karras_discretisation`: the ``N`` increasing noise levels of the distillation.
- :func:`teacher_heun_step`: one Heun step of the teacher's probability-flow ODE.
- :func:`distillation_loss`: ``|f_theta(x_{n+1}, t_{n+1}) - f_target(x_hat_n, t_n)|^2``.
- :func:`ema_target_update`: the target network's EMA.
- :func:`sample_consistency` (one step) and :func:`sample_multistep` share the samplers'
  signature (:mod:`pointcalo.sampling`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pointcalo.models.caloclouds.precond import EDMPrecond
from pointcalo.sampling import Callback, Denoiser, Generator, _denoise, _noise


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


def karras_discretisation(
    n: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0
) -> torch.Tensor:
    """``[n]`` increasing noise levels ``t_1 = sigma_min < ... < t_n = sigma_max``."""
    i = torch.arange(n, dtype=torch.float64) / max(n - 1, 1)
    return (sigma_min ** (1 / rho) + i * (sigma_max ** (1 / rho) - sigma_min ** (1 / rho))) ** rho


@torch.no_grad()
def teacher_heun_step(
    teacher: Denoiser, x: torch.Tensor, t_from: torch.Tensor, t_to: torch.Tensor, cond: Any
) -> torch.Tensor:
    """One Heun step of ``dx/dsigma = (x - D(x; sigma)) / sigma`` from ``t_from`` to ``t_to``
    (per-row noise levels ``[P, 1]``)."""
    d = teacher(x, t_from, cond)
    slope = (x - d) / t_from
    x_euler = x + (t_to - t_from) * slope
    slope_to = (x_euler - teacher(x_euler, t_to, cond)) / t_to
    return x + (t_to - t_from) * 0.5 * (slope + slope_to)


def distillation_loss(
    student: nn.Module,
    target: nn.Module,
    teacher: Denoiser,
    x0: torch.Tensor,
    t_next: torch.Tensor,
    t_now: torch.Tensor,
    noise: torch.Tensor,
    cond: Any,
) -> torch.Tensor:
    """Consistency distillation loss for clean ``x0 [P, F]`` at adjacent levels
    ``t_next > t_now`` (``[P, 1]``, per row): the student at ``x0 + t_next noise`` must agree
    with the EMA target at the teacher's Heun step down to ``t_now`` (squared L2)."""
    x_next = x0 + t_next * noise
    x_now = teacher_heun_step(teacher, x_next, t_next, t_now, cond)
    with torch.no_grad():
        y_target = target(x_now, t_now, cond)
    return ((student(x_next, t_next, cond) - y_target) ** 2).mean()


@torch.no_grad()
def ema_target_update(target: nn.Module, student: nn.Module, decay: float) -> None:
    """``target = decay * target + (1 - decay) * student``."""
    for t, s in zip(target.parameters(), student.parameters(), strict=True):
        t.mul_(decay).add_(s.detach(), alpha=1 - decay)


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
    """One-step generation: ``f(x, sigmas[0])`` (one network evaluation)."""
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
    """Multistep consistency sampling (Song et al. algorithm 1): denoise in one step, then for
    each further non-zero level re-noise to it and denoise again."""
    levels = [float(s) for s in sigmas if float(s) > 0]
    out = _denoise(denoiser, x, levels[0], cond)
    for i, s in enumerate(levels[1:], start=1):
        x_i = out + (s**2 - sigma_min**2) ** 0.5 * _noise(generator, i, out)
        out = _denoise(denoiser, x_i, s, cond)
        if callback is not None:
            callback(i, s, x_i, out)
    return out
