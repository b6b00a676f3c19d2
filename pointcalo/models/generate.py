"""Loading any trained model and generating clouds with it (``pointcalo sample``).

Families are found through :mod:`pointcalo.models.registry`; this module never names one.
Every cloud ``i`` has its own random stream seeded from ``(seed, i)``: its condition, its
number of points and its noise come from it, so a cloud is the same whatever the batch size or
device order it is generated in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from pointcalo import streams
from pointcalo.checkpoint import load_checkpoint
from pointcalo.clouds import CPU_BATCH, GeneratedClouds, Normalizer
from pointcalo.config import validate_config
from pointcalo.errors import PointcaloError
from pointcalo.models import registry
from pointcalo.validity import PointLimits, make_valid, spec_limits


def sample_conditions(
    n: int, low: float, high: float, seed: int, first_index: int = 0
) -> np.ndarray:
    """Conditions of clouds ``first_index .. first_index + n - 1``, uniform in ``[low, high]``,
    each from the cloud's own stream (so any range of clouds can be made alone)."""
    if high <= low:
        return np.full(n, float(low))
    idx = range(first_index, first_index + n)
    u = np.array([streams.numpy_stream(seed, i, streams.CONDITION).random() for i in idx])
    return low + (high - low) * u


@dataclass
class LoadedModel:
    """A trained model from its checkpoint alone: run config, modules, the sampling network
    (with its EMA weights; the whole model for families without EMA), normalisation, and the
    checkpoint's ``meta`` (training data, energy range, ...)."""

    cfg: Any
    model: nn.Module
    net: nn.Module
    normalizer: Normalizer
    meta: dict[str, Any]

    @property
    def family(self) -> registry.Family:
        return registry.get(self.cfg.model.name)

    @property
    def limits(self) -> PointLimits | None:
        """What its generated points must obey: the training data's limits stored in the
        checkpoint, else the lattice and layers of its normalisation (older checkpoints)."""
        if "point_limits" in self.meta:
            return PointLimits.from_dict(self.meta["point_limits"])
        return spec_limits(self.normalizer.spec)


def load_model(path: str | os.PathLike[str], device: Any = "cpu") -> LoadedModel:
    """Rebuild any registered model from a checkpoint, or a shipped pretrained model by name
    (:mod:`pointcalo.pretrained`), with its EMA weights for sampling."""
    from pointcalo.pretrained import resolve

    path = resolve(path)
    state = load_checkpoint(path)
    missing = [k for k in ("config", "model", "normalizer", "meta") if k not in state]
    if missing:
        raise PointcaloError(f"{path}: not a complete checkpoint: no {', '.join(missing)}")
    cfg = validate_config(state["config"], source=str(path))
    family = registry.get(cfg.model.name)
    meta = state["meta"]
    try:
        normalizer = Normalizer.from_dict(state["normalizer"])
    except (KeyError, TypeError, ValueError) as err:
        raise PointcaloError(f"{path}: normalizer: malformed ({err})") from None
    for part in ("model", "ema"):
        bad = [
            k
            for k, v in state.get(part, {}).items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()
        ]
        if bad:
            raise PointcaloError(f"{path}: {part}: non-finite weights in {bad[0]}")
    try:
        model = family.build(cfg, meta, normalizer)
    except KeyError as err:
        raise PointcaloError(f"{path}: meta: missing {err.args[0]!r}") from None
    try:
        model.load_state_dict(state["model"])
        net = family.sampling_net(model)
        if net is not None:
            net.load_state_dict(state["ema"])
    except (RuntimeError, KeyError) as err:
        first = " ".join(str(err).split())[:300]
        raise PointcaloError(f"{path}: weights do not fit the model: {first}") from None
    model.to(device).eval()
    return LoadedModel(cfg, model, net if net is not None else model, normalizer, meta)


