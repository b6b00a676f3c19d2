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
from pointcalo.clouds import Normalizer, PointCloudData, batch_order
from pointcalo.conditions import ranges as condition_ranges
from pointcalo.config import RunConfig
from pointcalo.errors import PointcaloError
from pointcalo.interrupts import check as check_interrupt
from pointcalo.models.registry import StepContext, Task
from pointcalo.runtime import Dist, resolve_device, run_lock
from pointcalo.showers import PointBatch
from pointcalo.train.datasets import Prepared, for_data, prepare
from pointcalo.train.state import (
    RunState,
    bitfit_frozen,
    freeze,
    load_init,
    load_partial,
    load_resume,
    stopped,
)
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
    if data is None:
        cfg = for_data(cfg, log or print)
    with run_lock(Path(cfg.train.out)):
        return _train(cfg, data=data, resume=resume, log=log, progress=progress)


def _train(
    cfg: RunConfig,
    *,
    data: PointCloudData | None,
    resume: bool,
    log: Log | None,
    progress: bool,
) -> Path:
    """Set a run up (device and processes, checkpoint to resume or weights to start from,
    data, the family's task, EMA, optimisers, checkpoint state), then run the loop."""
    t = cfg.train
    out = Path(t.out)
    device = resolve_device(t.device, "train.device")
    dist = Dist(device)
    log = log or (print if dist.main else (lambda msg: None))
    state = load_resume(out / "checkpoint.pt", cfg, log) if resume else None
    init = None
    if state is None and t.init_from is not None:
        init = load_init(t.init_from, cfg)
        log(f"starting from the weights of {t.init_from} (step {init.get('step', '?')})")
    # the normalisation: the resumed run's, the init checkpoint's (same detector), else fitted
    stored = state if state is not None else (init if t.init_mode == "finetune" else None)
    normalizer = Normalizer.from_dict(stored["normalizer"]) if stored is not None else None
    prepared = prepare(cfg, data, normalizer, dist.world)

    torch.manual_seed(t.seed)
    spec = prepared.train.spec
    task = cfg.family.task(cfg, len(spec.features), prepared.mean_points, prepared.train)
    if task.normalizer is not None and state is None:
        prepared.use(task.normalizer)  # a task built on another model (distillation)
    model = task.model.to(device)
    target = task.ema_target()
    ema = copy.deepcopy(target).requires_grad_(False) if target is not None else nn.Module()
    frozen: list[str] = list((state or {}).get("meta", {}).get("frozen", []))
    if init is not None:
        transfer = t.init_mode == "transfer"
        loaded = load_partial(model, init["model"], t.init_from, log, transfer)
        if "ema" in init:
            load_partial(ema, init["ema"], t.init_from, log, transfer)
        if t.freeze == "bitfit":
            frozen = bitfit_frozen(model, loaded)
    if frozen:
        total = sum(p.numel() for p in model.parameters())
        trained = freeze(model, frozen)
        log(f"train.freeze: {len(frozen)} tensors frozen, {trained:,} of {total:,} numbers train")
    named = task.optimizers()
    opts = {name: opt for name, (opt, _) in named.items()}
    base_lr = {name: lr for name, (_, lr) in named.items()}
    meta = _meta(prepared, task, opts, base_lr)
    if frozen:
        meta["frozen"] = frozen
    run = RunState(cfg, out, model, ema, opts, prepared.normalizer, meta, dist.main)
    start = run.restore(state, log) if state is not None else 0
    updates = _Updates(opts, t.grad_clip, dist, out)
    task.wrap(updates.wrap)
    if not opts:  # nothing to optimise (e.g. a shower library): the checkpoint is the model
        if dist.main:
            out.mkdir(parents=True, exist_ok=True)
            run.save(t.steps)
        dist.close()
        return run.path
    if dist.main:
        out.mkdir(parents=True, exist_ok=True)
        _truncate_log(out / "log.jsonl", start)
    try:
        _loop(cfg, task, run, updates, prepared, base_lr, device, dist, start, progress)
    finally:
        dist.close()
    return run.path


def _meta(prepared: Prepared, task: Task, opts: dict, base_lr: dict) -> dict[str, Any]:
    """What a checkpoint records about its run: the data (size, source, the named conditions'
    ranges, the limits generated points must obey) and the optimisers' settings."""
    train, spec = prepared.train, prepared.train.spec
    limits = measured_limits(spec, train.points)
    return {
        "mean_points": prepared.mean_points,
        "n_features": len(spec.features),
        "n_train": len(train),
        "n_val": len(prepared.val),
        "source": train.meta.get("source"),
        "condition_range": [float(train.condition.min()), float(train.condition.max())],
        "conditions": condition_ranges({spec.condition: train.condition, **train.extra}),
        **({"point_limits": limits.to_dict()} if limits is not None else {}),
        "optimizers": {
            name: {"lr": base_lr[name], "betas": list(opt.param_groups[0].get("betas", ()))}
            for name, opt in opts.items()
        },
        **task.meta,
    }


