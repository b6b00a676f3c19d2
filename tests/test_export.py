"""Export of the shipped one-step model to TorchScript and ONNX, run in a process where
pointcalo cannot be imported, against pointcalo's own showers."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from pointcalo.cli import main
from pointcalo.generation import generate, load_model
from pointcalo.models.consistency.export import stream_inputs
from pointcalo.models.showerflow.onnx_glue import decode
from tests.conftest import WITHOUT_POINTCALO

NAME = "ild-photon-cm"
ENERGIES = np.array([15e3, 85e3, 40e3, 60e3, 25e3])  # another batch size than the trace's 3
N_MAX = 6000
#: Runs with pointcalo and voxelize made unimportable; prints nothing, writes out.npz.
RUNNER = (
    WITHOUT_POINTCALO
    + """
import numpy as np
inp = np.load("inputs.npz")
args = [inp[k] for k in ("energy", "base", "noise")]
out = {}
if sys.argv[1] == "torchscript":
    import torch
    torch.set_num_threads(1)
    model = torch.jit.load(sys.argv[2])
    for tag, b in (("all", slice(None)), ("one", slice(1, 2))):
        pts, counts = model(*(torch.as_tensor(a[b]) for a in args))
        out[tag + "_points"], out[tag + "_counts"] = pts.numpy(), counts.numpy()
else:
    sys.path.insert(0, sys.argv[2])
    from glue import OnnxSampler
    sampler = OnnxSampler(sys.argv[2])
    for tag, b in (("all", slice(None)), ("one", slice(1, 2))):
        out[tag + "_points"], out[tag + "_counts"] = sampler(*(a[b] for a in args))
np.savez("out.npz", **out)
"""
)


@pytest.fixture(scope="module")
def reference():
    torch.set_num_threads(1)
    loaded = load_model(NAME)
    clouds = generate(
        loaded.model, loaded.net, loaded.normalizer, ENERGIES, loaded.cfg, seed=4,
        limits=loaded.limits,
    )  # fmt: skip
    points = np.stack([clouds.points[k].astype(np.float32) for k in ("E", "x", "y", "layer")], 1)
    return loaded, points, np.diff(clouds.offsets)


def _run_exported(tmp_path, fmt, target, loaded):
    np.savez(tmp_path / "inputs.npz", **stream_inputs(loaded, ENERGIES, N_MAX, seed=4))
    (tmp_path / "run.py").write_text(RUNNER)
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}  # no PYTHONPATH
    done = subprocess.run(
        [sys.executable, "run.py", fmt, str(target)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(tmp_path / "out.npz")


def _check(out, points, counts, exact: bool):
    np.testing.assert_array_equal(out["all_counts"], counts)
    got = out["all_points"]
    assert got.shape == points.shape and got.dtype == np.float32
    if exact:
        np.testing.assert_array_equal(got, points)
    else:  # float rounding in ONNX Runtime's kernels: see the README's tolerance
        np.testing.assert_allclose(got[:, 0], points[:, 0], rtol=1e-4, atol=1e-6)
        for j in (1, 2, 3):
            assert np.mean(got[:, j] == points[:, j]) > 0.995
    # one shower alone: the second shower of the batch
    lo, hi = counts[0], counts[0] + counts[1]
    np.testing.assert_array_equal(out["one_counts"], counts[1:2])
    np.testing.assert_allclose(out["one_points"], points[lo:hi], rtol=1e-4, atol=1e-6)


def test_torchscript_export_reproduces_pointcalo_without_it(tmp_path, reference):
    loaded, points, counts = reference
    target = tmp_path / "cm.pt"
    assert main(["export", NAME, "-o", str(target), "-q"]) == 0
    card = json.loads((tmp_path / "cm.pt.json").read_text())
    assert card["name"] == NAME and card["export"]["format"] == "torchscript"
    assert "metrics" in card or "cpu_hours" in card
    _check(_run_exported(tmp_path, "torchscript", target, loaded), points, counts, exact=True)


def test_onnx_export_reproduces_pointcalo_without_it(tmp_path, reference):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    loaded, points, counts = reference
    target = tmp_path / "cm_onnx"
    assert main(["export", NAME, "-o", str(target), "--format", "onnx", "-q"]) == 0
    assert {p.name for p in target.iterdir()} == {"flow.onnx", "denoiser.onnx", "meta.json",
                                                  "glue"}  # fmt: skip
    assert json.loads((tmp_path / "cm_onnx.json").read_text())["export"]["format"] == "onnx"
    _check(_run_exported(tmp_path, "onnx", target, loaded), points, counts, exact=False)


def test_glue_decode_equals_the_normaliser(reference):
    loaded = reference[0]
    x0 = np.random.default_rng(0).normal(0, 2, (500, 4)).astype(np.float32)
    want = loaded.normalizer.decode_points(x0)
    got = decode(x0, json.loads(json.dumps(loaded.normalizer.to_dict())))
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_only_one_step_models_export(tmp_path, capsys):
    assert main(["export", "ild-photon-cc", "-o", str(tmp_path / "cc.pt")]) == 2
    err = capsys.readouterr().err
    assert "only one-step (consistency) models export" in err and "caloclouds" in err
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_export_refuses_a_folder_or_a_name_too_long_for_its_card(tmp_path, capsys, monkeypatch):
    """``-o .`` (a folder where the file goes) and a 252-character name (its card,
    ``<name>.json``, would exceed the file system's 255) are refused before any work."""
    monkeypatch.chdir(tmp_path)
    assert main(["export", NAME, "-o", "."]) == 2
    assert "is a folder" in capsys.readouterr().err
    long = "c" * 252
    assert main(["export", NAME, "-o", long]) == 2
    assert "too long for its model card" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_onnx_export_never_touches_a_users_folder(tmp_path, capsys):
    """An export onto a folder that holds a user's file is refused before any work, and
    nothing is left beside it (it used to delete the folder; then to leave its temporary
    folder when the rename failed)."""
    pytest.importorskip("onnx")
    mine = tmp_path / "mydata"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert main(["export", NAME, "-o", str(mine), "--format", "onnx", "-q"]) == 2
    assert "holds files that are not an earlier output" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mydata"]
