"""Transfer to a new detector: the data's own point spec (lattice pitch, layer count), starting
from another detector's weights (train.init_mode: transfer) and BitFit (train.freeze)."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import torch
import yaml

from pointcalo import io
from pointcalo.checkpoint import load_checkpoint
from pointcalo.cli import main
from pointcalo.clouds import SHOWERS, shower_spec
from pointcalo.showers import make_showers
from tests.conftest import TINY_CALOCLOUDS, random_showers

THREE_LAYERS = {"subcell_pitch_mm": 1.25, "layer_depth_mm": np.array([45.0, 263.5, 458.5])}


def test_shower_spec_follows_the_file():
    assert shower_spec({}, 29) is SHOWERS
    assert shower_spec({"subcell_pitch_mm": 0.848}, 12) is SHOWERS
    spec = shower_spec(THREE_LAYERS, 2)
    assert spec.integer_max == 2 and spec.lattice_pitch == 1.25
    assert shower_spec({}, 40).integer_max == 40  # never clip a layer the data has


def _three_layer_file(path, n=40):
    """Random showers folded onto 3 layers, in a file that says so (pitch 1.25 mm)."""
    showers = random_showers(n, seed=3)
    counts = ak.num(showers["points"]).to_numpy()
    points = {k: ak.flatten(showers["points", k]).to_numpy() for k in ("E", "x", "y")}
    points["layer"] = ak.flatten(showers["points", "layer"]).to_numpy().astype(np.int32) % 3
    inc = showers["incident_energy"].to_numpy()
    io.write(make_showers(inc, points, counts=counts), path, attrs=THREE_LAYERS)
    return path


def _config(path, **train):
    cfg = {"model": TINY_CALOCLOUDS, "train": {"steps": 3, "batch_size": 8, "device": "cpu",
                                                "checkpoint_every": 1, **train}}  # fmt: skip
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A tiny 30-layer run to start from."""
    d = tmp_path_factory.mktemp("src")
    io.write(random_showers(40), d / "ild.h5")
    code = main(["train", str(_config(d / "c.yaml")), "--data", str(d / "ild.h5"),
                 "--out", str(d / "run"), "-q"])  # fmt: skip
    assert code == 0
    return d / "run" / "checkpoint.pt"


def test_another_detector_needs_transfer_mode(source, tmp_path, capsys):
    data = _three_layer_file(tmp_path / "d.h5")
    cfg = _config(tmp_path / "c.yaml")
    out = tmp_path / "o"
    args = ["train", str(cfg), "--data", str(data), "--out", str(out), "--init-from", str(source)]
    assert main([*args, "-q"]) == 2
    err = capsys.readouterr().err
    assert "init_mode: transfer" in err and "weights do not fit" in err
    assert not (out / "checkpoint.pt").exists()
    assert main([*args, "--init-mode", "transfer", "-q"]) == 0
    new = load_checkpoint(out / "checkpoint.pt")
    old = load_checkpoint(source)
    assert new["normalizer"]["spec"]["integer_max"] == 2  # the new detector's own
    assert new["normalizer"]["spec"]["lattice_pitch"] == 1.25
    same = [k for k, v in old["model"].items() if v.shape == new["model"][k].shape]
    differ = [k for k in old["model"] if k not in same]
    assert differ and all(k.startswith("flow.") for k in differ)  # only the per-layer flow


def test_bitfit_trains_only_biases_and_what_was_not_loaded(source, tmp_path):
    data = _three_layer_file(tmp_path / "d.h5")
    cfg = _config(tmp_path / "c.yaml")
    out = tmp_path / "o"
    args = ["train", str(cfg), "--data", str(data), "--out", str(out), "--init-from",
            str(source), "--init-mode", "transfer", "--freeze", "bitfit", "-q"]  # fmt: skip
    assert main(args) == 0
    old = load_checkpoint(source)["model"]
    new = load_checkpoint(out / "checkpoint.pt")
    frozen = new["meta"]["frozen"]
    assert frozen and all(new["model"][k].dim() > 1 for k in frozen)
    for k in frozen:
        torch.testing.assert_close(new["model"][k], old[k], rtol=0, atol=0)
    biases = [k for k in old if k.endswith("bias") and k.startswith("denoiser")]
    assert any(not torch.equal(new["model"][k], old[k]) for k in biases)  # biases did train
    # resuming keeps them frozen
    assert main([*args[:-1], "--resume", "--steps", "6", "-q"]) == 0
    again = load_checkpoint(out / "checkpoint.pt")
    assert again["step"] == 6 and again["meta"]["frozen"] == frozen
    for k in frozen:
        torch.testing.assert_close(again["model"][k], old[k], rtol=0, atol=0)


def test_freeze_needs_weights_to_freeze(tmp_path, capsys):
    io.write(random_showers(10), tmp_path / "d.h5")
    cfg = _config(tmp_path / "c.yaml", freeze="bitfit")
    assert main(["train", str(cfg), "--data", str(tmp_path / "d.h5"), "--out",
                 str(tmp_path / "o"), "-q"]) == 2  # fmt: skip
    assert "init_from" in capsys.readouterr().err
