"""The model registry: how the engine, the CLI, loading and generation find a model family.

Each family lives in its own folder ``pointcalo/models/<family>/`` whose ``__init__`` defines
``FAMILY = Family(...)``: its config class, how to make its training task, how to rebuild its
modules from a checkpoint, which module carries the sampling (EMA) weights, and how to generate.
:data:`FAMILIES` maps a name to that module; adding a family is its folder plus one line here.
Nothing outside a family's folder names a family: the training loop (as in NVlabs/edm's, which
builds networks from config by class name) only asks this registry.

This module also holds the small interfaces between the framework and a family: its training
task (:class:`Task`, :class:`StepContext`) and one batch of a generation request
(:class:`GenerationBatch`), so families never import the training loop or the sampler.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from pointcalo.clouds import GeneratedClouds, Normalizer
from pointcalo.errors import ConfigError
from pointcalo.streams import cloud_generators

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
    "grid_vqvae": "pointcalo.models.grid_vqvae",
    "grid_gpt": "pointcalo.models.grid_gpt",
    "point_vqvae": "pointcalo.models.point_vqvae",
    "point_gpt": "pointcalo.models.point_gpt",
    "geometry_arm": "pointcalo.models.geometry_arm",
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
    - ``generate(model, net, normalizer, cfg, batch: GenerationBatch, **options) ->
      GeneratedClouds``: the clouds of one batch of a request (the framework's driver,
      :func:`pointcalo.generation.generate`, cuts a request into batches, makes the points
      valid and joins the batches); ``options`` are the family's own (e.g. CaloClouds'
      ``postprocess``).
    - ``export(loaded, out, fmt, **options) -> (Path, dict)`` (optional): write the model as
      ``fmt`` (``torchscript``, ``onnx`` or ``ddml``) for use outside Python and return what
      its card should add; ``None``: it does not export.
    - ``point_output``: its clouds are generated points, made valid by the framework
      (:mod:`pointcalo.validity`); False for grid families, whose points stand for voxels.
    - ``migrate(model_section, version)`` (optional): fill, in place, the ``model:`` fields
      added since checkpoint format ``version`` with the values that rebuild the model an
      older checkpoint was written with.
    - ``extra_conditions``: it takes named conditions besides the primary one
      (``data.conditions``; :mod:`pointcalo.conditions`): its training batches' ``cond`` then
      has their standardised values after ``(log c, log n)``, its generation batches carry
      them in ``conditions``. False: a run naming any is refused at config load.
    - ``any_grid``: it generates on a grid given at sampling (``generate(..., grid=...)``,
      ``pointcalo sample --grid``): a geometry-aware model.
    """

    name: str
    config: type
    task: Callable[..., Task]
    build: Callable[..., nn.Module]
    sampling_net: Callable[[nn.Module], nn.Module | None]
    generate: Callable[..., GeneratedClouds]
    export: Callable[..., Any] | None = None
    point_output: bool = True
    extra_conditions: bool = False
    any_grid: bool = False
    migrate: Callable[[dict, int], None] | None = None


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
    share of a batch. ``normalizer``: a normalisation of its own that replaces the data's
    (distillation keeps its teacher's), else None; ``meta``: what it adds to the checkpoint's
    meta. These are every member the engine reads; :class:`TaskBase` gives the defaults."""

    model: nn.Module
    normalizer: Normalizer | None
    meta: Mapping[str, Any]

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


@dataclass(frozen=True)
class GenerationBatch:
    """One batch of a generation request, as a family's ``generate`` receives it.

    ``conditions``: the model's named conditions in physical units, each ``[B]`` (the first
    is the primary one: the incident energy in MeV for showers, the jet pt for jets; others
    as :mod:`pointcalo.conditions` names them); ``first_index``: the request-wide index of the
    batch's first cloud; cloud ``i`` of the batch draws all its randomness from the stream
    keyed ``(seed, first_index + i)`` (:meth:`generators`), so it does not depend on the batch
    it falls in. ``sampler`` and ``steps``: the diffusion sampler asked for (None: the model's
    own; families without one ignore them).
    """

    conditions: dict[str, np.ndarray]
    seed: int
    first_index: int
    device: torch.device
    sampler: str | None = None
    steps: int | None = None

    def __len__(self) -> int:
        return len(self.condition)

    @property
    def condition(self) -> np.ndarray:
        """The primary condition ``[B]`` (float64; MeV for showers)."""
        return next(iter(self.conditions.values()))

    @property
    def keys(self) -> list[tuple[int, int]]:
        """Each cloud's stream key ``(seed, index)``."""
        return [(self.seed, self.first_index + i) for i in range(len(self))]

    def generators(self) -> list[torch.Generator]:
        """One torch generator per cloud from its key (``streams.cloud_generators``)."""
        return cloud_generators(self.keys)


class TaskBase:
    """Defaults of :class:`Task` for a family's task to inherit: the data's normalisation,
    nothing added to the checkpoint's meta, no EMA, no module wrapped for DDP."""

    normalizer: Normalizer | None = None
    meta: Mapping[str, Any] = MappingProxyType({})

    def ema_target(self) -> nn.Module | None:
        return None

    def wrap(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        return None
