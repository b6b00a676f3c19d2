"""Consistency-distillation loss and target update (Song et al., arXiv 2303.01469, as used by
CaloClouds II, arXiv 2309.05704): the student at ``x0 + t_{n+1} noise`` must agree with the
EMA target at one teacher Heun step down to ``t_n`` (:func:`pointcalo.sampling.heun_step`,
the same step the Heun sampler takes)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from pointcalo.sampling import Denoiser, heun_step


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
    with torch.no_grad():
        x_now = heun_step(teacher, x_next, t_next, t_now, cond)
    with torch.no_grad():
        y_target = target(x_now, t_now, cond)
    return ((student(x_next, t_next, cond) - y_target) ** 2).mean()


@torch.no_grad()
def ema_target_update(target: nn.Module, student: nn.Module, decay: float) -> None:
    """``target = decay * target + (1 - decay) * student``."""
    for t, s in zip(target.parameters(), student.parameters(), strict=True):
        t.mul_(decay).add_(s.detach(), alpha=1 - decay)
