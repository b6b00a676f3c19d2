"""The training loop every model uses (nanoGPT-style: one readable loop).

Model families plug in through the model registry (:mod:`pointcalo.models.registry`): the
loop asks it for the configured family's training task and never names a family. Warm-up then
cosine learning rate, EMA of the sampling network's weights (with warm-up), gradient clipping,
a progress bar with losses and throughput, JSON-lines statistics with CPU time
(``out/log.jsonl``), weight snapshots for learning curves, a periodic
evaluation hook (:mod:`pointcalo.metrics` on held-out clouds), and atomic checkpoints
(``out/checkpoint.pt``) holding config, weights, EMA, optimisers, RNG state, step and data
normalisation. All randomness of a step is derived from ``(seed, step, cloud)``, so a run
killed at any point resumes exactly from its last checkpoint, and data-parallel training
(torchrun; gloo on CPU, nccl on GPU) with the batch split across processes gives the same
result as one process with the whole batch.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pointcalo import streams
from pointcalo.checkpoint import load_checkpoint, save_checkpoint
from pointcalo.clouds import Normalizer, PointCloudData, batch_order
from pointcalo.conditions import ranges as condition_ranges
from pointcalo.config import RunConfig
from pointcalo.errors import ConfigError, PointcaloError
from pointcalo.interrupts import check as check_interrupt
from pointcalo.models.registry import StepContext, Task
from pointcalo.runtime import Dist, resolve_device, run_lock
from pointcalo.showers import PointBatch
from pointcalo.train.datasets import load_training_data
from pointcalo.validity import measured_limits

Log = Callable[[str], None]


def lr_factor(step: int, warmup: int, total: int, min_fraction: float) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``min_fraction``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_fraction + (1 - min_fraction) * 0.5 * (1 + math.cos(math.pi * progress))


def ema_decay(step: int, decay: float, warmup: bool) -> float:
    """EMA decay at ``step`` (0-based): ``decay``, or with ``warmup`` the k-diffusion /
    CaloClouds II schedule ``min(decay, 1 - (1 + step)^(-2/3))`` (0 at step 0: the EMA starts
    at the first trained weights, not at the initialisation)."""
    return min(decay, 1.0 - (1.0 + step) ** (-2.0 / 3.0)) if warmup else decay


@torch.no_grad()
def ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * model`` for every parameter and buffer."""
    for e, p in zip(ema.state_dict().values(), model.state_dict().values(), strict=True):
        if e.dtype.is_floating_point:
            e.mul_(decay).add_(p.detach(), alpha=1 - decay)
        else:
            e.copy_(p)


def train(
    cfg: RunConfig,
    *,
    data: PointCloudData | None = None,
    resume: bool = False,
    log: Log | None = None,
    progress: bool = True,
) -> Path:
    """Train the configured model; returns the checkpoint path (``cfg.train.out``). One
    training at a time per output folder (:func:`run_lock`)."""
    with run_lock(Path(cfg.train.out)):
        return _train(cfg, data=data, resume=resume, log=log, progress=progress)


def _init_state(spec: str, cfg: RunConfig) -> dict[str, Any]:
    """The checkpoint ``train.init_from`` names (a path or a shipped model), checked to be of
    the same family."""
    from pointcalo.pretrained import resolve

    path = resolve(spec)
    if not Path(path).exists():
        raise ConfigError(f"train.init_from: {spec}: no such checkpoint")
    init = load_checkpoint(path)
    family = (init.get("config") or {}).get("model", {}).get("name")
    if family != cfg.model.name:
        raise ConfigError(
            f"train.init_from: {spec} is a '{family}' model, this run trains '{cfg.model.name}'"
        )
    return init


def _load_partial(module: nn.Module, weights: dict[str, Any], spec: str, log: Log) -> None:
    """Load ``weights`` into ``module``: every stored tensor must fit; parameters the
    checkpoint lacks keep their initialisation (listed in the log)."""
    try:
        missing, unexpected = module.load_state_dict(weights, strict=False)
    except RuntimeError as err:
        first = " ".join(str(err).split())[:300]
        raise ConfigError(f"train.init_from: {spec}: weights do not fit: {first}") from None
    if unexpected:
        raise ConfigError(f"train.init_from: {spec}: weights the model lacks: {unexpected[0]}")
    if missing:
        log(f"train.init_from: {len(missing)} new tensors start from their initialisation")


