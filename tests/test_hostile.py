"""Hostile inputs: every case a user can cause is refused with one line naming the file, field
or value (exit 2), leaves no output and no temporary behind, and never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from pointcalo import io
from pointcalo.cli import main
from tests.conftest import TINY_CALOCLOUDS as TINY_CC
from tests.conftest import random_showers


def refused(capsys, args: list[str], *names: str, code: int = 2) -> str:
    """Run the CLI; assert exit ``code``, one line on stderr naming every one of ``names``."""
    assert main(args) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: "), err
    assert "Traceback" not in err
    for name in names:
        assert name in err, (name, err)
    return err


def no_leftovers(folder: Path, *allowed: str) -> None:
    left = sorted(p.name for p in folder.iterdir() if p.name not in allowed)
    assert not [n for n in left if n.endswith(".tmp")], left
    return left


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    h5 = io.write(random_showers(24, seed=1), d / "ok.h5")
    root = io.write(random_showers(24, seed=1), d / "ok.root")
    cfg = d / "cc.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "model": TINY_CC,
                "data": {"val_fraction": 0.0, "path": str(h5)},
                "train": {"steps": 2, "batch_size": 8, "device": "cpu", "out": str(d / "run")},
            }
        )
    )
    assert main(["train", str(cfg), "-q"]) == 0
    return {"dir": d, "h5": h5, "root": root, "cfg": cfg, "ckpt": d / "run" / "checkpoint.pt"}


# -- silent wrong results, now refused ----------------------------------------------------------


@pytest.mark.parametrize("size", ["-1", "0"])
def test_convert_chunk_size(capsys, files, tmp_path, size):
    out = tmp_path / "o.h5"
    refused(capsys, ["convert", str(files["root"]), str(out), "--chunk-size", size], "--chunk-size")
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--n", "-5"], ["--n"]),
        (["--energy", "90:10"], ["--energy", "90:10"]),
        (["--energy", "1e9"], ["--energy", "training range", "--allow-extrapolation"]),
        (["--energy", "0"], ["--energy"]),
        (["--energy", "nan"], ["--energy"]),
        (["--seed", "-1"], ["--seed"]),
        (["--batch-size", "0"], ["--batch-size"]),
        (["--batch-size", "-3"], ["--batch-size"]),
    ],
)
def test_sample_arguments(capsys, files, tmp_path, args, names):
    out = tmp_path / "g.h5"
    refused(capsys, ["sample", str(files["ckpt"]), "-o", str(out), "-q", *args], *names)
    assert not out.exists()
    no_leftovers(tmp_path)


def test_extrapolation_is_allowed_when_asked(files, tmp_path):
    out = tmp_path / "g.h5"
    args = ["sample", str(files["ckpt"]), "-o", str(out), "--n", "1", "--energy", "200", "-q"]
    assert main([*args, "--allow-extrapolation"]) == 0 and out.exists()


@pytest.mark.parametrize(
    ("train", "field"),
    [
        ({"lr": float("inf")}, "train.lr"),
        ({"lr": float("nan")}, "train.lr"),
        ({"warmup_steps": True}, "train.warmup_steps"),
        ({"steps": True}, "train.steps"),
    ],
)
def test_config_numbers(capsys, files, tmp_path, train, field):
    cfg = tmp_path / "c.yaml"
    data = yaml.safe_load(files["cfg"].read_text())
    data["train"].update(train, out=str(tmp_path / "run"))
    cfg.write_text(yaml.safe_dump(data))
    refused(capsys, ["train", str(cfg), "-q"], str(cfg), field)
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_training_stops_at_a_non_finite_loss(capsys, files, tmp_path):
    data = random_showers(24, seed=1)
    pts = data.points
    # a huge learning rate: the weights blow up within a few steps
    cfg = tmp_path / "c.yaml"
    d = yaml.safe_load(files["cfg"].read_text())
    d["train"].update(lr=1e30, steps=20, checkpoint_every=1, out=str(tmp_path / "run"))
    d["train"]["grad_clip"] = None
    cfg.write_text(yaml.safe_dump(d))
    err = refused(capsys, ["train", str(cfg), "-q"], "step", "non-finite", "last good checkpoint")
    assert pts is not None and err
    ckpt = tmp_path / "run" / "checkpoint.pt"
    if ckpt.exists():  # whatever was written is finite and loads
        from pointcalo.generation import load_model

        load_model(ckpt)


def test_corrupted_checkpoint(capsys, files, tmp_path):
    bad = tmp_path / "bad.pt"
    raw = bytearray(files["ckpt"].read_bytes())
    mid = len(raw) // 2
    raw[mid : mid + 2000] = (
        np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    )
    bad.write_bytes(bytes(raw))
    refused(capsys, ["sample", str(bad), "-o", str(tmp_path / "g.h5"), "-q"], str(bad))
    assert not (tmp_path / "g.h5").exists()


def _voxels(path: Path, energy, showers) -> Path:
    with h5py.File(path, "w") as f:
        f["incident_energies"] = np.asarray(energy)
        f["showers"] = np.asarray(showers)
    return path


@pytest.mark.parametrize(
    ("energy", "voxel", "field"),
    [
        ([[1e4]] * 12, -1.0, "showers"),
        ([[-1e4]] * 12, 1.0, "incident_energies"),
        ([[0.0]] * 12, 1.0, "incident_energies"),
        ([[np.nan]] * 12, 1.0, "incident_energies"),
    ],
)
def test_voxel_files_are_validated(capsys, files, tmp_path, energy, voxel, field):
    import voxelize as vx

    n = vx.load_grid("calochallenge-2").n_voxels
    v = np.full((12, n), abs(voxel), np.float32)
    v[:, 0] = voxel
    path = _voxels(tmp_path / "v.h5", energy, v)
    args = ["evaluate", "--reference", str(path), "--generated", str(path)]
    refused(
        capsys, [*args, "--grid", "calochallenge-2", "--out", str(tmp_path / "e")], str(path), field
    )


def test_voxel_file_with_string_energies(capsys, tmp_path):
    path = tmp_path / "v.h5"
    with h5py.File(path, "w") as f:
        f["incident_energies"] = np.array([b"a"] * 3)
        f["showers"] = np.ones((3, 6480), np.float32)
    args = ["evaluate", "--reference", str(path), "--generated", str(path), "--grid"]
    refused(capsys, [*args, "calochallenge-2", "--out", str(tmp_path / "e"), "-q"], str(path))


@pytest.mark.parametrize(
    ("args", "names"),
    [(["--threshold", "-1"], ["--threshold"]), (["--batches", "0"], ["--batches"])],
)
def test_evaluate_arguments(capsys, files, tmp_path, args, names):
    base = ["evaluate", "--reference", str(files["h5"]), "--generated", str(files["h5"])]
    refused(capsys, [*base, "--out", str(tmp_path / "e"), "-q", *args], *names)


def test_evaluate_out_is_a_file(capsys, files, tmp_path):
    out = tmp_path / "exists.txt"
    out.write_text("keep me")
    base = ["evaluate", "--reference", str(files["h5"]), "--generated", str(files["h5"])]
    refused(capsys, [*base, "--out", str(out), "--batches", "2", "-q"], str(out))
    assert out.read_text() == "keep me"


def test_evaluate_layers_beyond_the_grid(capsys, tmp_path):
    s = random_showers(24, seed=3)
    from pointcalo.showers import flatten, make_showers

    flat = flatten(s)
    pts = dict(flat.points)
    pts["layer"] = pts["layer"] + 10  # up to layer 39 on a 30-layer grid
    path = io.write(
        make_showers(flat.fields["incident_energy"], pts, offsets=flat.offsets),
        tmp_path / "deep.h5",
    )
    base = ["evaluate", "--reference", str(path), "--generated", str(path), "--batches", "2"]
    refused(capsys, [*base, "--out", str(tmp_path / "e"), "-q"], str(path), "layer")


# -- tracebacks, now one line -------------------------------------------------------------------


def test_format_version_as_string(capsys, files, tmp_path):
    path = tmp_path / "v.h5"
    shutil.copy(files["h5"], path)
    with h5py.File(path, "r+") as f:
        f.attrs["format_version"] = "one"
    refused(capsys, ["info", str(path)], str(path), "format_version")


def test_truncated_and_zero_padded_hdf5(capsys, files, tmp_path):
    raw = files["h5"].read_bytes()
    path = tmp_path / "cut.h5"
    path.write_bytes(raw[: int(0.6 * len(raw))] + bytes(len(raw) - int(0.6 * len(raw))))
    refused(capsys, ["info", str(path)], str(path))


@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_truncated_root(capsys, files, tmp_path, fraction):
    raw = files["root"].read_bytes()
    path = tmp_path / "cut.root"
    path.write_bytes(raw[: int(fraction * len(raw))])
    refused(capsys, ["info", str(path)], str(path))
    out = tmp_path / "o.h5"
    refused(capsys, ["convert", str(path), str(out)], str(path))
    assert not out.exists()


def test_root_with_jagged_incident_energy(capsys, tmp_path):
    import awkward as ak
    import uproot

    path = tmp_path / "jag.root"
    with uproot.recreate(path) as f:
        f["showers"] = {
            "incident_energy": ak.Array([[1.0, 2.0], [3.0]]),
            "points_E": ak.Array([[1.0], [2.0]]),
            "points_x": ak.Array([[1.0], [2.0]]),
            "points_y": ak.Array([[1.0], [2.0]]),
            "points_layer": ak.Array([[1], [2]]),
        }
    refused(capsys, ["info", str(path)], str(path), "incident_energy")


def test_unwritable_outputs(capsys, files, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    immutable = False
    if os.access(ro, os.W_OK):  # root ignores permissions: make the folder immutable instead
        immutable = subprocess.run(["chattr", "+i", str(ro)], capture_output=True).returncode == 0
        if not immutable:
            pytest.skip("cannot make an unwritable folder here")
    try:
        refused(capsys, ["convert", str(files["h5"]), str(ro / "o.h5")], str(ro))
        refused(capsys, ["sample", str(files["ckpt"]), "-o", str(ro / "g.h5"), "--n", "1"], "ro")
        assert not list(ro.iterdir())
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(ro)], check=False)
        ro.chmod(0o700)


def test_output_is_a_directory_or_under_a_file(capsys, files, tmp_path):
    (tmp_path / "adir").mkdir()
    refused(capsys, ["convert", str(files["h5"]), str(tmp_path / "adir")], "adir")
    (tmp_path / "afile").write_text("x")
    refused(capsys, ["convert", str(files["h5"]), str(tmp_path / "afile" / "o.h5")], "afile")
    assert (tmp_path / "afile").read_text() == "x"


def test_long_names(capsys, files, tmp_path):
    out = tmp_path / ("a" * 247 + ".h5")  # 250 characters: legal
    assert main(["convert", str(files["h5"]), str(out), "-q"]) == 0 and out.exists()
    no_leftovers(tmp_path, out.name)
    longer = tmp_path / ("b" * 297 + ".h5")  # 300 characters: too long for the file system
    refused(capsys, ["convert", str(files["h5"]), str(longer)], "File name too long")
    refused(capsys, ["info", str(longer)], "bbbb")


def test_full_disk(capsys, files, tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here")
    try:
        from pointcalo.data import example_path  # 2.3 MB: does not fit into 200 kB

        refused(capsys, ["convert", str(example_path()), str(mnt / "o.h5")], "space")
        refused(capsys, ["convert", str(example_path()), str(mnt / "o.root")], "space")
        refused(capsys, ["voxelize", str(example_path()), str(mnt / "v.h5")], "space", "v.h5")
        ex = str(example_path())
        filler = mnt / "filler"  # the user's: a report of a few PNGs no longer fits either
        filler.write_bytes(b"0" * (shutil.disk_usage(mnt).free - 16384))
        ev = ["evaluate", "--generated", ex, "--reference", ex, "--out", str(mnt / "ev"), "-q"]
        refused(capsys, ev, "space", "ev")
        cmp = ["compare", "--generated", ex, "--reference", ex, "--out", str(mnt / "cmp"), "-q"]
        refused(capsys, cmp, "space", "cmp")
        assert [p.name for p in mnt.iterdir()] == ["filler"]  # nothing partial, no temporary
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_reports_never_write_over_a_folder_they_did_not_make(capsys, tmp_path):
    from pointcalo.data import example_path

    ex = str(example_path())
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    for command, marker in (("evaluate", "metrics.json"), ("compare", "compare.json")):
        args = [command, "--generated", ex, "--reference", ex, "--out", str(theirs), "-q"]
        refused(capsys, args, "--out", str(theirs), marker)
        assert sorted(p.name for p in theirs.iterdir()) == ["notes.txt"]
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    # an earlier report of the same command is updated in place; the user's own file stays
    report = tmp_path / "report"
    args = ["evaluate", "--generated", ex, "--reference", ex, "--out", str(report), "-q"]
    assert main(args) == 0
    (report / "notes.txt").write_text("mine")
    (report / "metrics.json").write_text("{}")
    assert main(args) == 0
    assert (report / "notes.txt").read_text() == "mine"
    assert "e_ratio" in (report / "metrics.json").read_text()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_config_is_a_directory_or_binary(capsys, tmp_path):
    refused(capsys, ["train", str(tmp_path)], str(tmp_path), "directory")
    binary = tmp_path / "c.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    refused(capsys, ["train", str(binary)], str(binary))


def test_training_file_without_showers(capsys, files, tmp_path):
    empty = (
        io.write(random_showers(3)[:0], tmp_path / "empty.h5", allow_empty=True) if False else None
    )
    path = tmp_path / "empty.h5"
    with h5py.File(files["h5"]) as src, h5py.File(path, "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        dst.attrs["n_showers"] = 0
        dst["incident_energy"] = np.zeros(0, np.float32)
        dst["offsets"] = np.zeros(1, np.int64)
        for name in ("E", "x", "y", "layer"):
            dst[f"points/{name}"] = src[f"points/{name}"][:0]
    assert empty is None
    refused(
        capsys,
        ["train", str(files["cfg"]), "--data", str(path), "--out", str(tmp_path / "r"), "-q"],
        str(path),
        "no showers",
    )


def test_resume_with_another_model(capsys, files, tmp_path):
    d = yaml.safe_load(files["cfg"].read_text())
    run = tmp_path / "run"
    shutil.copytree(files["dir"] / "run", run)
    d["train"]["out"] = str(run)
    d["model"]["hidden"] = 32
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(d))
    refused(capsys, ["train", str(cfg), "--resume", "-q"], "hidden", "16", "32")


@pytest.mark.parametrize(
    "damage", ["no config", "no normalizer", "shape", "missing key", "nan", "meta a string"]
)
def test_damaged_checkpoints(capsys, files, tmp_path, damage):
    from pointcalo.checkpoint import save_checkpoint

    state = torch.load(files["ckpt"], weights_only=True)
    state = {k: v for k, v in state.items() if k not in ("format", "version", "checksum")}
    if damage == "no config":
        del state["config"]
    elif damage == "no normalizer":
        del state["normalizer"]
    elif damage == "meta a string":
        state["meta"] = "oops"
    else:
        key = next(k for k, v in state["model"].items() if v.is_floating_point() and v.ndim == 2)
        if damage == "shape":
            state["model"][key] = torch.zeros(3, 3)
        elif damage == "missing key":
            del state["model"][key]
        else:
            state["model"][key] = state["model"][key] * float("nan")
    bad = save_checkpoint(tmp_path / "bad.pt", state)
    refused(capsys, ["sample", str(bad), "-o", str(tmp_path / "g.h5"), "-q"], str(bad))


@pytest.mark.parametrize("args", [["--energy", "1e9"], ["--seed", "-1"], ["--n", "0"]])
def test_simulate_arguments(capsys, tmp_path, args):
    refused(capsys, ["simulate", "-o", str(tmp_path / "s.h5"), "-q", *args], args[0])
    assert not (tmp_path / "s.h5").exists()


def test_voxelize_unknown_source_depth(capsys, files, tmp_path):
    args = ["voxelize", str(files["h5"]), str(tmp_path / "v.h5"), "--grid", "calochallenge-2"]
    refused(
        capsys,
        [*args, "--layer-map", "depth", "--source-depth", "nosuchgrid"],
        "--source-depth",
        "nosuchgrid",
    )


def test_distill_needs_a_caloclouds_teacher(capsys, files, tmp_path):
    d = yaml.safe_load(files["cfg"].read_text())
    d["model"] = {"name": "epic_gan", "point_dim": 4, "global_dim": 4, "hidden": 8, "layers": 1}
    d["train"]["out"] = str(tmp_path / "gan")
    cfg = tmp_path / "gan.yaml"
    cfg.write_text(yaml.safe_dump(d))
    assert main(["train", str(cfg), "-q"]) == 0
    dcfg = tmp_path / "d.yaml"
    dcfg.write_text(yaml.safe_dump({"model": {"name": "consistency", "teacher": "x"}}))
    refused(
        capsys,
        ["distill", str(tmp_path / "gan" / "checkpoint.pt"), str(dcfg)],
        "caloclouds",
        "epic_gan",
    )


def test_internal_errors_are_one_line_with_a_hint(capsys, monkeypatch, files):
    import pointcalo.showers

    def boom(*a, **k):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(pointcalo.showers, "summary", boom)
    err = refused(capsys, ["info", str(files["h5"])], "internal error", "--debug", code=1)
    assert "ZeroDivisionError" in err
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "info", str(files["h5"])])


def test_ctrl_c_during_convert(g4_path, tmp_path):
    import signal
    import sys
    import time

    out = tmp_path / "o.h5"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pointcalo.cli", "convert", str(g4_path), str(out), "-q"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".o.h5.*.tmp")):
        time.sleep(0.05)  # converting has begun
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1].strip()
    assert proc.returncode == 130, err
    assert err == "error: interrupted"
    assert not list(tmp_path.iterdir())  # no output, no temporary


def test_a_voxel_file_where_point_showers_are_needed(tmp_path, capsys):
    """A CaloChallenge voxel file given to a command that reads point showers (info, the point
    classifier) says what it is, in one line, from the shower reader itself."""
    from voxelize.calochallenge_files import write_calochallenge

    vox = write_calochallenge(tmp_path / "vox.h5", np.full(20, 5e4), np.ones((20, 6480)))
    refused(capsys, ["info", str(vox)], "vox.h5", "CaloChallenge voxel file")
    files = ["--reference", str(vox), "--generated", str(vox), "--grid", "calochallenge-2"]
    args = ["evaluate", *files, "--point-classifier", "--out", str(tmp_path / "ev")]
    refused(capsys, args, "vox.h5", "not point showers")


@pytest.mark.parametrize("command", ["evaluate", "voxelize"])
def test_ctrl_c_stops_long_work_between_chunks(g4_path, tmp_path, command):
    """Ctrl-C is acted on at the next chunk of the input, not after the whole file: evaluate
    used to finish and write its full report first, voxelize its whole output, and only then
    exit 130; now neither output appears (no timing is asserted: the machine is shared)."""
    import signal
    import sys
    import time

    out = tmp_path / "out"
    args = {
        "evaluate": ["evaluate", "--reference", str(g4_path), "--generated", str(g4_path),
                     "--out", str(out), "-q"],
        "voxelize": ["voxelize", str(g4_path), str(tmp_path / "v.h5"), "--grid", "ild", "-q"],
    }[command]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "pointcalo.cli", *args], stderr=subprocess.PIPE, text=True
    )
    time.sleep(4.0)  # well into the 8,750 showers (tens of seconds of work)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=300)[1].strip()
    assert proc.returncode == 130, err
    assert not (out / "metrics.json").exists() and not (tmp_path / "v.h5").exists()
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_checkpoint_stripped_of_its_checksum_is_refused(tmp_path, capsys):
    """Changing the weights and deleting the checksum used to pass: the check ran only when
    the entry was present."""
    import torch

    from pointcalo.pretrained import resolve

    state = torch.load(resolve("ild-photon-cm"), weights_only=True)
    first = next(k for k, v in state["model"].items() if v.is_floating_point())
    state["model"][first] = state["model"][first] + 1.0
    del state["checksum"]
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    refused(capsys, ["sample", str(bad), "--n", "2", "-o", str(tmp_path / "g.h5")],
            "bad.pt", "without its checksum")  # fmt: skip
    assert not (tmp_path / "g.h5").exists()


def test_empty_and_cold_inputs_are_named_errors(tmp_path, capsys):
    """A split of a file with no showers, --energies-from an empty file, and a generated
    sample with no cell above threshold (an untrained model): one-line errors, nothing
    written (they wrote three empty files, and exited 1 with numpy's messages)."""
    from pointcalo import io
    from pointcalo.showers import make_showers
    from tests.conftest import random_showers

    empty = tmp_path / "empty.h5"
    io.write(random_showers(3)[:0], empty)
    refused(capsys, ["split", str(empty), "--out", str(tmp_path / "s")], "empty.h5", "0 showers")
    assert not (tmp_path / "s").exists()
    args = ["sample", "ild-photon-cm", "--energies-from", str(empty), "-o", str(tmp_path / "g.h5")]
    refused(capsys, args, "--energies-from", "holds no showers")
    ref = tmp_path / "ref.h5"
    io.write(random_showers(200, seed=1), ref)
    n = 200
    pts = {
        "E": np.full(5 * n, 0.01, np.float32),
        "x": np.zeros(5 * n, np.float32),
        "y": np.zeros(5 * n, np.float32),
        "layer": np.zeros(5 * n, np.int32),
    }
    cold = tmp_path / "cold.h5"
    io.write(make_showers(np.full(n, 5e4, np.float32), pts, counts=np.full(n, 5)), cold)
    for command in ("evaluate", "compare"):
        out = tmp_path / command
        args = [command, "--reference", str(ref), "--generated", str(cold), "--out", str(out), "-q"]
        refused(capsys, args, "cold.h5", "no cell_energy to compare")
        assert not out.exists() or not any(out.iterdir())


def test_a_symlink_planted_at_the_temporary_name_is_never_written_through(tmp_path):
    """The atomic writers create their temporary file exclusively: a link planted at the name
    they would use (or any file there) is left alone and its target untouched."""
    import os

    from pointcalo import io
    from tests.conftest import random_showers

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out.h5"
    (tmp_path / f".out.h5.{os.getpid()}.tmp").symlink_to(victim)
    io.write(random_showers(5), out)
    assert victim.read_text() == "precious"
    assert len(io.read(out)) == 5
    assert (tmp_path / f".out.h5.{os.getpid()}.tmp").is_symlink()  # not ours: not removed


def test_public_api_refuses_bad_arguments_with_its_own_errors(tmp_path):
    """The Python API names the argument (it accepted negative energies and float layers into
    voxels, a decreasing ptr, a negative threshold, k = 0 and chunk_size = 0)."""
    import voxelize as vx
    from pointcalo import io
    from pointcalo.errors import PointcaloError
    from pointcalo.metrics import compute, evaluate
    from tests.conftest import random_showers

    pts = {
        "E": np.array([1.0, -1.0]),
        "x": np.zeros(2),
        "y": np.zeros(2),
        "layer": np.array([0, 1]),
    }
    with pytest.raises(vx.GridError, match="points/E: negative energy at point 1"):
        vx.project(pts, vx.ild())
    with pytest.raises(vx.GridError, match="points/layer: layers must be whole numbers"):
        vx.project({**pts, "E": np.ones(2), "layer": np.array([0.5, 1.0])}, vx.ild())
    with pytest.raises(vx.GridError, match="ptr: offsets must not decrease"):
        vx.project({**pts, "E": np.ones(2), "ptr": np.array([0, 2, 1, 2])}, vx.ild())
    showers = random_showers(30)
    with pytest.raises(PointcaloError, match="threshold must be a finite number >= 0"):
        compute(showers, threshold=-1.0)
    with pytest.raises(PointcaloError, match="k \\(batches\\) must be >= 1"):
        evaluate(showers, showers, k=0)
    path = tmp_path / "s.h5"
    io.write(showers, path)
    with pytest.raises(PointcaloError, match="chunk_size must be >= 1"):
        next(io.iter_showers(path, chunk_size=0))


def test_to_torch_and_to_points_refuse_what_the_data_model_forbids():
    import awkward as ak

    import voxelize as vx
    from pointcalo.errors import ShowerFormatError
    from pointcalo.showers import to_torch

    pts = ak.zip({"E": [[np.nan, 1.0]], "x": [[0.0, 1.0]], "y": [[0.0, 1.0]], "layer": [[0, 1]]})
    raw = ak.zip({"incident_energy": [5e4], "points": pts}, depth_limit=1)
    with pytest.raises(ShowerFormatError, match="points/E: non-finite"):
        to_torch(raw)
    v = np.zeros((1, vx.ild().n_voxels))
    v[0, 3] = -1.0
    with pytest.raises(vx.GridError, match="voxels: negative energies"):
        vx.to_points(v, vx.ild())


class _Payload:
    """Pickles as a call to ``os.system``: what a malicious checkpoint would hold."""

    def __reduce__(self):
        import os

        return (os.system, ("touch pwned",))


def test_a_pickled_checkpoint_is_refused_in_one_quiet_line(capsys, tmp_path, monkeypatch):
    import torch

    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "evil.pt"
    torch.save({"config": _Payload(), "model": {}}, bad)
    err = refused(capsys, ["sample", str(bad), "-o", str(tmp_path / "g.h5"), "-q"], str(bad))
    assert "pickled Python objects" in err and "weights_only" not in err
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "g.h5").exists()


