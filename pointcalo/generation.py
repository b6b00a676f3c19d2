"""Generating showers with any trained model (``pointcalo sample`` and the Python API).

Loading a model (:func:`load_model`), the typed request (:class:`GenerationRequest`: named
conditions, seed, device, batch size, sampler), the one batching driver every family plugs
into (:func:`generate_request`: it cuts a request into :class:`GenerationBatch` es, calls the
family's ``generate`` on each, makes the points valid and joins them), and writing a request
to a shower file in bounded memory, whole or as one torchrun shard (:func:`generate_to_file`,
:func:`sample_to_file`).

Families are found through :mod:`pointcalo.models.registry`; this module never names one.
Every cloud ``i`` has its own random stream seeded from ``(seed, i)``: its condition, its
number of points and its noise come from it, so a cloud is the same whatever the batch size or
device order it is generated in.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pointcalo import frames
from pointcalo.checkpoint import load_checkpoint
from pointcalo.clouds import CPU_BATCH, GeneratedClouds, Normalizer
from pointcalo.conditions import CONDITIONS
from pointcalo.conditions import draw as draw_condition
from pointcalo.config import validate_config
from pointcalo.errors import ConfigError, PointcaloError
from pointcalo.interrupts import check as check_interrupt
from pointcalo.models import registry
from pointcalo.models.registry import GenerationBatch
from pointcalo.validity import PointLimits, make_valid, spec_limits


def sample_conditions(
    n: int, low: float, high: float, seed: int, first_index: int = 0
) -> np.ndarray:
    """Primary conditions (incident energies) of clouds ``first_index .. first_index + n - 1``,
    uniform in ``[low, high]``, each from the cloud's own stream
    (:func:`pointcalo.conditions.draw`)."""
    return draw_condition("incident_energy", (low, high), n, seed, first_index)


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

    @property
    def conditions(self) -> dict[str, list[float]]:
        """The model's named conditions with their training ranges (``[min, max]``, or the
        values of a discrete one), the primary one first (:mod:`pointcalo.conditions`)."""
        if "conditions" in self.meta:
            return dict(self.meta["conditions"])
        known = self.meta.get("condition_range")  # older checkpoints: the primary one only
        return {self.normalizer.spec.condition: list(known) if known else []}


def load_model(path: str | os.PathLike[str], device: Any = "cpu") -> LoadedModel:
    """Rebuild any registered model from a checkpoint, or a shipped pretrained model by name
    (:mod:`pointcalo.pretrained`; its checksum must be the one its model card records), with
    its EMA weights for sampling."""
    from pointcalo import pretrained

    shipped = str(path) in pretrained.available() and not Path(path).exists()
    name, path = str(path), pretrained.resolve(path)
    state = load_checkpoint(path)
    expected = pretrained.card(name).get("checksum") if shipped else None
    if expected is not None and state.get("checksum") != expected:
        raise PointcaloError(
            f"{path}: not the checkpoint its model card describes (checksum differs): "
            "reinstall pointcalo"
        )
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


def load_stage(path: str, family: str, field: str = "model.stage1") -> LoadedModel:
    """A checkpoint another model is built on (a two-stage model's stage 1) by
    :func:`load_model`, its sampling module holding the EMA weights in place; a ConfigError
    naming ``field`` when it is not a ``family`` model."""
    loaded = load_model(path)
    if loaded.cfg.model.name != family:
        raise ConfigError(f"{field}: {path} is a '{loaded.cfg.model.name}' model, not a {family}")
    return loaded


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate: ``conditions`` (the model's named conditions in physical units, each
    ``[N]``, the primary one first: ``incident_energy`` in MeV for showers), the random
    ``seed``, the request-wide index of the first cloud (a shard of a larger request starts
    further in), the ``device``, clouds per batch, and the diffusion ``sampler`` / ``steps``
    (None: the model's own)."""

    conditions: dict[str, np.ndarray]
    seed: int = 0
    first_index: int = 0
    device: Any = "cpu"
    batch_size: int = CPU_BATCH
    sampler: str | None = None
    steps: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.conditions:
            raise PointcaloError("a generation request needs at least one condition")
        sizes = {name: len(v) for name, v in self.conditions.items()}
        if len(set(sizes.values())) != 1:
            raise PointcaloError(f"conditions: different numbers of clouds {sizes}")
        if self.batch_size < 1:
            raise PointcaloError(f"batch_size: must be at least 1, got {self.batch_size}")

    def __len__(self) -> int:
        return len(next(iter(self.conditions.values())))

    def batches(self) -> Iterator[GenerationBatch]:
        """The request cut into batches of ``batch_size`` clouds, in order."""
        device = torch.device(self.device)
        for start in range(0, len(self), self.batch_size):
            stop = min(start + self.batch_size, len(self))
            yield GenerationBatch(
                {k: np.asarray(v[start:stop], np.float64) for k, v in self.conditions.items()},
                self.seed,
                self.first_index + start,
                device,
                self.sampler,
                self.steps,
            )


def generate_request(
    model: nn.Module,
    net: nn.Module,
    normalizer: Normalizer,
    cfg: Any,
    request: GenerationRequest,
    *,
    limits: PointLimits | None = None,
) -> GeneratedClouds:
    """The one batching driver: the clouds of ``request`` from any model family (``net`` is
    the sampling network, e.g. the EMA copy), batch by batch through the family's
    ``generate`` (Ctrl-C is honoured between batches). The points of point families are made
    valid (:func:`pointcalo.validity.make_valid`) with ``limits`` (default: the lattice and
    layers of ``normalizer``; :attr:`LoadedModel.limits` holds a checkpoint's own), in the
    detector frame (a model of the impact frame, ``data.frame``, has its points moved back by
    the requested impact points first: :mod:`pointcalo.frames`)."""
    family = registry.get(cfg.model.name)
    missing = [k for k in normalizer.extra_names if k not in request.conditions]
    if missing:
        flag = CONDITIONS[missing[0]].flag
        raise PointcaloError(f"{flag}: the model is conditioned on {missing[0]}: give it")
    parts = []
    for batch in request.batches():
        parts.append(family.generate(model, net, normalizer, cfg, batch, **request.options))
        check_interrupt()
    clouds = GeneratedClouds.join(parts)
    limits = limits if limits is not None else spec_limits(normalizer.spec)
    if not family.point_output:
        return clouds
    frame = cfg.data.frame  # a model of the impact frame: its points move back
    points = frames.to_detector_frame(clouds.points, clouds.offsets, request.conditions, frame)
    clouds = GeneratedClouds(clouds.offsets, points, clouds.condition, clouds.voxels)
    if limits is None:
        return clouds
    limits = frames.widen(limits, request.conditions, frame)
    offsets, points = make_valid(clouds.offsets, clouds.points, limits)
    return GeneratedClouds(offsets, points, clouds.condition, clouds.voxels)


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
    conditions: dict[str, np.ndarray] | None = None,
    **options: Any,
) -> GeneratedClouds:
    """:func:`generate_request` for the primary conditions ``condition [N]`` (incident
    energies in MeV for showers) and any further named ``conditions`` (each ``[N]``);
    ``options`` go to the family's generation (e.g. CaloClouds' ``postprocess``)."""
    named = {normalizer.spec.condition: np.asarray(condition, np.float64), **(conditions or {})}
    request = GenerationRequest(
        named, seed, first_index, device, batch_size, sampler, steps, options
    )
    return generate_request(model, net, normalizer, cfg, request, limits=limits)