class _Updates:
    """The framework's one optimisation step (:attr:`StepContext.update`) and its parts:
    which modules DDP wraps, gradient averaging over processes for the others, clipping."""

    def __init__(
        self, opts: dict[str, torch.optim.Optimizer], grad_clip: float | None, dist: Dist, out: Path
    ) -> None:
        self.opts, self.dist, self.out = opts, dist, out
        self.limit = grad_clip if grad_clip is not None else math.inf
        self.in_ddp: set[int] = set()  # modules whose gradients DDP averages
        self.step = 0

    def wrap(self, module: nn.Module) -> nn.Module:
        wrapped = self.dist.wrap(module)
        if wrapped is not module:
            self.in_ddp.add(id(module))
        return wrapped

    def clip(self, module: nn.Module) -> None:
        norm = torch.nn.utils.clip_grad_norm_(module.parameters(), self.limit)
        if not torch.isfinite(norm):
            raise stopped(self.out, self.step + 1, "gradient")

    def all_reduce(self, module: nn.Module) -> None:
        all_reduce_grads(module, self.dist.world)

    def update(
        self, loss: torch.Tensor, module: nn.Module, *names: str, frozen: nn.Module | None = None
    ) -> None:
        """One optimisation step of ``module`` on ``loss`` with the optimisers ``names``: zero
        their gradients, backward, zero ``frozen``'s (a module the loss passes through but
        this step must not move), average over processes (unless DDP did), clip, step."""
        for name in names:
            self.opts[name].zero_grad(set_to_none=True)
        loss.backward()
        if frozen is not None:
            frozen.zero_grad(set_to_none=True)
        if id(module) not in self.in_ddp:
            self.all_reduce(module)
        self.clip(module)
        for name in names:
            self.opts[name].step()


def _loop(
    cfg: RunConfig,
    task: Task,
    run: RunState,
    updates: _Updates,
    prepared: Prepared,
    base_lr: dict[str, float],
    device: torch.device,
    dist: Dist,
    start: int,
    progress: bool,
) -> None:
    """The loop: learning rates, this process's share of each batch, the task's step, the
    EMA, logging, evaluation, snapshots and checkpoints; Ctrl-C is honoured between steps."""
    t, out, opts = cfg.train, run.out, run.opts
    train_data, target = prepared.train, task.ema_target()
    per_epoch = len(train_data) // t.batch_size
    per_rank = t.batch_size // dist.world
    amp = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if t.amp and device.type == "cuda"
        else contextlib.nullcontext()
    )
    log_file = (out / "log.jsonl").open("a") if dist.main else None
    bar = _progress(t.steps, start, enabled=progress and dist.main)
    t_last, clouds_since = time.perf_counter(), 0
    epoch_order: tuple[int, list[np.ndarray]] = (-1, [])
    try:
        for step in range(start, t.steps):
            check_interrupt()
            updates.step = step
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
            first = dist.rank * per_rank
            batch = slice_batch(whole, first, first + per_rank)
            ctx = StepContext(
                step=step,
                keys=[(t.seed, step, first + j) for j in range(per_rank)],
                index=index[first : first + per_rank],
                device=device,
                amp=amp,
                clip=updates.clip,
                all_reduce=updates.all_reduce,
                update=updates.update,
                world=dist.world,
            )
            stats = {"step": step + 1, **task.step(batch, ctx, opts)}
            bad = [k for k, v in stats.items() if k.startswith("loss") and not math.isfinite(v)]
            if bad:
                raise stopped(out, step + 1, ", ".join(bad))
            if target is not None:
                ema_update(run.ema, target, ema_decay(step, t.ema, t.ema_warmup))
            stats["lr"] = next(iter(opts.values())).param_groups[0]["lr"]
            clouds_since += t.batch_size
            if dist.main and ((step + 1) % t.log_every == 0 or step + 1 == t.steps):
                now = time.perf_counter()
                stats["clouds_per_s"] = clouds_since / max(now - t_last, 1e-9)
                stats["cpu_h"] = run.cpu_s() / 3600
                t_last, clouds_since = now, 0
                log_file.write(json.dumps(stats) + "\n")
                log_file.flush()
                bar.update(step + 1, stats)
            evaluate_now = t.eval_every and (step + 1) % t.eval_every == 0
            if evaluate_now and dist.main and len(prepared.val):
                ev = evaluate_hook(
                    task, run.ema, run.normalizer, prepared.val, cfg, device, step + 1
                )
                log_file.write(json.dumps({"step": step + 1, "eval": ev}) + "\n")
                log_file.flush()
            if t.snapshot_every and (step + 1) % t.snapshot_every == 0:
                run.save(step + 1, snapshot=True)
            if (step + 1) % t.checkpoint_every == 0 or step + 1 == t.steps:
                run.save(step + 1)
    finally:
        bar.close()
        if log_file is not None:
            log_file.close()


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
