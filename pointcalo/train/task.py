"""What the training engine needs from a model family (one small interface per family).

A task builds its modules, names its optimisers, says which module the EMA follows and
performs one training step on its process's share of a batch; the engine does the rest
(schedule, EMA, logging, checkpoints, resume, data-parallel set-up).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from pointcalo.showers import PointBatch


@dataclass
class StepContext:
    """Everything a training step may need besides the batch.

    ``keys`` are the random-stream keys of this process's clouds (``(seed, step, position in
    the whole batch)``): each cloud's noise depends on them alone, not on the split across
    processes. ``index`` are the clouds' positions in the training data.
    """

    step: int
    keys: list[tuple[int, ...]]
    index: np.ndarray
    device: torch.device
    amp: contextlib.AbstractContextManager
    clip: Callable[[nn.Module], None]
    world: int


class Task(Protocol):
    model: nn.Module

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        """Optimisers by name, with their base learning rates."""
        ...

    def ema_target(self) -> nn.Module:
        """The module whose weights the EMA follows (the sampler's network)."""
        ...

    def wrap(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Wrap the modules that train with DDP (``wrap`` is the identity for one process)."""
        ...

    def step(
        self, batch: PointBatch, ctx: StepContext, opts: dict[str, torch.optim.Optimizer]
    ) -> dict[str, Any]:
        """One optimisation step on this process's clouds; returns scalar statistics."""
        ...


def all_reduce_grads(module: nn.Module, world: int) -> None:
    """Average gradients over processes by hand (for modules outside DDP)."""
    if world > 1:
        for p in module.parameters():
            if p.grad is not None:
                torch.distributed.all_reduce(p.grad)
                p.grad /= world
