"""Shared fixtures: small random showers, the shipped example, and ../shared/data when present."""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from pointcalo.showers import make_showers

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POINTCALO_SHARED", REPO.parent / "shared")) / "data"


#: A CaloClouds model small enough for tests (seconds to train a few steps).
TINY_CALOCLOUDS = {
    "name": "caloclouds",
    "point_dim": 8,
    "global_dim": 4,
    "hidden": 16,
    "layers": 1,
    "flow_transforms": 1,
    "flow_hidden": 16,
    "steps": 3,
    "noise_embedding": 4,
}


def random_showers(n: int = 20, seed: int = 0, z: bool = False, **fields) -> ak.Array:
    """Random showers with 1-50 points each (energies in MeV, coordinates in mm)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 50, size=n)
    p = int(counts.sum())
    points = {
        "E": rng.exponential(0.5, p).astype(np.float32),
        "x": rng.normal(0, 20, p).astype(np.float32),
        "y": rng.normal(0, 20, p).astype(np.float32),
        "layer": rng.integers(0, 30, p).astype(np.int32),
    }
    if z:
        points["z"] = rng.uniform(0, 100, p).astype(np.float32)
    inc = rng.uniform(10e3, 90e3, n).astype(np.float32)
    return make_showers(inc, points, counts=counts, fields=fields or None)


@pytest.fixture
def showers() -> ak.Array:
    return random_showers()


@pytest.fixture(scope="session")
def g4_path() -> Path:
    path = SHARED / "g4_ild_photons.h5"
    if not path.exists():
        pytest.skip(f"shared Geant4 sample not found at {path}")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.exists():
        pytest.skip(f"shared data not found at {SHARED}")
    return SHARED