def generate(
    model: nn.Module,
    net: nn.Module,
    normalizer: Normalizer,
    condition: np.ndarray,
    cfg: Any,
    *,
    seed: int = 0,
    first_index: int = 0,
    device: Any = "cpu",
    batch_size: int = CPU_BATCH,
    sampler: str | None = None,
    steps: int | None = None,
    limits: PointLimits | None = None,
    **options: Any,
) -> GeneratedClouds:
    """Clouds from any model family (``net`` is the sampling network, e.g. the EMA copy);
    ``options`` go to the family's generation (e.g. CaloClouds' ``postprocess``). The points
    of point families are made valid (:func:`pointcalo.validity.make_valid`) with ``limits``
    (default: the lattice and layers of ``normalizer``; :attr:`LoadedModel.limits` holds a
    checkpoint's own)."""
    family = registry.get(cfg.model.name)
    clouds = family.generate(
        model,
        net,
        normalizer,
        np.asarray(condition, np.float64),
        cfg,
        seed=seed,
        first_index=first_index,
        device=device,
        batch_size=batch_size,
        sampler=sampler,
        steps=steps,
        **options,
    )
    limits = limits if limits is not None else spec_limits(normalizer.spec)
    if not family.point_output or limits is None:
        return clouds
    offsets, points = make_valid(clouds.offsets, clouds.points, limits)
    return GeneratedClouds(offsets, points, clouds.condition)


def generate_to_file(
    loaded: LoadedModel,
    writer: Any,
    n: int,
    low: float,
    high: float,
    *,
    seed: int = 0,
    device: Any = "cpu",
    batch_size: int = CPU_BATCH,
    chunk: int = 2048,
    sampler: str | None = None,
    steps: int | None = None,
    net: nn.Module | None = None,
    progress: Any = None,
    first: int = 0,
    conditions: np.ndarray | None = None,
    **options: Any,
) -> int:
    """Generate ``n`` showers (conditions uniform in ``[low, high]`` MeV) chunk by chunk into a
    shower ``writer`` (:func:`pointcalo.io.open_writer`), so memory is bounded by the chunk.

    ``net`` replaces the sampling network (e.g. wrapped for autocast or compiled);
    ``progress(done)`` is called after every chunk. ``first``: index of the first shower (a
    shard of a larger request makes showers ``first .. first + n - 1`` of it, the same showers
    a single process makes). ``conditions``: the conditions of all showers of the request
    (e.g. the incident energies of a reference file) instead of uniform ones. Returns the
    number of showers written. ``options`` go to the family's generation.
    """
    from pointcalo.showers import make_showers

    if loaded.normalizer.spec.condition != "incident_energy":
        raise PointcaloError("writing generated jets is done with pointcalo.io.jetnet")
    written = 0
    for start in range(first, first + n, chunk):
        stop = min(start + chunk, first + n)
        if conditions is not None:
            cond = np.asarray(conditions[start:stop], np.float64)
        else:
            cond = sample_conditions(stop - start, low, high, seed, first_index=start)
        clouds = generate(
            loaded.model,
            net if net is not None else loaded.net,
            loaded.normalizer,
            cond,
            loaded.cfg,
            seed=seed,
            first_index=start,
            device=device,
            batch_size=batch_size,
            sampler=sampler,
            steps=steps,
            limits=loaded.limits,
            **options,
        )
        showers = make_showers(
            cond.astype(np.float32), clouds.points, offsets=clouds.offsets, allow_empty=True
        )
        writer.write(showers)
        written += len(showers)
        if progress is not None:
            progress(stop - first)
    return written


def shard(n: int, batch_size: int, rank: int, world: int) -> tuple[int, int]:
    """``(first, count)`` of rank ``rank``'s showers out of ``n``: contiguous runs of whole
    generation batches, so every batch holds the same showers as in a single process (and the
    merged shards equal a single-process file)."""
    n_batches = -(-n // batch_size)
    lo, hi = rank * n_batches // world, (rank + 1) * n_batches // world
    first = min(lo * batch_size, n)
    return first, min(hi * batch_size, n) - first