def generate_to_file(
    loaded: LoadedModel,
    writer: Any,
    n: int,
    low: float = 0.0,
    high: float = 0.0,
    *,
    seed: int = 0,
    device: Any = "cpu",
    batch_size: int = CPU_BATCH,
    chunk: int = 2048,
    sampler: str | None = None,
    steps: int | None = None,
    net: nn.Module | None = None,
    progress: Callable[[int], None] | None = None,
    first: int = 0,
    conditions: np.ndarray | dict[str, np.ndarray] | None = None,
    draws: dict[str, Any] | None = None,
    **options: Any,
) -> int:
    """Generate ``n`` showers chunk by chunk into a shower ``writer``
    (:func:`pointcalo.io.open_writer`), so memory is bounded by the chunk.

    Incident energies uniform in ``[low, high]`` MeV (or as ``draws`` says), named conditions
    drawn as ``draws`` says (name -> ``(low, high)`` or a list of discrete values;
    :func:`pointcalo.conditions.draw`), unless ``conditions`` gives them for all showers of
    the request (the incident energies as an array, or a dict of named conditions, e.g. read
    from a reference file). The named conditions are written as per-shower fields.
    ``net`` replaces the sampling network (e.g. wrapped for autocast or compiled);
    ``progress(done)`` is called after every chunk. ``first``: index of the first shower (a
    shard of a larger request makes showers ``first .. first + n - 1`` of it, the same showers
    a single process makes). Returns the number of showers written. ``options`` go to the
    family's generation.
    """
    from pointcalo.showers import make_showers

    primary = loaded.normalizer.spec.condition
    if primary != "incident_energy":
        raise PointcaloError("writing generated jets is done with pointcalo.io.jetnet")
    given = {primary: conditions} if isinstance(conditions, np.ndarray) else (conditions or {})
    draws = {primary: (low, high), **(draws or {})}
    written = 0
    for start in range(first, first + n, chunk):
        stop = min(start + chunk, first + n)
        table = {k: np.asarray(v[start:stop], np.float64) for k, v in given.items()}
        for name, spec in draws.items():
            if name not in table:
                table[name] = draw_condition(name, spec, stop - start, seed, start)
        table = {primary: table.pop(primary), **table}  # a request's first is its primary
        request = GenerationRequest(table, seed, start, device, batch_size, sampler, steps, options)
        clouds = generate_request(
            loaded.model,
            net if net is not None else loaded.net,
            loaded.normalizer,
            loaded.cfg,
            request,
            limits=loaded.limits,
        )
        extra = {k: v.astype(np.float32) for k, v in table.items() if k != primary}
        showers = make_showers(
            table[primary].astype(np.float32),
            clouds.points,
            offsets=clouds.offsets,
            fields=extra or None,
            allow_empty=True,
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


def shard_path(path: str, rank: int, world: int) -> str:
    """``gen.h5`` -> ``gen.rank001-of-004.h5`` (rank 1 of 4)."""
    p = Path(path)
    return str(p.with_name(f"{p.stem}.rank{rank:03d}-of-{world:03d}{p.suffix}"))


def shard_glob(path: str) -> str:
    """The pattern that matches every shard of ``path``."""
    p = Path(path)
    return str(p.with_name(f"{p.stem}.rank*-of-*{p.suffix}"))


def file_digest(checkpoint: str | os.PathLike[str]) -> str:
    """SHA-256 (first 16 hex digits) of a checkpoint file, shipped models by name."""
    import hashlib

    from pointcalo.pretrained import resolve

    return hashlib.sha256(resolve(checkpoint).read_bytes()).hexdigest()[:16]


class Autocast(nn.Module):
    """A sampling network run under bfloat16 autocast on its device, returning float32."""

    def __init__(self, net: nn.Module, device: torch.device) -> None:
        super().__init__()
        self.net, self.device = net, device

    def forward(self, *args: Any) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            return self.net(*args).float()


def _to_bf16(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value.to(torch.bfloat16)
    if isinstance(value, tuple | list):
        return type(value)(_to_bf16(v) for v in value)
    return value


class BFloat16(nn.Module):
    """A copy of a network with its weights in bfloat16: floating inputs (also inside tuples,
    e.g. ``(cond, ptr)``) are cast to bfloat16, the output back to float32. On a CPU with
    AVX512-BF16 the matrix products run about twice as fast as in float32, where autocast,
    casting weights at every call, gains nothing (benchmarks/sampling_bench.py --bf16)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = copy.deepcopy(net).to(torch.bfloat16)

    def forward(self, *args: Any) -> torch.Tensor:
        return self.net(*_to_bf16(args)).float()


def in_bfloat16(net: nn.Module, device: torch.device) -> nn.Module:
    """The sampling network in bfloat16 (``pointcalo sample --bf16``): on a GPU under
    autocast; on a CPU with its weights in bfloat16 (:class:`BFloat16`), and for an EDM-style
    denoiser only its raw network, so the noise-level scalings stay float32."""
    if device.type != "cpu":
        return Autocast(net, device)
    if isinstance(getattr(net, "net", None), nn.Module) and hasattr(net, "scalings"):
        wrapped = copy.copy(net)  # a shallow copy: the loaded model's denoiser is untouched
        wrapped._modules = dict(net._modules)
        wrapped.net = BFloat16(net.net)
        return wrapped
    return BFloat16(net)


@dataclass(frozen=True)
class SampleResult:
    """What :func:`sample_to_file` wrote: the file, its number of showers, the seconds it
    took, and for a torchrun shard its rank and world size."""

    output: str
    count: int
    seconds: float
    rank: int = 0
    world: int = 1


def sample_to_file(
    checkpoint: str | os.PathLike[str],
    output: str,
    *,
    n: int | None = None,
    flags: dict[str, str] | None = None,
    conditions_from: str | None = None,
    energies_from: str | None = None,
    seed: int = 0,
    device: str = "cpu",
    batch_size: int | None = None,
    sampler: str | None = None,
    steps: int | None = None,
    allow_extrapolation: bool = False,
    bf16: bool = False,
    compile: bool = False,
    grid: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SampleResult:
    """``pointcalo sample``: ``n`` showers (default 1,000) of a model into ``output``.

    ``flags``: condition name -> the flag's text (``{"incident_energy": "10:90"}`` in GeV,
    ``{"theta": "0:0.7"}`` in rad, ``{"pdg": "11,22"}``;
    :func:`pointcalo.conditions.parse_flag`), drawn per shower; a condition the model takes
    and no flag names (the incident energy included) is drawn over its training range.
    ``conditions_from``: a shower file whose showers' conditions (all the model's) to sample
    at, in its order (it sets the count); ``energies_from``: only their incident energies.
    Requests outside the model's training ranges are refused unless
    ``allow_extrapolation``. Under torchrun each rank writes its shard of whole batches
    (:func:`shard`, :func:`shard_path`) with its provenance for ``pointcalo merge``.
    ``bf16``: run the network in bfloat16 (:func:`in_bfloat16`); ``compile``: under
    ``torch.compile`` (GPU). ``grid``: the grid a geometry-aware model generates on (a
    preset, YAML or XML file; refused for other models). ``progress(done, total)`` is
    called after every chunk.
    """
    import json
    import time

    from pointcalo import io
    from pointcalo.conditions import check_within, parse_flag
    from pointcalo.conditions import ranges as value_ranges
    from pointcalo.runtime import resolve_device, torchrun_env

    dev = resolve_device(device)
    batch_size = batch_size or (1024 if dev.type == "cuda" else CPU_BATCH)
    loaded = load_model(checkpoint, dev)
    options = {}
    if grid is not None:
        if not loaded.family.any_grid:
            raise PointcaloError(
                f"--grid: {checkpoint} ({loaded.cfg.model.name}) does not generate on a grid "
                "given at sampling; project its showers with pointcalo voxelize"
            )
        from pointcalo.metrics.files import grid_named

        grid_named("--grid", grid)  # an unknown or malformed grid: one line, before any work
        options["grid"] = grid
    known = loaded.conditions
    primary = loaded.normalizer.spec.condition
    flags = dict(flags or {})
    table = None
    source = conditions_from or energies_from
    if conditions_from is not None and energies_from is not None:
        raise PointcaloError("--conditions-from: give it or --energies-from, not both")
    if source is not None:
        if n is not None:
            raise PointcaloError("--n: give either --n or --conditions-from (which sets the count)")
        names = list(known) if conditions_from is not None else [primary]
        option = "--conditions-from" if conditions_from is not None else "--energies-from"
        table = io.read_fields(source, names, option)
        n = len(table[primary])
        for name in table:
            flags.pop(name, None)
    n = 1000 if n is None else n
    draws = {name: parse_flag(name, text) for name, text in flags.items()}
    for name in known:  # conditions neither read nor asked for: over the training range
        if name not in draws and (table is None or name not in table):
            if known[name]:
                draws[name] = known[name] if CONDITIONS[name].discrete else tuple(known[name])
            elif name == primary:  # an old checkpoint without its range
                draws[name] = parse_flag(name, "10:90")
    asked = dict(draws)
    if table is not None:
        for name, v in value_ranges(table).items():
            asked[name] = v if CONDITIONS[name].discrete else (v[0], v[1])
    check_within(asked, known, allow_extrapolation)
    rank, world = torchrun_env()
    first, count, out = 0, n, output
    if world > 1:  # torchrun: each rank writes its shard; pointcalo merge joins them
        first, count = shard(n, batch_size, rank, world)
        out = shard_path(output, rank, world)
    attrs = {}
    if world > 1 and io.format_of(out) == "hdf5":  # so merge can check the set
        attrs = {"attrs": {
            "shard_rank": rank, "shard_world": world, "shard_first": first,
            "shard_count": count, "shard_total": n, "shard_seed": seed,
            "shard_model": str(checkpoint), "shard_checksum": file_digest(checkpoint),
            "shard_conditions": json.dumps(
                {k: list(v) for k, v in sorted(asked.items())}
                | ({"from": str(source)} if source else {})
            ),
        }}  # fmt: skip
    net = loaded.net
    if bf16:
        net = in_bfloat16(net, dev)
    if compile:
        net = torch.compile(net)
    t0 = time.perf_counter()
    with io.open_writer(out, **attrs) as writer, torch.no_grad():
        generate_to_file(
            loaded, writer, count,
            first=first, conditions=table, draws=draws, seed=seed, device=dev,
            batch_size=batch_size, chunk=max(batch_size, 1) * 8, sampler=sampler, steps=steps,
            net=net, progress=(lambda done: progress(done, count)) if progress else None,
            **options,
        )  # fmt: skip
    return SampleResult(out, count, time.perf_counter() - t0, rank, world)
