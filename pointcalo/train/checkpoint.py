"""Checkpoints: config, weights (state_dicts, never pickled code), EMA, optimisers, RNG state,
step and normalisation in one file, written atomically so a kill never leaves half a file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from pointcalo.errors import PointcaloError
from pointcalo.io.atomic import atomic_path

FORMAT = "pointcalo.checkpoint"
VERSION = 1


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> Path:
    """Write ``state`` (plus format and version) to ``path`` via a temporary file."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, "version": VERSION, **state}, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    """Read a checkpoint (tensors and plain Python only; no code is unpickled)."""
    path = Path(path)
    if not path.exists():
        raise PointcaloError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types for corrupt files
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PointcaloError(f"{path}: not a readable checkpoint: {msg}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise PointcaloError(f"{path}: not a pointcalo checkpoint")
    if int(state.get("version", 0)) > VERSION:
        raise PointcaloError(
            f"{path}: checkpoint version {state['version']} is newer than "
            f"this pointcalo reads ({VERSION})"
        )
    return state