def _train(
    cfg: RunConfig,
    *,
    data: PointCloudData | None,
    resume: bool,
    log: Log | None,
    progress: bool,
) -> Path:
    t = cfg.train
    out = Path(t.out)
    ckpt_path = out / "checkpoint.pt"
    device = resolve_device(t.device, "train.device")
    dist = Dist(device)
    log = log or (print if dist.main else (lambda msg: None))
    state = None
    if resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path)
        check_resumable(state, cfg, ckpt_path)
        log(f"resuming from {ckpt_path} at step {state['step']}")
    elif resume:
        log(f"no checkpoint at {ckpt_path}: starting from step 0")

    data = data if data is not None else load_training_data(cfg.data, seed=t.seed)
    if cfg.data.val_path is not None:
        val, train_data = load_training_data(cfg.data, seed=t.seed, path=cfg.data.val_path), data
    else:
        n_val = round(len(data) * cfg.data.val_fraction)
        perm = streams.numpy_stream(t.seed, streams.VALIDATION).permutation(len(data))
        val, train_data = data.subset(np.sort(perm[:n_val])), data.subset(np.sort(perm[n_val:]))
    init = None
    if state is None and t.init_from is not None:
        init = _init_state(t.init_from, cfg)
        log(f"starting from the weights of {t.init_from} (step {init.get('step', '?')})")
    if state is not None:
        normalizer = Normalizer.from_dict(state["normalizer"])
    elif init is not None:
        normalizer = Normalizer.from_dict(init["normalizer"])
    else:
        normalizer = Normalizer.fit(
            data.spec, train_data.points, train_data.condition, train_data.counts, train_data.extra
        )
    train_data.normalizer = val.normalizer = normalizer
    train_data.dequantise_integer = cfg.data.dequantise_layer
    if len(train_data) < t.batch_size:
        raise PointcaloError(
            f"train.batch_size: {t.batch_size} is more than the {len(train_data)} training clouds"
        )
    if t.batch_size % dist.world:
        raise PointcaloError(
            f"train.batch_size: {t.batch_size} does not split over {dist.world} processes"
        )

    torch.manual_seed(t.seed)
    mean_points = float(train_data.counts.mean())
    task = cfg.family.task(cfg, len(data.spec.features), mean_points, train_data)
    if getattr(task, "normalizer", None) is not None and state is None:
        # a task built on another model (distillation) keeps that model's normalisation
        normalizer = task.normalizer
        train_data.normalizer = val.normalizer = normalizer
    model = task.model.to(device)
    target = task.ema_target()
    if init is not None:
        _load_partial(model, init["model"], t.init_from, log)
    ema = copy.deepcopy(target).requires_grad_(False) if target is not None else nn.Module()
    if init is not None and "ema" in init:
        _load_partial(ema, init["ema"], t.init_from, log)
    named = task.optimizers()
    opts = {name: opt for name, (opt, _) in named.items()}
    base_lr = {name: lr for name, (_, lr) in named.items()}
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        if "optimizers" in state:
            for name, opt in opts.items():
                if name in state["optimizers"]:
                    opt.load_state_dict(state["optimizers"][name])
                else:
                    log(f"{ckpt_path}: no state for optimiser {name!r}: starting it afresh")
            torch.set_rng_state(state["rng"]["torch"])
        else:  # a weights-only checkpoint (snapshot, shipped model): fresh optimiser moments
            log(f"{ckpt_path}: no optimiser state; resuming the weights with fresh optimisers")
        start = int(state["step"])
    cpu_before = float(state.get("cpu_s", 0.0)) if state is not None else 0.0
    cpu_start = time.process_time()
    in_ddp: set[int] = set()  # modules whose gradients DDP averages

    def wrap(module: nn.Module) -> nn.Module:
        wrapped = dist.wrap(module)
        if wrapped is not module:
            in_ddp.add(id(module))
        return wrapped

    task.wrap(wrap)
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if t.amp and device.type == "cuda"
        else contextlib.nullcontext()
    )
    limits = measured_limits(data.spec, train_data.points)  # what generated points must obey
    per_epoch = len(train_data) // t.batch_size
    per_rank = t.batch_size // dist.world
    meta = {
        "mean_points": mean_points,
        "n_features": len(data.spec.features),
        "n_train": len(train_data),
        "n_val": len(val),
        "source": data.meta.get("source"),
        "condition_range": [float(train_data.condition.min()), float(train_data.condition.max())],
        "conditions": condition_ranges(
            {data.spec.condition: train_data.condition, **train_data.extra}
        ),
        **({"point_limits": limits.to_dict()} if limits is not None else {}),
        "optimizers": {
            name: {"lr": base_lr[name], "betas": list(opt.param_groups[0].get("betas", ()))}
            for name, opt in opts.items()
        },
        **getattr(task, "meta", {}),
    }

    def cpu_s() -> float:
        """CPU seconds of this run so far (all its threads, earlier sessions included)."""
        return cpu_before + time.process_time() - cpu_start

    def checkpoint(step: int, snapshot: bool = False) -> None:
        if not dist.main:
            return
        if not all(
            torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point()
        ):
            raise _stopped(out, step, "weights")
        weights = {
            "config": cfg.model_dump(mode="json"),
            "step": step,
            "cpu_s": cpu_s(),
            "model": model.state_dict(),
            "ema": ema.state_dict(),
            "normalizer": normalizer.to_dict(),
            "meta": meta,
        }
        if snapshot:  # sampling weights only: small, for learning curves
            save_checkpoint(out / "snapshots" / f"step_{step:07d}.pt", weights)
            return
        save_checkpoint(
            ckpt_path,
            {
                **weights,
                "optimizers": {k: o.state_dict() for k, o in opts.items()},
                "rng": {"torch": torch.get_rng_state()},
            },
        )

    def clip(module: nn.Module) -> None:
        limit = t.grad_clip if t.grad_clip is not None else math.inf
        norm = torch.nn.utils.clip_grad_norm_(module.parameters(), limit)
        if not torch.isfinite(norm):
            raise _stopped(out, ctx.step + 1, "gradient")

    def all_reduce(module: nn.Module) -> None:
        all_reduce_grads(module, dist.world)

    def update(
        loss: torch.Tensor, module: nn.Module, *names: str, frozen: nn.Module | None = None
    ) -> None:
        """One optimisation step of ``module`` on ``loss`` with the optimisers ``names``: zero
        their gradients, backward, zero ``frozen``'s (a module the loss passes through but
        this step must not move), average over processes (unless DDP did), clip, step."""
        for name in names:
            opts[name].zero_grad(set_to_none=True)
        loss.backward()
        if frozen is not None:
            frozen.zero_grad(set_to_none=True)
        if id(module) not in in_ddp:
            all_reduce(module)
        clip(module)
        for name in names:
            opts[name].step()

    if not opts:  # nothing to optimise (e.g. a shower library): the checkpoint is the model
        if dist.main:
            out.mkdir(parents=True, exist_ok=True)
            checkpoint(t.steps)
        dist.close()
        return ckpt_path

    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        _truncate_log(out / "log.jsonl", start)
    log_file = (out / "log.jsonl").open("a") if dist.main else None
    bar = _progress(t.steps, start, enabled=progress and dist.main)
    t_last, clouds_since = time.perf_counter(), 0
    epoch_order: tuple[int, list[np.ndarray]] = (-1, [])
    try:
        for step in range(start, t.steps):
            check_interrupt()
            for name, opt in opts.items():
                for group in opt.param_groups:
                    group["lr"] = base_lr[name] * lr_factor(
                        step, t.warmup_steps, t.steps, t.min_lr_fraction
                    )
            epoch, i = divmod(step, per_epoch)
            if epoch_order[0] != epoch:  # the order changes once per epoch
                epoch_order = (epoch, batch_order(train_data.counts, t.batch_size, t.seed, epoch))
            index = epoch_order[1][i]
            # the whole batch with one step-seeded stream, then this process's share
            whole = train_data.batch(index, rng=streams.numpy_stream(t.seed, step, streams.BATCH))
            batch = slice_batch(whole, dist.rank * per_rank, (dist.rank + 1) * per_rank)
            first = dist.rank * per_rank
            ctx = StepContext(
                step=step,
                keys=[(t.seed, step, first + j) for j in range(per_rank)],
                index=index[first : first + per_rank],
                device=device,
                amp=amp,
                clip=clip,
                all_reduce=all_reduce,
                update=update,
                world=dist.world,
            )
            stats = {"step": step + 1, **task.step(batch, ctx, opts)}
            bad = [k for k, v in stats.items() if k.startswith("loss") and not math.isfinite(v)]
            if bad:
                raise _stopped(out, step + 1, ", ".join(bad))
            if target is not None:
                ema_update(ema, target, ema_decay(step, t.ema, t.ema_warmup))
            stats["lr"] = next(iter(opts.values())).param_groups[0]["lr"]
            clouds_since += t.batch_size
            if dist.main and ((step + 1) % t.log_every == 0 or step + 1 == t.steps):
                now = time.perf_counter()
                stats["clouds_per_s"] = clouds_since / max(now - t_last, 1e-9)
                stats["cpu_h"] = cpu_s() / 3600
                t_last, clouds_since = now, 0
                log_file.write(json.dumps(stats) + "\n")
                log_file.flush()
                bar.update(step + 1, stats)
            if t.eval_every and (step + 1) % t.eval_every == 0 and dist.main and len(val):
                ev = evaluate_hook(task, ema, normalizer, val, cfg, device, step + 1)
                log_file.write(json.dumps({"step": step + 1, "eval": ev}) + "\n")
                log_file.flush()
            if t.snapshot_every and (step + 1) % t.snapshot_every == 0:
                checkpoint(step + 1, snapshot=True)
            if (step + 1) % t.checkpoint_every == 0 or step + 1 == t.steps:
                checkpoint(step + 1)
    finally:
        bar.close()
        if log_file is not None:
            log_file.close()
        dist.close()
    return ckpt_path


