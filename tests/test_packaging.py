"""The wheel holds everything the code reads, and works installed (not editable) outside the
checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, "-w", str(out), str(REPO)], check=True, cwd=out)
    return next(out.glob("pointcalo-*.whl"))


def test_wheel_holds_the_data_the_code_reads(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = [
        "pointcalo/data/example_photons.h5",
        "pointcalo/configs/caloclouds.yaml",
        "pointcalo/configs/library.yaml",
        "pointcalo/configs/splits/g4_ild_photons.json",
        "voxelize/binning/binning_dataset_2.xml",
        "voxelize/geometry/ild.yaml",
    ]
    expected += [
        f"pointcalo/pretrained/{p.name}"
        for p in (REPO / "pointcalo" / "pretrained").iterdir()
        if p.suffix in (".pt", ".json")
    ]
    missing = [n for n in expected if n not in names]
    assert not missing, missing


@pytest.mark.slow
def test_installed_wheel_runs_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run(
        [py, "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True
    )
    # the dependencies (torch, ...) come from this environment's site-packages, appended
    # after the fresh environment's own (so pointcalo is the installed wheel, not the checkout)
    site = subprocess.run(
        [py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    work = tmp_path / "elsewhere"
    work.mkdir()

    def run(*args: str) -> str:
        done = subprocess.run(
            list(args), cwd=work, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    where = run(str(py), "-c", "import pointcalo, voxelize; print(pointcalo.__file__)")
    assert where.startswith(str(venv)), where
    cli = str(venv / "bin" / "pointcalo")
    assert "main job" in run(cli, "demo", "--help")
    example = run(str(py), "-c", "from pointcalo.data import example_path; print(example_path())")
    run(cli, "voxelize", example.strip(), "ds2.h5", "--grid", "calochallenge-2", "-q")
    assert (work / "ds2.h5").exists()
    code = (
        "from pointcalo.config import load_config, preset_path;"
        "print(load_config(preset_path('caloclouds')).model.name)"
    )
    assert run(str(py), "-c", code).strip() == "caloclouds"
    # a preset trains by its name and by its path in a checkout, from any folder
    for spec, out in (("epic_gan", "by_name"), ("configs/epic_gan.yaml", "by_path")):
        run(cli, "train", spec, "--steps", "1", "--out", out, "-q")
        assert (work / out / "checkpoint.pt").exists()
    names = run(str(py), "-c", "from pointcalo import pretrained; print(pretrained.available())")
    for name in eval(names):  # every shipped model samples from the installed wheel
        run(cli, "sample", name, "--n", "2", "-o", f"{name}.h5", "-q")
        assert (work / f"{name}.h5").exists()
