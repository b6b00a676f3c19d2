"""A run's checkpoint state: what ``out/checkpoint.pt`` holds (config, step, CPU time, weights,
EMA, optimisers, RNG, data normalisation, meta), how it is saved (atomically; snapshots hold
the sampling weights only), restored for ``--resume`` (older checkpoints migrate: without
optimiser state the weights resume with fresh optimisers, an optimiser the checkpoint lacks
starts afresh) and how a new run starts from another run's weights (``train.init_from``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pointcalo.checkpoint import load_checkpoint, save_checkpoint
from pointcalo.clouds import Normalizer
from pointcalo.config import RunConfig
from pointcalo.errors import ConfigError, PointcaloError

Log = Callable[[str], None]


def stopped(out: Path, step: int, what: str) -> PointcaloError:
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


def load_resume(path: Path, cfg: RunConfig, log: Log) -> dict[str, Any] | None:
    """The checkpoint a ``--resume`` continues from, checked against ``cfg`` (None: none yet)."""
    if not path.exists():
        log(f"no checkpoint at {path}: starting from step 0")
        return None
    state = load_checkpoint(path)
    check_resumable(state, cfg, path)
    log(f"resuming from {path} at step {state['step']}")
    return state


def load_init(spec: str, cfg: RunConfig) -> dict[str, Any]:
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


def load_partial(
    module: nn.Module, weights: dict[str, Any], spec: str, log: Log, transfer: bool = False
) -> set[str]:
    """Load ``weights`` into ``module`` and return the names of the tensors loaded. Every
    stored tensor must fit, unless ``transfer`` (a new detector): then those whose shapes differ
    keep their initialisation. Parameters the checkpoint lacks keep theirs too; both are
    listed in the log."""
    own = module.state_dict()
    unexpected = [k for k in weights if k not in own]
    if unexpected:
        raise ConfigError(f"train.init_from: {spec}: weights the model lacks: {unexpected[0]}")
    misfit = [k for k, v in weights.items() if tuple(v.shape) != tuple(own[k].shape)]
    if misfit and not transfer:
        k = misfit[0]
        raise ConfigError(
            f"train.init_from: {spec}: weights do not fit: {k} is {tuple(weights[k].shape)}, "
            f"the model's {tuple(own[k].shape)} (a new detector: train.init_mode: transfer)"
        )
    fit = {k: v for k, v in weights.items() if k not in misfit}
    module.load_state_dict(fit, strict=False)
    if misfit:
        log(f"train.init_from: {len(misfit)} tensors of other shapes start afresh: "
            + ", ".join(misfit[:6]) + (" ..." if len(misfit) > 6 else ""))  # fmt: skip
    missing = [k for k in own if k not in weights]
    if missing:
        log(f"train.init_from: {len(missing)} new tensors start from their initialisation")
    return set(fit)


def bitfit_frozen(module: nn.Module, loaded: set[str]) -> list[str]:
    """The parameters BitFit freezes: those loaded from the checkpoint with more than one
    dimension (weight matrices, convolution kernels); biases, normalisation gains and every
    tensor not loaded keep training."""
    return [n for n, p in module.named_parameters() if n in loaded and p.dim() > 1]


def freeze(module: nn.Module, names: list[str]) -> int:
    """Stop the gradients of ``module``'s parameters ``names``; returns the number of numbers
    still trained (optimisers skip parameters without gradients)."""
    frozen = set(names)
    for n, p in module.named_parameters():
        if n in frozen:
            p.requires_grad_(False)
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class RunState:
    """The state a checkpoint holds, with the live objects it is made of: ``model`` (all the
    task's modules), ``ema`` (the EMA copy of the sampling network), the optimisers by name,
    the normaliser and the run's ``meta``; ``cpu_s()`` counts CPU seconds over sessions."""

    def __init__(
        self,
        cfg: RunConfig,
        out: Path,
        model: nn.Module,
        ema: nn.Module,
        opts: dict[str, torch.optim.Optimizer],
        normalizer: Normalizer,
        meta: dict[str, Any],
        main: bool = True,
    ) -> None:
        self.cfg, self.out, self.main = cfg, out, main
        self.model, self.ema, self.opts = model, ema, opts
        self.normalizer, self.meta = normalizer, meta
        self.cpu_before, self.cpu_start = 0.0, time.process_time()

    @property
    def path(self) -> Path:
        return self.out / "checkpoint.pt"

    def cpu_s(self) -> float:
        """CPU seconds of this run so far (all its threads, earlier sessions included)."""
        return self.cpu_before + time.process_time() - self.cpu_start

    def restore(self, state: dict[str, Any], log: Log) -> int:
        """Load a checkpoint saved by :meth:`save` (or an older one, migrated); returns the
        step to continue from."""
        self.model.load_state_dict(state["model"])
        self.ema.load_state_dict(state["ema"])
        if "optimizers" in state:
            for name, opt in self.opts.items():
                if name in state["optimizers"]:
                    opt.load_state_dict(state["optimizers"][name])
                else:
                    log(f"{self.path}: no state for optimiser {name!r}: starting it afresh")
            torch.set_rng_state(state["rng"]["torch"])
        else:  # a weights-only checkpoint (snapshot, shipped model): fresh optimiser moments
            log(f"{self.path}: no optimiser state; resuming the weights with fresh optimisers")
        self.cpu_before = float(state.get("cpu_s", 0.0))
        return int(state["step"])

    def save(self, step: int, snapshot: bool = False) -> None:
        """Write the checkpoint atomically (rank 0 only); a ``snapshot`` holds the sampling
        weights only (small, for learning curves). Non-finite weights stop the run instead."""
        if not self.main:
            return
        floats = (v for v in self.model.state_dict().values() if v.is_floating_point())
        if not all(torch.isfinite(v).all() for v in floats):
            raise stopped(self.out, step, "weights")
        weights = {
            "config": self.cfg.model_dump(mode="json"),
            "step": step,
            "cpu_s": self.cpu_s(),
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "normalizer": self.normalizer.to_dict(),
            "meta": self.meta,
        }
        if snapshot:
            save_checkpoint(self.out / "snapshots" / f"step_{step:07d}.pt", weights)
            return
        save_checkpoint(
            self.path,
            {
                **weights,
                "optimizers": {k: o.state_dict() for k, o in self.opts.items()},
                "rng": {"torch": torch.get_rng_state()},
            },
        )