def _stopped(out: Path, step: int, what: str) -> PointcaloError:
    """The error that stops a run at its first non-finite loss, gradient or weight."""
    return PointcaloError(
        f"{out}: step {step}: non-finite {what}; training stopped, the last good checkpoint "
        "is kept (lower train.lr or check the data)"
    )


def check_resumable(state: dict[str, Any], cfg: RunConfig, path: Path) -> None:
    """A run resumes only with the model it saved: a changed ``model`` section is an error
    naming the fields that differ."""
    saved = state.get("config", {}).get("model", {})
    now = cfg.model.model_dump(mode="json")
    differ = sorted(k for k in set(saved) | set(now) if saved.get(k) != now.get(k))
    if differ:
        shown = ", ".join(f"{k} ({saved.get(k)!r} -> {now.get(k)!r})" for k in differ)
        raise PointcaloError(
            f"{path}: cannot resume: the model config differs from the checkpoint's: {shown}"
        )


def _truncate_log(path: Path, step: int) -> None:
    """Drop the records after ``step`` (written by a run killed after its last checkpoint),
    so a resumed run's log has every step once."""
    if not path.exists():
        return
    from pointcalo.io.atomic import atomic_path

    lines = path.read_text().splitlines()
    keep = [ln for ln in lines if ln.strip() and json.loads(ln).get("step", 0) <= step]
    if len(keep) != len(lines):
        with atomic_path(path) as tmp:
            tmp.write_text("".join(ln + "\n" for ln in keep))


