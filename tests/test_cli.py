from __future__ import annotations

import json
import subprocess
import sys

import awkward as ak
import h5py
import numpy as np
import pytest

from pointcalo import io
from pointcalo.cli import main
from pointcalo.data import example_path
from tests.conftest import random_showers, run_torchrun


def test_info_json(capsys):
    assert main(["info", str(example_path()), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_showers"] == 160
    assert out["point_fields"] == ["E", "x", "y", "layer"]


def test_info_table(capsys, tmp_path):
    path = io.write(random_showers(4), tmp_path / "a.root")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "points per shower" in out and "E_vis/E_inc" in out


def test_convert_round_trip(tmp_path):
    s = random_showers(9)
    src = io.write(s, tmp_path / "a.h5")
    assert main(["convert", str(src), str(tmp_path / "b.root"), "-q"]) == 0
    assert main(["convert", str(tmp_path / "b.root"), str(tmp_path / "c.hdf5"), "-q"]) == 0
    assert ak.array_equal(io.read(tmp_path / "c.hdf5"), s)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: d / "missing.h5", "missing.h5: no such file"),
        (lambda d: _text_file(d / "t.h5"), "t.h5: not an HDF5 file"),
        (lambda d: _nan_file(d / "nan.h5"), "nan.h5: points/E: non-finite"),
    ],
)
def test_cli_errors_are_one_line_exit_2_no_output(tmp_path, make, words):
    src = make(tmp_path)
    out = tmp_path / "out.root"
    proc = subprocess.run(
        [sys.executable, "-m", "pointcalo.cli", "convert", str(src), str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and words in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.root")]


def test_convert_failing_mid_file_leaves_no_output(tmp_path):
    """A bad value in a late chunk: the first chunks were written to a temporary file that
    must vanish."""
    s = random_showers(50)
    src = io.write(s, tmp_path / "a.h5")
    with h5py.File(src, "a") as f:
        f["points/E"][-1] = np.nan
    assert main(["convert", str(src), str(tmp_path / "b.h5"), "--chunk-size", "10", "-q"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5"]


def test_bad_output_extension(tmp_path, capsys):
    assert main(["convert", str(example_path()), str(tmp_path / "b.csv"), "-q"]) == 2
    assert "unknown file extension '.csv'" in capsys.readouterr().err


def test_demo_writes_report(tmp_path):
    args = ["demo", "--out", str(tmp_path / "demo"), "--n", "120", "--train-steps", "3"]
    assert main([*args, "--reference-showers", "120"]) == 0
    report = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert report["root_round_trip_exact"] is True
    assert report["summary"]["n_showers"] == 120
    for v in report["voxelize"].values():
        assert v["max_relative_error"] < 1e-9
    png = (tmp_path / "demo" / "overview.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    text = (tmp_path / "demo" / "report.md").read_text()
    assert "| showers | 120 |" in text
    assert report["model"]["steps"] == 3
    assert len(io.read(tmp_path / "demo" / "epic_gan" / "generated.h5")) == 200
    assert "A small EPiC-GAN (3 training steps" in text
    # the fast shipped models beside the library and the simulator, against Geant4 showers
    # no model saw, with a verdict each; 120 showers are too few for one and it says so
    from pointcalo import pretrained
    from pointcalo.demo import find_shared_data

    fid = report["fidelity"]
    shared = find_shared_data() is not None  # else the 160 shipped showers, no library
    assert fid["n_reference"] == (120 if shared else 160)
    elsewhere = {**fid["skipped"], **fid["other_showers"]}  # slow, or other showers (angles)
    fast = {n for n in pretrained.available() if n not in elsewhere}
    assert {"ild-angled-cc", "ild-angled-cm"} <= set(fid["other_showers"])
    baselines = {"library", "simulator"} if shared else {"simulator"}
    assert fast and set(fid["verdicts"]) == {*baselines, *fast}
    assert text.index("## Verdicts") < text.index("## The data path")
    assert "Too few Geant4 showers here for a verdict" in text
    compare = json.loads((tmp_path / "demo" / "fidelity" / "compare.json").read_text())
    rows = compare["headline"]
    assert fid["verdicts"]["simulator"]["status"] == "separated"
    if shared:
        assert rows["library"]["memorisation_ratio"] < 0.3  # the library copies its showers
        assert "copies its training showers" in fid["verdicts"]["library"]["text"]
        for name in fast:
            assert rows[name]["memorisation_ratio"] > 0.5  # a model does not
        # the copies (library) are harder to tell from Geant4 than the parametrised simulator
        auc = {k: r["classifier_auc_worst"][0] for k, r in rows.items()}
        assert auc["simulator"] > auc["library"] + 0.1
    assert set(compare["views"]) == {
        "ild, centred",
        "ild, half-cell",
        "ild, random",
        "ild-cylindrical",
    }


def test_demo_on_a_given_file(tmp_path):
    args = [
        "demo",
        "--out",
        str(tmp_path / "d"),
        "--data",
        str(example_path()),
        "--reference-showers",
        "100",
    ]
    assert main(args) == 0
    report = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert report["summary"]["n_showers"] == 160
    assert report["input"] == str(example_path())


def _nan_file(path):
    s = random_showers(3)
    io.write(s, path)
    with h5py.File(path, "a") as f:
        f["points/E"][1] = np.nan
    return path


def _text_file(path):
    path.write_text("text, not HDF5")
    return path


def test_voxelize_command(tmp_path, capsys):
    from voxelize.calochallenge_files import read_calochallenge

    out = tmp_path / "cc2.h5"
    args = ["voxelize", str(example_path()), str(out), "--grid", "calochallenge-2"]
    assert main([*args, "--layer-map", "depth", "--source-depth", "ild", "--chunk-size", "50"]) == 0
    assert "energy outside the grid" in capsys.readouterr().out
    energy, voxels = read_calochallenge(out, "calochallenge-2")
    assert voxels.shape == (160, 6480)
    showers = io.read(example_path())
    total = ak.to_numpy(ak.sum(ak.values_astype(showers.points.E, np.float64), axis=1))
    assert np.all(voxels.sum(1) <= total * (1 + 1e-6))
    assert voxels.sum() / total.sum() > 0.98
    np.testing.assert_allclose(energy, ak.to_numpy(showers.incident_energy))


def test_voxelize_command_errors(tmp_path, capsys):
    out = tmp_path / "o.h5"
    assert main(["voxelize", str(example_path()), str(out), "--grid", "hexagons", "-q"]) == 2
    assert "--grid: unknown grid 'hexagons'" in capsys.readouterr().err
    # a 3-layer grid without depths, the example's 30 layers with theirs: no silent layer map
    grid = tmp_path / "g3.yaml"
    grid.write_text("kind: cartesian\nn_layers: 3\ncells: [4, 4]\ncell_size: [5.0, 5.0]\n"
                    "origin: [-10.0, -10.0]\n")  # fmt: skip
    assert main(["voxelize", str(example_path()), str(out), "--grid", str(grid), "-q"]) == 2
    assert "30 layers, grid 'g3' has 3 and no depths: give --layer-map" in capsys.readouterr().err
    assert not out.exists() and list(tmp_path.iterdir()) == [grid]
    # the CaloGAN grid has depths: the layers go there by depth, and it says so
    assert main(["voxelize", str(example_path()), str(out), "--grid", "calogan"]) == 0
    assert "go to the 3 layers of 'calogan' by depth" in capsys.readouterr().out


@pytest.mark.slow
def test_sharded_sampling_with_torchrun_equals_one_process(tmp_path, capsys):
    """Two torchrun ranks write two shards; merged, they hold exactly the showers of a
    single-process run (per-shower streams, shards of whole generation batches)."""
    import os
    import shutil
    from pathlib import Path

    import yaml

    if shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("torchrun not available")
    data = io.write(random_showers(40, seed=2), tmp_path / "d.h5")
    cfg = tmp_path / "c.yaml"
    from tests.conftest import TINY_CALOCLOUDS as model

    train = {"steps": 2, "batch_size": 8, "device": "cpu", "out": str(tmp_path / "run")}
    cfg.write_text(yaml.safe_dump({"model": model, "data": {"val_fraction": 0.0}, "train": train}))
    assert main(["train", str(cfg), "--data", str(data), "-q"]) == 0
    ckpt = str(tmp_path / "run" / "checkpoint.pt")
    args = ["sample", ckpt, "--n", "13", "--batch-size", "3", "--energy", "20:80", "--seed", "5"]
    assert main([*args, "-o", str(tmp_path / "one.h5"), "-q"]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = str(Path(sys.executable).parent / "torchrun")
    # "--": torchrun's own parser would take "--n" for an abbreviation of its options
    launch = [torchrun, "--nproc_per_node", "2", "--master_port", "29531", "-m", "pointcalo.cli"]
    run_torchrun(
        [*launch, "--", *args, "-o", str(tmp_path / "many.h5"), "-q"],
        clean=[tmp_path / f"many.rank00{r}-of-002.h5" for r in (0, 1)],
        env=env,
    )
    shards = sorted(tmp_path.glob("many.rank*-of-002.h5"))
    assert [p.name for p in shards] == ["many.rank000-of-002.h5", "many.rank001-of-002.h5"]
    sizes = [len(io.read(p, allow_empty=True)) for p in shards]
    assert sizes == [6, 7]  # whole batches of 3: batches 0-1 and 2-4
    merged = tmp_path / "merged.h5"
    assert main(["merge", *map(str, shards), "-o", str(merged), "-q"]) == 0
    a, b = io.read(tmp_path / "one.h5", allow_empty=True), io.read(merged, allow_empty=True)
    assert ak.array_equal(a, b)  # identical content, to the bit
    # merge checks the set: not one shard alone, twice, out of order, or with another file
    out = str(tmp_path / "bad.h5")
    s0, s1 = map(str, shards)
    for bad, why in (
        ([s0], "shard ranks [0], expected 0..1"),
        ([s0, s0], "shard ranks [0, 0]"),
        ([s1, s0], "shard ranks [1, 0]"),
        ([s0, s1, str(tmp_path / "one.h5")], "not a shard of the others"),
    ):
        assert main(["merge", *bad, "-o", out, "-q"]) == 2
        assert why in capsys.readouterr().err
        assert not (tmp_path / "bad.h5").exists()
    # a shard of a run asked for other conditions does not join
    import h5py

    other = tmp_path / "many.rank001-of-002.other.h5"
    shutil.copy(s1, other)
    with h5py.File(other, "a") as f:
        assert "20000" in f.attrs["shard_conditions"]  # the energies asked for, MeV
        f.attrs["shard_conditions"] = '{"incident_energy": [10000.0, 90000.0]}'
    assert main(["merge", s0, str(other), "-o", out, "-q"]) == 2
    assert "shard_conditions" in capsys.readouterr().err


def test_sample_at_the_energies_of_a_file(tmp_path, capsys):
    from tests.test_caloclouds import _tiny_run

    ckpt, _, _ = _tiny_run(tmp_path)
    ref = io.write(random_showers(5, seed=8), tmp_path / "ref.h5")
    out = tmp_path / "g.h5"
    assert main(["sample", str(ckpt), "--energies-from", str(ref), "-o", str(out), "-q"]) == 0
    got, want = io.read(out, allow_empty=True), io.read(ref)
    np.testing.assert_array_equal(np.asarray(got.incident_energy), np.asarray(want.incident_energy))
    args = ["sample", str(ckpt), "--energies-from", str(ref), "--n", "3", "-o", str(out)]
    assert main(args) == 2 and "--n" in capsys.readouterr().err


def test_the_parser_offers_every_sampler():
    from pointcalo.commands.common import SAMPLER_NAMES
    from pointcalo.sampling import SAMPLERS

    assert sorted(SAMPLER_NAMES) == sorted(SAMPLERS)


def test_presets_by_name_from_anywhere(tmp_path, monkeypatch, capsys):
    """From any folder (an install outside the checkout), a preset is found by its name and
    by its path in a checkout; an unknown one is an error listing the presets."""
    from pointcalo.config import load_config

    monkeypatch.chdir(tmp_path)
    assert load_config("epic_gan").model.name == "epic_gan"
    assert load_config("configs/caloclouds.yaml").model.name == "caloclouds"
    assert main(["train", "no_such_preset"]) == 2
    err = capsys.readouterr().err
    assert "no_such_preset: no such config file (presets: caloclouds" in err
    assert main(["configs"]) == 0
    assert "epic_gan" in capsys.readouterr().out


def test_every_option_has_help_with_its_default():
    import argparse

    from pointcalo.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, (name, action.option_strings or action.dest)
        text = command.format_help()
        if any(a.dest == "seed" for a in command._actions):
            assert "(default: " in text and "seed" in text, name
    assert "(default: 0)" in sub.choices["sample"].format_help()  # --seed 0 is a default too
