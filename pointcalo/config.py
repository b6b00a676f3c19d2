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

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pointcalo.errors import ConfigError


class _Strict(BaseModel):
    """Unknown fields, infinities, NaNs and booleans given for numbers are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_as_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name)
        if isinstance(value, bool) and field is not None and field.annotation is not bool:
            raise ValueError("expected a number, got a boolean")
        return value


class DataConfig(_Strict):
    """Where the training showers come from.

    ``path``: a shower file (HDF5/ROOT; JetNet-layout HDF5 with ``format: jetnet``). Without a
    path, ``simulate`` showers of the built-in simulator are used. ``max_showers`` caps the
    number read; ``val_fraction`` is held out for the evaluation hook, unless ``val_path`` names
    a validation file (e.g. the validation part of ``pointcalo split``), which is then used
    instead and the whole of ``path`` is trained on. ``dequantise_layer``: spread each
    point's layer index uniformly over its layer in training (else the layer's middle).
    ``conditions``: further named per-shower conditions the model is conditioned on besides the
    incident energy (``theta``, ``phi``, ``pdg``, ``impact_x``, ``impact_y``;
    :mod:`pointcalo.conditions`), read from the shower file's per-shower fields.
    ``frame``: ``detector`` (as recorded) or ``impact`` (points relative to the impact point,
    which must then be among the conditions; :mod:`pointcalo.frames`).
    """

    path: str | None = None
    val_path: str | None = None
    format: Literal["showers", "jetnet"] = "showers"
    simulate: int = Field(2000, ge=1)
    energy_GeV: tuple[float, float] = (10.0, 90.0)
    max_showers: int | None = Field(None, ge=1)
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    dequantise_layer: bool = True
    conditions: tuple[str, ...] = ()
    frame: Literal["detector", "impact"] = "detector"

    @field_validator("conditions")
    @classmethod
    def _known_conditions(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        from pointcalo.conditions import check_names

        check_names(names)
        return names


class ModelConfig(_Strict):
    """Base of every family's ``model:`` section; each family defines its own subclass with a
    ``name`` literal (:mod:`pointcalo.models.registry` finds it by that name)."""

    name: str


class TrainConfig(_Strict):
    """Optimisation and bookkeeping of a run.

    ``ema``: the EMA decay of the sampling weights; with ``ema_warmup`` the decay at step ``t``
    is ``min(ema, 1 - (1 + t)^(-2/3))`` (k-diffusion, CaloClouds II), so early weights are
    forgotten instead of lingering as ``ema^t`` of the initialisation. ``snapshot_every``: keep
    a small copy of the sampling weights every so many steps (``snapshots/step_N.pt``), for
    learning curves. ``betas``: Adam's betas for every optimiser of the run (None: the
    family's default, :mod:`pointcalo.models.optim`). ``init_from``: start a new run from the
    model and EMA weights and the normalisation of a checkpoint (or a shipped model's name);
    parameters it does not hold keep their initialisation, so added blocks must start as the
    identity (fine-tuning). ``init_mode``: ``finetune`` (same detector: the checkpoint's data
    normalisation, every stored tensor must fit) or ``transfer`` (a new detector: the new
    data's own normalisation; stored tensors whose shapes differ, e.g. a per-layer head of 30
    layers for a 3-layer detector, keep their initialisation and are listed in the log).
    ``freeze``: with ``init_from``, ``bitfit`` trains only the 1-d parameters (biases,
    normalisation gains) of the weights it loaded, plus every tensor it did not load (Ben Zaken,
    Ravfogel, Goldberg, "BitFit", arXiv 2106.10199; for showers CaloTransfer, arXiv
    2512.00187); ``none`` trains everything. The frozen tensors are named in the checkpoint's
    meta, so ``--resume`` keeps them frozen.
    """

    steps: int = Field(2000, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-4, gt=0)
    lr_critic: float = Field(1e-4, gt=0)
    betas: tuple[float, float] | None = None
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
    init_from: str | None = None
    init_mode: Literal["finetune", "transfer"] = "finetune"
    freeze: Literal["none", "bitfit"] = "none"

    @model_validator(mode="after")
    def _freeze_needs_init(self) -> TrainConfig:
        if self.freeze != "none" and self.init_from is None:
            raise ValueError(f"freeze: {self.freeze!r} needs train.init_from (weights to freeze)")
        return self


class RunConfig(_Strict):
    """A whole run: data, model and training."""

    data: DataConfig = DataConfig()
    model: SerializeAsAny[ModelConfig]
    train: TrainConfig = TrainConfig()

    def with_overrides(self, **sections: dict[str, Any]) -> RunConfig:
        """A copy with some fields replaced: ``with_overrides(train={"steps": 10})``."""
        data = self.model_dump()
        for section, values in sections.items():
            data[section].update(values)
        return validate_config(data, source="<overrides>")

    @property
    def family(self):
        """This run's model family (:class:`pointcalo.models.registry.Family`)."""
        from pointcalo.models import registry

        return registry.get(self.model.name)


def _error(source: str, err: ValidationError, prefix: str = "") -> ConfigError:
    """The first problem of a pydantic error as a one-line ConfigError naming the field."""
    first = err.errors()[0]
    parts = [str(p) for p in first["loc"] if not (isinstance(p, str) and p.startswith("function"))]
    field = ".".join([prefix, *parts] if prefix else parts) or "(top level)"
    msg = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
    value = first.get("input")
    shown = "" if isinstance(value, dict) or first["type"] == "missing" else f" (got {value!r})"
    return ConfigError(f"{source}: {field}: {msg}{shown}")


def validate_config(data: Any, source: str = "<config>") -> RunConfig:
    """A :class:`RunConfig` from a dict; the first problem becomes a one-line ConfigError.

    The ``model`` section is validated by its family's config class, found in the model
    registry by ``model.name`` (default ``epic_gan``); an unknown name lists the known ones.
    """
    from pointcalo.models import registry

    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a run config must be a mapping with data/model/train")
    model = data.get("model", {})
    if isinstance(model, BaseModel):
        model = model.model_dump()
    if not isinstance(model, dict):
        raise ConfigError(f"{source}: model: a mapping with the model's name and sizes expected")
    model = {"name": "epic_gan", **model}
    try:
        family = registry.get(str(model["name"]))
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    try:
        model_cfg = family.config.model_validate(model)
    except ValidationError as err:
        raise _error(source, err, "model") from None
    try:
        cfg = RunConfig.model_validate({**data, "model": model_cfg})
    except ValidationError as err:
        raise _error(source, err) from None
    if cfg.data.conditions and not family.extra_conditions:
        raise ConfigError(
            f"{source}: data.conditions: model '{family.name}' is conditioned on the incident "
            f"energy only (asked for {', '.join(cfg.data.conditions)})"
        )
    from pointcalo import frames

    try:
        frames.check(cfg.data.frame, cfg.data.conditions)
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    return cfg


def load_config(path: str | os.PathLike[str]) -> RunConfig:
    """Read and validate a YAML run config: a file, or a preset shipped with pointcalo by
    name (``epic_gan``) or by its path in a checkout (``configs/epic_gan.yaml``), so the
    presets work from any install."""
    import yaml

    path = Path(path)
    if not path.exists():
        preset = PRESETS_DIR / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
        if path.parent.name not in ("", "configs") or not preset.is_file():
            names = ", ".join(presets())
            raise ConfigError(f"{path}: no such config file (presets: {names})")
        path = preset
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a config file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text (UTF-8) YAML file") from None
    if "\x00" in text:
        raise ConfigError(f"{path}: not a text YAML file (it holds NUL bytes)")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"{path}: not valid YAML{line}") from None
    return validate_config(data, source=str(path))


#: The preset configs shipped inside the package (``configs/`` of a checkout links here).
PRESETS_DIR = Path(__file__).resolve().parent / "configs"


def presets() -> list[str]:
    """Names of the preset configs shipped with pointcalo."""
    return sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))


def preset_path(name: str) -> Path:
    """Path of the preset config ``<name>.yaml`` shipped with pointcalo."""
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"no preset config {name!r} (looked for {path})")
    return path
