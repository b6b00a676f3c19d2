"""The model registry: how the engine, the CLI, loading and generation find a model family.

Each family lives in its own folder ``pointcalo/models/<family>/`` whose ``__init__`` defines
``FAMILY = Family(...)``: its config class, how to make its training task, how to rebuild its
modules from a checkpoint, which module carries the sampling (EMA) weights, and how to generate.
:data:`FAMILIES` maps a name to that module; adding a family is its folder plus one line here.
Nothing outside a family's folder names a family: the training loop (as in NVlabs/edm's, which
builds networks from config by class name) only asks this registry.

This module also holds the small interface between the engine and a family's training task
(:class:`Task`, :class:`StepContext`), so families never import the training loop.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from pointcalo.errors import ConfigError

#: name -> module defining ``FAMILY``; one line per family.
FAMILIES: dict[str, str] = {
    "epic_gan": "pointcalo.models.epic_gan",
    "caloclouds": "pointcalo.models.caloclouds",
    "consistency": "pointcalo.models.consistency",
    "library": "pointcalo.models.library",
    "mpgan": "pointcalo.models.mpgan",
    "grid_vae": "pointcalo.models.grid_vae",
    "grid_gan": "pointcalo.models.grid_gan",
    "grid_flow": "pointcalo.models.grid_flow",
}


@dataclass(frozen=True)
class Family:
    """What the rest of pointcalo needs of a model family.

    - ``config``: its pydantic config class (``model:`` section; a ``name`` literal field).
    - ``task(cfg, n_features, mean_points, data) -> Task``: training by the engine.
    - ``build(cfg, meta, normalizer) -> nn.Module``: the modules, from a checkpoint's run
      config, ``meta`` and normaliser alone (weights are loaded afterwards).
    - ``sampling_net(model) -> nn.Module | None``: the module holding the EMA weights
      (``None``: the family keeps no EMA).
    - ``generate(model, net, normalizer, condition [N], cfg, *, seed, first_index, device,
      batch_size, sampler, steps) -> GeneratedClouds``: clouds for physical conditions.
    - ``export(loaded, out, fmt) -> Path`` (optional): write the model as ``fmt``
      (``torchscript`` or ``onnx``) for use outside Python; ``None``: it does not export.
    - ``point_output``: its clouds are generated points, made valid by the framework
      (:mod:`pointcalo.validity`); False for grid families, whose points stand for voxels.
    """

    name: str
    config: type
    task: Callable[..., Task]
    build: Callable[..., nn.Module]
    sampling_net: Callable[[nn.Module], nn.Module | None]
    generate: Callable[..., Any]
    export: Callable[..., Any] | None = None
    point_output: bool = True


_loaded: dict[str, Family] = {}


def names() -> list[str]:
    """Names of the registered families."""
    return sorted({*FAMILIES, *_loaded})


def get(name: str) -> Family:
    """The family called ``name``; an unknown name is a ConfigError listing the known ones."""
    if name in _loaded:
        return _loaded[name]
    if name not in FAMILIES:
        raise ConfigError(f"model.name: unknown model {name!r} (known: {', '.join(names())})")
    family = importlib.import_module(FAMILIES[name]).FAMILY
    _loaded[name] = family
    return family


def register(family: Family) -> None:
    """Add a family at run time (e.g. a toy family in the tests or a user's own model)."""
    _loaded[family.name] = family


@dataclass
class StepContext:
    """Everything a training step may need besides the batch.

    ``keys`` are the random-stream keys of this process's clouds (``(seed, step, position in
    the whole batch)``): each cloud's noise depends on them alone, not on the split across
    processes. ``index`` are the clouds' positions in the training data.
    ``update(loss, module, *optimiser_names, frozen=None)`` is the one optimisation step of
    the framework: zero the optimisers' gradients, backward, zero ``frozen``'s, average the
    gradients over processes (unless DDP does), clip as configured, step; families call it
    and never step an optimiser themselves. ``clip(module)`` and ``all_reduce(module)`` are
    its parts.
    """

    step: int
    keys: list[tuple[int, ...]]
    index: np.ndarray
    device: torch.device
    amp: contextlib.AbstractContextManager
    clip: Callable[[nn.Module], None]
    all_reduce: Callable[[nn.Module], None]
    update: Callable[..., None]
    world: int = 1


class Task(Protocol):
    """A family's training, as the engine drives it: it builds its modules, names its
    optimisers (none: nothing to optimise, e.g. a shower library, and the engine only writes
    the checkpoint), says which module the EMA follows and performs one step on its process's
    share of a batch."""

    model: nn.Module

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        """Optimisers by name, with their base learning rates."""
        ...

    def ema_target(self) -> nn.Module | None:
        """The module whose weights the EMA follows (the sampler's network), or None."""
        ...

    def wrap(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Wrap the modules that train with DDP (``wrap`` is the identity for one process)."""
        ...

    def step(self, batch: Any, ctx: StepContext, opts: dict[str, torch.optim.Optimizer]) -> dict:
        """One optimisation step on this process's clouds; returns scalar statistics."""
        ...
