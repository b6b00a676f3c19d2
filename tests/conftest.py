"""Shared fixtures: small random showers, the shipped example, and ../shared/data when present."""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np
import pytest

from pointcalo.showers import make_showers

#: The start of a script run in a Python where pointcalo and voxelize cannot be imported (what
#: the experiments' software has): the exports' tests run their outputs after it.
WITHOUT_POINTCALO = """
import sys
sys.modules["pointcalo"] = None
sys.modules["voxelize"] = None
try:
    import pointcalo  # noqa
    raise SystemExit("pointcalo importable")
except ImportError:
    pass
"""

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


#: what a gloo rank prints when it aborts while its process group is torn down at exit, after
#: the work is done (seen once under heavy CPU load; the run itself had finished)
TEARDOWN_ABORT = "terminate called without an active exception"


def run_torchrun(cmd: list[str], clean: list[Path], **kwargs) -> None:
    """Run a torchrun command; if it fails only by a rank aborting at gloo's teardown, remove
    the ``clean`` outputs and run it once more. Any other failure raises with its stderr."""
    import shutil
    import subprocess

    for attempt in range(2):
        proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
        if proc.returncode == 0:
            return
        if attempt == 0 and TEARDOWN_ABORT in proc.stderr:
            for path in clean:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            continue
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


def train_on_one_and_two_ranks(cfg: Path, data: Path, tmp_path: Path) -> tuple[dict, dict]:
    """The ``model`` weights after ``pointcalo train cfg --data data`` in one process and in two
    gloo ranks under torchrun (each with half the batch); skips without torchrun."""
    import shutil
    import subprocess
    import sys

    import torch

    if shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("torchrun not available")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    base = ["-m", "pointcalo.cli", "train", str(cfg), "--data", str(data), "-q"]
    subprocess.run([sys.executable, *base, "--out", str(tmp_path / "one")], env=env, check=True)
    torchrun = str(Path(sys.executable).parent / "torchrun")
    run_torchrun(
        [torchrun, "--standalone", "--nproc_per_node", "2", *base, "--out", str(tmp_path / "two")],
        clean=[tmp_path / "two"],
        env=env,
        cwd=Path(__file__).resolve().parents[1],
    )
    return tuple(  # type: ignore[return-value]
        torch.load(tmp_path / run / "checkpoint.pt", weights_only=True)["model"]
        for run in ("one", "two")
    )