def slice_batch(batch: PointBatch, first: int, stop: int) -> PointBatch:
    """Clouds ``first:stop`` of a :class:`PointBatch`."""
    lo, hi = int(batch.ptr[first]), int(batch.ptr[stop])
    return PointBatch(
        batch.points[lo:hi],
        batch.ptr[first : stop + 1] - lo,
        batch.cond[first:stop],
        batch.features,
        batch.cond_names,
    )


def evaluate_hook(
    task: Task,
    ema: nn.Module,
    normalizer: Normalizer,
    val: PointCloudData,
    cfg: RunConfig,
    device: torch.device,
    step: int,
) -> dict[str, Any]:
    """W1 (x100) of held-out against generated clouds: points per cloud and summed first
    feature (visible energy for showers)."""
    from pointcalo.generation import generate
    from pointcalo.metrics.distances import w1

    gen = generate(
        task.model, ema, normalizer, val.condition, cfg, seed=10_000 + step, device=device
    )
    out: dict[str, Any] = {}
    real_n, gen_n = val.counts.astype(float), np.diff(gen.offsets).astype(float)
    k = max(1, min(5, len(val) // 20))
    with contextlib.suppress(PointcaloError):
        out["w1x100_points_per_cloud"] = w1(real_n, gen_n, k=k, seed=step)
        feat = normalizer.spec.features[0]
        real_e = np.add.reduceat(val.points[feat].astype(float), val.offsets[:-1])
        gen_e = np.add.reduceat(gen.points[feat].astype(float), gen.offsets[:-1])
        out[f"w1x100_sum_{feat}"] = w1(real_e, gen_e, k=k, seed=step)
    return out


def all_reduce_grads(module: nn.Module, world: int) -> None:
    """Average gradients over processes by hand (for modules outside DDP)."""
    if world > 1:
        for p in module.parameters():
            if p.grad is not None:
                torch.distributed.all_reduce(p.grad)
                p.grad /= world


class _progress:
    """A rich progress bar showing the losses and throughput (silent when disabled)."""

    def __init__(self, total: int, start: int, enabled: bool) -> None:
        self.enabled = enabled
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.p = Progress(
                TextColumn("training"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[info]}"),
            )
            self.p.start()
            self.task = self.p.add_task("train", total=total, completed=start, info="")

    def update(self, step: int, stats: dict[str, float]) -> None:
        if self.enabled:
            losses = " ".join(f"{k[5:]} {v:.3f}" for k, v in stats.items() if k.startswith("loss_"))
            info = f"{losses} {stats.get('clouds_per_s', 0):.0f} clouds/s"
            self.p.update(self.task, completed=step, info=info)

    def close(self) -> None:
        if self.enabled:
            self.p.stop()
