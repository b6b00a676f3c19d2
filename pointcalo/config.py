"""Typed run configuration, loaded from YAML and stored inside every checkpoint.

A run config has three sections: ``data`` (where showers come from and how they are batched),
``model`` (the model family and its sizes) and ``train`` (optimiser, schedule, EMA, logging,
checkpoints, device). Unknown keys and bad values are errors naming the field, e.g.
``configs/epic_gan.yaml: train.lr: Input should be greater than 0``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pointcalo.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Where the training showers come from.

    ``path``: a shower file (HDF5/ROOT; JetNet-layout HDF5 with ``format: jetnet``). Without a
    path, ``simulate`` showers of the built-in simulator are used. ``max_showers`` caps the
    number read; ``val_fraction`` is held out for the evaluation hook, unless ``val_path`` names
    a validation file (e.g. the validation part of ``pointcalo split``), which is then used
    instead and the whole of ``path`` is trained on.
    """

    path: str | None = None
    val_path: str | None = None
    format: Literal["showers", "jetnet"] = "showers"
    simulate: int = Field(2000, ge=1)
    energy_GeV: tuple[float, float] = (10.0, 90.0)
    max_showers: int | None = Field(None, ge=1)
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    dequantise_layer: bool = True


class EPiCGANConfig(_Strict):
    """EPiC-GAN sizes (Buhmann, Kasieczka, Thaler, arXiv 2301.08128)."""

    name: Literal["epic_gan"] = "epic_gan"
    point_dim: int = Field(32, ge=1)
    global_dim: int = Field(16, ge=1)
    hidden: int = Field(64, ge=1)
    layers: int = Field(4, ge=1)
    z_dim: int = Field(8, ge=1)
    g_dim: int = Field(16, ge=1)
    critic_layers: int = Field(3, ge=1)


class CaloCloudsConfig(_Strict):
    """CaloClouds-style point diffusion (arXiv 2305.04847, 2309.05704) in the EDM formulation
    (arXiv 2206.00364): EPiC-style denoiser sizes, EDM noise distribution and schedule, the
    default sampler, and the shower-level flow."""

    name: Literal["caloclouds"] = "caloclouds"
    point_dim: int = Field(64, ge=1)
    global_dim: int = Field(16, ge=1)
    hidden: int = Field(128, ge=1)
    layers: int = Field(4, ge=1)
    p_mean: float = -1.2
    p_std: float = Field(1.2, gt=0)
    sigma_min: float = Field(0.002, gt=0)
    sigma_max: float = Field(80.0, gt=0)
    rho: float = Field(7.0, gt=0)
    sampler: Literal["euler", "heun", "heun_churn", "ode"] = "heun"
    steps: int = Field(13, ge=1)
    noise_embedding: int = Field(16, ge=0)
    flow_transforms: int = Field(3, ge=1)
    flow_hidden: int = Field(128, ge=1)
    flow_widths: bool = True
    flow_lr: float = Field(1e-3, gt=0)


class ConsistencyConfig(_Strict):
    """Consistency distillation of a trained CaloClouds teacher (arXiv 2303.01469, as in
    CaloClouds II): ``teacher`` is the teacher's checkpoint; the student starts from its EMA
    weights. ``n_discretisation`` Karras levels, target EMA ``target_ema``; sampling with
    ``sampler`` in ``steps`` steps (1: one-step)."""

    name: Literal["consistency"] = "consistency"
    teacher: str
    n_discretisation: int = Field(18, ge=2)
    target_ema: float = Field(0.95, ge=0.0, lt=1.0)
    sampler: Literal["consistency", "multistep"] = "consistency"
    steps: int = Field(1, ge=1)


class TrainConfig(_Strict):
    """Optimisation and bookkeeping of a run.

    ``ema``: the EMA decay of the sampling weights; with ``ema_warmup`` the decay at step ``t``
    is ``min(ema, 1 - (1 + t)^(-2/3))`` (k-diffusion, CaloClouds II), so early weights are
    forgotten instead of lingering as ``ema^t`` of the initialisation. ``snapshot_every``: keep
    a small copy of the sampling weights every so many steps (``snapshots/step_N.pt``), for
    learning curves.
    """

    steps: int = Field(2000, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-4, gt=0)
    lr_critic: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.9)
    warmup_steps: int = Field(50, ge=0)
    min_lr_fraction: float = Field(0.1, ge=0.0, le=1.0)
    ema: float = Field(0.999, ge=0.0, lt=1.0)
    ema_warmup: bool = True
    grad_clip: float | None = Field(5.0, gt=0)
    count_model_steps: int = Field(300, ge=0)
    log_every: int = Field(10, ge=1)
    eval_every: int = Field(0, ge=0)
    checkpoint_every: int = Field(100, ge=1)
    snapshot_every: int = Field(0, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True
    seed: int = 0
    out: str = "runs/train"


class RunConfig(_Strict):
    """A whole run: data, model and training."""

    data: DataConfig = DataConfig()
    model: EPiCGANConfig | CaloCloudsConfig | ConsistencyConfig = Field(
        EPiCGANConfig(), discriminator="name"
    )
    train: TrainConfig = TrainConfig()

    def with_overrides(self, **sections: dict[str, Any]) -> RunConfig:
        """A copy with some fields replaced: ``with_overrides(train={"steps": 10})``."""
        data = self.model_dump()
        for section, values in sections.items():
            data[section].update(values)
        return validate_config(data, source="<overrides>")


_MODEL_NAMES = {"epic_gan", "caloclouds", "consistency"}


def _field_path(loc: tuple[Any, ...]) -> str:
    """``model.epic_gan.hidden`` -> ``model.hidden`` (drop pydantic's union tags)."""
    parts = [str(p) for p in loc if not (isinstance(p, str) and p.startswith("function"))]
    if len(parts) > 1 and parts[0] == "model" and parts[1] in _MODEL_NAMES:
        parts.pop(1)
    return ".".join(parts)


def validate_config(data: Any, source: str = "<config>") -> RunConfig:
    """A :class:`RunConfig` from a dict; the first problem becomes a one-line ConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a run config must be a mapping with data/model/train")
    model = data.get("model")
    if isinstance(model, dict) and "name" not in model:
        data = {**data, "model": {**model, "name": "epic_gan"}}
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        field = _field_path(first["loc"]) or "(top level)"
        msg = first["msg"]
        if first["type"] == "extra_forbidden":
            msg = "unknown field"
        value = first.get("input")
        shown = "" if isinstance(value, dict) or first["type"] == "missing" else f" (got {value!r})"
        raise ConfigError(f"{source}: {field}: {msg}{shown}") from None


def load_config(path: str | os.PathLike[str]) -> RunConfig:
    """Read and validate a YAML run config."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"{path}: not valid YAML{line}") from None
    return validate_config(data, source=str(path))


def preset_path(name: str) -> Path:
    """Path of a preset config ``configs/<name>.yaml`` of the pointcalo checkout."""
    path = Path(__file__).resolve().parents[1] / "configs" / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"no preset config {name!r} (looked for {path})")
    return path
