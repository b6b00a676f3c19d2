"""The code base stays ruff clean (CI runs this through the README's test command)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PATHS = ["pointcalo", "voxelize", "tests", "benchmarks", "scripts"]


def _ruff() -> list[str]:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.skip("ruff not installed")
    return [exe]


def test_ruff_check():
    proc = subprocess.run([*_ruff(), "check", *PATHS], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format():
    cmd = [*_ruff(), "format", "--check", *PATHS]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_voxelize_does_not_import_pointcalo():
    code = "import sys, voxelize; assert 'pointcalo' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
