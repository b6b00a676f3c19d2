"""Pretrained models shipped inside the package, loadable by name.

Each model is ``<name>.pt`` (a checkpoint holding only what sampling needs: config, weights,
EMA weights, normalisation, meta) with its model card ``<name>.json`` (training data and split,
steps, CPU-hours, metrics beside the floor and the baselines, speed). Anywhere a checkpoint
path is taken (``pointcalo sample``, :func:`pointcalo.generation.load_model`), a name
from :func:`available` works too: ``pointcalo sample ild-photon-cm --n 1000 -o gen.h5``.
Nothing is downloaded: the files are part of the wheel.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pointcalo.errors import PointcaloError

PRETRAINED_DIR = Path(__file__).resolve().parent


def available() -> list[str]:
    """Names of the shipped pretrained models."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.pt"))


def card(name: str) -> dict[str, Any]:
    """The model card of a shipped model (empty if it has none)."""
    path = PRETRAINED_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def resolve(spec: str | os.PathLike[str]) -> Path:
    """A checkpoint path from a path or the name of a shipped model."""
    path = Path(spec)
    if path.exists() or path.suffix == ".pt" or os.sep in str(spec):
        return path
    if str(spec) in available():
        return PRETRAINED_DIR / f"{spec}.pt"
    names = ", ".join(available()) or "none shipped"
    raise PointcaloError(f"{spec}: no such checkpoint or pretrained model (shipped: {names})")
