"""Checkpoints: config, weights (state_dicts, never pickled code), EMA, optimisers, RNG state,
step and normalisation in one file, written atomically so a kill never leaves half a file, with
a SHA-256 checksum of everything stored, verified when read, so a damaged file is refused by
name instead of sampling from silently corrupted weights."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from pointcalo.errors import PointcaloError
from pointcalo.io.atomic import atomic_path

FORMAT = "pointcalo.checkpoint"
#: 2: noise-level embedding, per-layer widths and hit counts in CaloClouds, EMA warm-up,
#: lattice dequantisation; format-1 checkpoints are read with those switched off
#: (:func:`migrate`).
VERSION = 2


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` (plus format and version) to ``path`` via a temporary file."""
    full = {"format": FORMAT, "version": VERSION, **state}
    full["checksum"] = checksum(full)
    with atomic_path(path) as tmp:
        torch.save(full, tmp)
    return Path(path)


def checksum(state: dict[str, Any]) -> str:
    """SHA-256 over every tensor's bytes and every other value of ``state`` (in key order),
    the ``checksum`` entry itself excepted."""
    digest = hashlib.sha256()

    def walk(obj: Any, where: str) -> None:
        digest.update(where.encode())
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous().reshape(-1)
            digest.update(str(t.dtype).encode())
            digest.update(t.view(torch.uint8).numpy().tobytes())
        elif isinstance(obj, dict):
            for key in sorted(obj, key=str):
                if not (where == "" and key == "checksum"):
                    walk(obj[key], f"{where}/{key}")
        elif isinstance(obj, (list, tuple)):
            for i, item in enumerate(obj):
                walk(item, f"{where}/{i}")
        else:
            digest.update(repr(obj).encode())

    walk(state, "")
    return digest.hexdigest()


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint (tensors and plain Python only; no code is unpickled)."""
    path = Path(path)
    if not path.exists():
        raise PointcaloError(f"{path}: no such checkpoint")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's own advice (weights_only=False) is unsafe
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt files
        if "Weights only load failed" in str(err):
            raise PointcaloError(
                f"{path}: holds pickled Python objects, not only tensors and plain data; "
                "refused (loading it could run code)"
            ) from None
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PointcaloError(f"{path}: not a readable checkpoint: {msg}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise PointcaloError(f"{path}: not a pointcalo checkpoint")
    if "checksum" not in state and int(state.get("version", 1)) >= 2:
        raise PointcaloError(
            f"{path}: checkpoint without its checksum (every version-2 checkpoint has one): "
            "refused, its contents cannot be verified"
        )
    if "checksum" in state and state["checksum"] != checksum(state):
        raise PointcaloError(
            f"{path}: corrupted checkpoint: its contents do not match the checksum written "
            "with them"
        )
    if int(state.get("version", 0)) > VERSION:
        raise PointcaloError(
            f"{path}: checkpoint version {state['version']} is newer than "
            f"this pointcalo reads ({VERSION})"
        )
    for key in ("config", "meta", "normalizer"):  # mappings, where present
        if key in state and not isinstance(state[key], dict):
            raise PointcaloError(
                f"{path}: {key}: must be a mapping, got {type(state[key]).__name__}"
            )
    return migrate(state)


def migrate(state: dict[str, Any]) -> dict[str, Any]:
    """Fill the fields added since a checkpoint's version with the values that rebuild the
    model it was written with."""
    version = int(state.get("version", 1))
    configs = [state.get("config", {}).get("model", {})]
    configs.append(state.get("meta", {}).get("teacher_config", {}).get("model", {}))
    for model in configs:  # each family fills its own new fields
        family = _family(model.get("name")) if isinstance(model, dict) else None
        if family is not None and family.migrate is not None:
            family.migrate(model, version)
    if version < 2:
        train = state.get("config", {}).get("train")
        if isinstance(train, dict):
            train.setdefault("ema_warmup", False)
        spec = state.get("normalizer", {}).get("spec")
        if isinstance(spec, dict):
            spec.setdefault("lattice_features", [])
            spec.setdefault("lattice_pitch", 0.0)
    return state


def _family(name: Any):
    """The registered family ``name`` (None for an unknown or missing name)."""
    from pointcalo.errors import ConfigError
    from pointcalo.models import registry

    try:
        return registry.get(str(name)) if name else None
    except ConfigError:
        return None