def test_an_interrupted_split_leaves_nothing_behind(tmp_path, monkeypatch):
    """Ctrl-C after the first part: the part is removed with the folder split made; a folder
    that was there before, and what it held, stay."""
    from pointcalo import interrupts
    from pointcalo.io import split as split_module

    src = tmp_path / "s.h5"
    io.write(random_showers(30), src)
    calls = []

    def interrupt_second():
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(interrupts, "check", interrupt_second)
    with pytest.raises(KeyboardInterrupt):
        split_module.split_file(src, tmp_path / "new")
    assert not (tmp_path / "new").exists()
    calls.clear()
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "mine.txt").write_text("keep")
    with pytest.raises(KeyboardInterrupt):
        split_module.split_file(src, tmp_path / "old")
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["mine.txt"]


def test_a_shipped_model_must_match_its_cards_checksum(capsys, tmp_path, monkeypatch):
    """A shipped model's file swapped for another valid checkpoint is refused by name."""
    from pointcalo import pretrained
    from pointcalo.generation import load_model

    card = pretrained.card("ild-photon-cm")
    assert len(card["checksum"]) == 64
    assert load_model("ild-photon-cm").cfg.model.name == "consistency"
    other = pretrained.card("ild-photon-cc")["checksum"]
    monkeypatch.setattr(pretrained, "card", lambda name: {**card, "checksum": other})
    refused(capsys, ["sample", "ild-photon-cm", "-o", str(tmp_path / "g.h5"), "-q"],
            "ild-photon-cm.pt", "checksum differs")  # fmt: skip
    assert not (tmp_path / "g.h5").exists()
