from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pointcalo import io
from pointcalo.cli import main
from pointcalo.clouds import SHOWERS, Normalizer, PointCloudData, batch_order, from_showers
from pointcalo.config import RunConfig, load_config, validate_config
from pointcalo.errors import ConfigError
from pointcalo.generation import generate, load_model
from pointcalo.models.epic_gan import EPiCGAN, EPiCGANConfig
from pointcalo.nn import EPiCLayer, batch_index, segment_mean, segment_sum
from pointcalo.streams import cloud_generators, cloud_noise
from pointcalo.train.engine import ema_update, lr_factor, train
from tests.conftest import random_showers, train_on_one_and_two_ranks

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "point_dim": 8,
    "global_dim": 4,
    "hidden": 16,
    "layers": 2,
    "z_dim": 3,
    "g_dim": 4,
    "critic_layers": 1,
}


def tiny_config(tmp_path: Path, model: dict | None = None, **train) -> RunConfig:
    return validate_config(
        {
            "model": TINY | (model or {}),
            "train": {
                "steps": 6,
                "batch_size": 8,
                "log_every": 1,
                "checkpoint_every": 3,
                "warmup_steps": 2,
                "device": "cpu",
                "out": str(tmp_path / "run"),
                **train,
            },
            "data": {"val_fraction": 0.0},
        }
    )


@pytest.fixture
def clouds() -> PointCloudData:
    return from_showers(random_showers(64, seed=4))


def _ragged(counts, dim, seed=0):
    g = torch.Generator().manual_seed(seed)
    ptr = torch.tensor(np.concatenate([[0], np.cumsum(counts)]))
    return torch.randn(int(ptr[-1]), dim, generator=g), ptr


def test_segment_pooling_matches_loops():
    x, ptr = _ragged([3, 0, 5, 1], 4)
    s, m = segment_sum(x, ptr), segment_mean(x, ptr)
    for b in range(4):
        part = x[ptr[b] : ptr[b + 1]]
        torch.testing.assert_close(s[b], part.sum(0))
        torch.testing.assert_close(m[b], part.mean(0) if len(part) else torch.zeros(4))


def test_epic_layer_is_permutation_equivariant():
    torch.manual_seed(0)
    layer = EPiCLayer(6, 5, 16, 2, 0.1)
    x, ptr = _ragged([4, 7, 2], 6)
    g, cond = torch.randn(3, 5), torch.randn(3, 2)
    perm = torch.cat([torch.randperm(int(ptr[b + 1] - ptr[b])) + ptr[b] for b in range(3)])
    y, h = layer(x, g, cond, ptr, batch_index(ptr))
    y_p, h_p = layer(x[perm], g, cond, ptr, batch_index(ptr))
    torch.testing.assert_close(y_p, y[perm])  # points permute with the input
    torch.testing.assert_close(h_p, h)  # pooled / global outputs unchanged


def _model(mean_points=10.0) -> EPiCGAN:
    torch.manual_seed(1)
    return EPiCGAN(EPiCGANConfig(**TINY), 4, mean_points)


def test_ragged_batch_equals_showers_one_by_one():
    model = _model()
    counts = np.array([5, 1, 9])
    gens = cloud_generators([(0, i) for i in range(3)])
    z, zg = cloud_noise(gens, counts, 3, 4)
    cond = torch.randn(3, 2)
    ptr = torch.tensor([0, 5, 6, 15])
    x = model.generator(z, zg, cond, ptr)
    scores = model.critic(x, cond, ptr)
    for b in range(3):
        sl = slice(int(ptr[b]), int(ptr[b + 1]))
        one = torch.tensor([0, int(counts[b])])
        xb = model.generator(z[sl], zg[b : b + 1], cond[b : b + 1], one)
        torch.testing.assert_close(xb, x[sl], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(
            model.critic(xb, cond[b : b + 1], one), scores[b : b + 1], rtol=1e-5, atol=1e-6
        )


def test_every_parameter_receives_a_gradient():
    model = _model()
    counts = np.array([4, 6])
    z, zg = cloud_noise(cloud_generators([(0, 0), (0, 1)]), counts, 3, 4)
    cond, ptr = torch.randn(2, 2), torch.tensor([0, 4, 10])
    fake = model.generator(z, zg, cond, ptr)
    loss = model.critic(fake, cond, ptr).pow(2).mean() + model.count.nll(cond)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing


def test_losses_decrease_on_a_toy_set():
    """Least-squares critic against a fixed generator, the generator against a fixed critic,
    and the point-count flow's likelihood: each goes down in a few steps."""
    model = _model()
    counts = np.full(16, 6)
    ptr = torch.tensor(np.concatenate([[0], np.cumsum(counts)]))
    real = torch.randn(int(ptr[-1]), 4) + 2.0
    cond = torch.randn(16, 2)
    z, zg = cloud_noise(cloud_generators([(0, i) for i in range(16)]), counts, 3, 4)
    opt_d = torch.optim.Adam(model.critic.parameters(), 1e-2)
    opt_g = torch.optim.Adam(model.generator.parameters(), 1e-2)
    opt_n = torch.optim.Adam(model.count.parameters(), 1e-2)

    def d_loss():
        fake = model.generator(z, zg, cond, ptr).detach()
        return EPiCGAN.critic_loss(model.critic(real, cond, ptr), model.critic(fake, cond, ptr))

    def g_loss():
        return EPiCGAN.generator_loss(model.critic(model.generator(z, zg, cond, ptr), cond, ptr))

    for loss_fn, opt in ((d_loss, opt_d), (g_loss, opt_g), (lambda: model.count.nll(cond), opt_n)):
        first = loss_fn().item()
        for _ in range(30):
            opt.zero_grad()
            loss_fn().backward()
            opt.step()
        assert loss_fn().item() < 0.8 * first


def test_normalizer_round_trip_and_batches(clouds):
    norm = Normalizer.fit(SHOWERS, clouds.points, clouds.condition, clouds.counts)
    enc = norm.encode_points(clouds.points)
    dec = norm.decode_points(enc)
    np.testing.assert_allclose(dec["E"], clouds.points["E"], rtol=1e-4)
    np.testing.assert_array_equal(dec["layer"], clouds.points["layer"])  # dequantised at +0.5
    assert Normalizer.from_dict(norm.to_dict()).to_dict() == norm.to_dict()
    batches = batch_order(clouds.counts, 8, seed=0, epoch=0)
    assert len(batches) == 8 and len(np.unique(np.concatenate(batches))) == 64
    spans = [np.ptp(clouds.counts[b]) for b in batches]  # similar point counts in a batch
    assert np.mean(spans) < 0.5 * np.ptp(clouds.counts)
    again = batch_order(clouds.counts, 8, seed=0, epoch=0)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))


def test_lr_schedule_and_ema():
    assert lr_factor(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert lr_factor(100, 10, 100, 0.1) == pytest.approx(0.1)
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = a.weight.clone()
    ema_update(a, b, 0.9)
    torch.testing.assert_close(a.weight, 0.9 * before + 0.1 * b.weight)


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"train\.lr: Input should be greater than 0"):
        validate_config({"train": {"lr": -1}})
    with pytest.raises(ConfigError, match=r"model\.hiden: unknown field"):
        validate_config({"model": {"hiden": 3}})
    bad = tmp_path / "c.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    assert load_config(REPO / "configs" / "epic_gan.yaml").model.name == "epic_gan"
    assert main(["train", str(bad)]) == 2


def test_train_save_load_and_reproducible_sampling(tmp_path, clouds):
    cfg = tiny_config(tmp_path)
    ckpt = train(cfg, data=clouds, progress=False, log=lambda m: None)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5, 6]
    assert all(np.isfinite(r["loss_critic"]) for r in log)
    m = load_model(ckpt)
    assert m.cfg == cfg
    energy = np.array([20e3, 50e3, 80e3, 30e3, 60e3])
    a = generate(m.model, m.net, m.normalizer, energy, m.cfg, seed=3, batch_size=2)
    b = generate(m.model, m.net, m.normalizer, energy, m.cfg, seed=3, batch_size=5)
    c = generate(m.model, m.net, m.normalizer, energy, m.cfg, seed=4, batch_size=5)
    np.testing.assert_array_equal(a.offsets, b.offsets)  # a cloud does not depend on its batch
    for k in a.points:
        np.testing.assert_allclose(a.points[k], b.points[k], rtol=1e-5, atol=1e-6)
    assert not np.array_equal(a.points["x"][:5], c.points["x"][:5])


def test_sample_command(tmp_path, clouds):
    ckpt = train(tiny_config(tmp_path), data=clouds, progress=False, log=lambda m: None)
    out = tmp_path / "gen.h5"
    assert (
        main(
            [
                "sample",
                str(ckpt),
                "--n",
                "9",
                "--energy",
                "20:60",
                "-o",
                str(out),
                "-q",
                "--batch-size",
                "4",
            ]
        )
        == 0
    )
    showers = io.read(out)
    assert len(showers) == 9
    e = np.asarray(showers.incident_energy)
    assert e.min() >= 20e3 and e.max() <= 60e3
    assert main(["sample", str(tmp_path / "nope.pt"), "-o", str(tmp_path / "x.h5")]) == 2


def _write_cli_config(tmp_path: Path, steps: int, **train) -> Path:
    cfg = {
        "model": TINY,
        "data": {"val_fraction": 0.0},
        "train": {
            "steps": steps,
            "batch_size": 16,
            "log_every": 1,
            "checkpoint_every": 4,
            "device": "cpu",
            "warmup_steps": 2,
            **train,
        },
    }
    path = tmp_path / f"cfg_{steps}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _weights(ckpt: Path) -> dict[str, torch.Tensor]:
    return torch.load(ckpt, weights_only=True)["model"]


@pytest.mark.slow
def test_kill_9_then_resume_is_exact(tmp_path):
    data = io.write(random_showers(256, seed=9), tmp_path / "train.h5")
    cfg = _write_cli_config(tmp_path, steps=120)
    cmd = [sys.executable, "-m", "pointcalo.cli", "train", str(cfg), "--data", str(data), "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, "--out", str(killed)], env=env)
    log = killed / "log.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline:
        if (
            (killed / "checkpoint.pt").exists()
            and log.exists()
            and len(log.read_text().splitlines()) >= 10
        ):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(log.read_text().splitlines())
    assert done < 120, "training finished before it could be killed"
    first_ckpt = torch.load(killed / "checkpoint.pt", weights_only=True)["step"]
    assert 4 <= first_ckpt <= done
    subprocess.run([*cmd, "--out", str(killed), "--resume"], env=env, check=True)
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert done > first_ckpt  # the killed run had logged steps past its checkpoint
    assert steps == list(range(1, 121))  # continued from the checkpoint, each step logged once
    assert not list(killed.glob(".*.tmp"))  # a temporary of the killed run was cleaned up
    clean = tmp_path / "clean"
    subprocess.run([*cmd, "--out", str(clean)], env=env, check=True)
    a, b = _weights(killed / "checkpoint.pt"), _weights(clean / "checkpoint.pt")
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)  # exact


@pytest.mark.slow
def test_two_processes_match_one_process_with_the_combined_batch(tmp_path):
    data = io.write(random_showers(128, seed=10), tmp_path / "train.h5")
    cfg = _write_cli_config(tmp_path, steps=8, count_model_steps=8)
    a, b = train_on_one_and_two_ranks(cfg, data, tmp_path)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


def test_trains_on_jetnet_layout(tmp_path):
    from pointcalo.io.jetnet import read_jetnet, write_jetnet

    rng = np.random.default_rng(0)
    counts = rng.integers(5, 30, 48)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    pts = {
        "etarel": rng.normal(0, 0.1, offsets[-1]),
        "phirel": rng.normal(0, 0.1, offsets[-1]),
        "ptrel": rng.dirichlet(np.ones(3), offsets[-1])[:, 0] + 1e-3,
    }
    path = write_jetnet(tmp_path / "jets.h5", offsets, pts, rng.uniform(500, 1500, 48), 30)
    jets = read_jetnet(path)
    assert len(jets) == 48 and np.array_equal(jets.counts, counts)
    np.testing.assert_allclose(jets.points["etarel"], pts["etarel"], rtol=1e-6)
    cfg = validate_config(
        {
            "model": TINY,
            "data": {"format": "jetnet", "path": str(path), "val_fraction": 0.0},
            "train": {
                "steps": 4,
                "batch_size": 8,
                "device": "cpu",
                "out": str(tmp_path / "jetrun"),
                "checkpoint_every": 2,
            },
        }
    )
    ckpt = train(cfg, progress=False, log=lambda m: None)
    m = load_model(ckpt)
    out = generate(m.model, m.net, m.normalizer, np.array([800.0, 1200.0]), m.cfg, seed=0)
    assert set(out.points) == {"etarel", "phirel", "ptrel"} and np.all(out.points["ptrel"] > 0)


def test_dequantise_layer_switch(clouds):
    """``data.dequantise_layer: false`` keeps layers at their bin centre in training batches;
    the lattice features are dequantised either way."""
    clouds.normalizer = Normalizer.fit(SHOWERS, clouds.points, clouds.condition, clouds.counts)
    index = np.arange(4)
    layer = SHOWERS.features.index("layer")
    noisy = clouds.batch(index, rng=np.random.default_rng(0)).points.numpy()
    clouds.dequantise_integer = False
    fixed = clouds.batch(index, rng=np.random.default_rng(0)).points.numpy()
    middle = clouds.batch(index, rng=None).points.numpy()
    np.testing.assert_array_equal(fixed[:, layer], middle[:, layer])
    assert not np.array_equal(noisy[:, layer], middle[:, layer])
    x = SHOWERS.features.index("x")
    assert not np.array_equal(fixed[:, x], middle[:, x])  # x still dequantised on the lattice
    spread = (fixed[:, x] - middle[:, x]) * clouds.normalizer.std[x]
    assert np.abs(spread).max() <= SHOWERS.lattice_pitch / 2 + 1e-4


def test_batch_order_is_made_once_per_epoch(tmp_path, clouds, monkeypatch):
    import pointcalo.train.engine as engine

    calls = []
    real = engine.batch_order

    def counting(*args, **kwargs):
        calls.append(args[3])  # the epoch
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "batch_order", counting)
    cfg = tiny_config(tmp_path)
    train(cfg, data=clouds, progress=False, log=lambda m: None)
    assert calls == sorted(set(calls))  # one call per epoch, in order
    per_epoch = (len(clouds) - round(len(clouds) * cfg.data.val_fraction)) // cfg.train.batch_size
    assert len(calls) == -(-cfg.train.steps // per_epoch)


def test_generate_to_file_returns_what_it_wrote(tmp_path, clouds):
    from pointcalo.generation import generate_to_file

    ckpt = train(tiny_config(tmp_path), data=clouds, progress=False, log=lambda m: None)
    out = tmp_path / "g.h5"
    with io.open_writer(out) as w:
        n = generate_to_file(load_model(ckpt), w, 7, 10e3, 20e3, chunk=3)
    assert n == 7 == len(io.read(out))


def test_a_format_1_checkpoint_still_loads(tmp_path):
    """Checkpoints written before the noise embedding, widths, EMA warm-up and lattice fields
    existed are read with those switched off."""
    from tests.test_caloclouds import _tiny_run

    ckpt, _, _ = _tiny_run(tmp_path)
    state = torch.load(ckpt, weights_only=True)
    cfg = state["config"]
    cfg["model"].update(noise_embedding=0, flow_widths=False, hit_cell=0.0, flow_passes=None)
    legacy = validate_config(cfg)
    from pointcalo.clouds import Normalizer as N
    from pointcalo.models import registry

    model = registry.get("caloclouds").build(
        legacy, state["meta"], N.from_dict(state["normalizer"])
    )
    state["model"] = model.state_dict()
    state["ema"] = model.denoiser.state_dict()
    for key in (
        "noise_embedding",
        "flow_widths",
        "flow_lr",
        "hit_cell",
        "hit_threshold",
        "flow_passes",
    ):
        del state["config"]["model"][key]
    del state["config"]["train"]["ema_warmup"], state["config"]["train"]["snapshot_every"]
    del (
        state["normalizer"]["spec"]["lattice_features"],
        state["normalizer"]["spec"]["lattice_pitch"],
    )
    state["version"] = 1
    del state["checksum"]  # format 1 had none
    old = tmp_path / "old.pt"
    torch.save(state, old)
    m = load_model(old)
    assert m.cfg.model.noise_embedding == 0 and not m.cfg.model.flow_widths
    out = generate(m.model, m.net, m.normalizer, np.array([30e3]), m.cfg, seed=0)
    assert np.diff(out.offsets)[0] >= 1


def test_warm_up_ema_forgets_the_initialisation():
    """A constant 0.999 decay keeps 0.999^t of the random initial weights (13.5 % after 2,000
    steps); the warm-up schedule starts from the first trained weights."""
    from pointcalo.train.engine import ema_decay

    assert ema_decay(0, 0.999, True) == 0.0  # the first update copies the weights
    assert ema_decay(10, 0.999, True) == pytest.approx(1 - 11 ** (-2 / 3))
    assert ema_decay(10**6, 0.999, True) == 0.999  # capped at the configured decay
    assert ema_decay(0, 0.999, False) == 0.999
    lin = lambda: torch.nn.Linear(3, 3, dtype=torch.float64)  # noqa: E731
    init, trained, ema = lin(), lin(), lin()
    ema.load_state_dict(init.state_dict())
    for step in range(2000):
        ema_update(ema, trained, ema_decay(step, 0.999, True))
    torch.testing.assert_close(ema.weight, trained.weight)  # no trace of init left
    const = lin()
    const.load_state_dict(init.state_dict())
    for _ in range(2000):
        ema_update(const, trained, 0.999)
    share = (const.weight - trained.weight) / (init.weight - trained.weight)
    torch.testing.assert_close(share, torch.full_like(share, 0.999**2000))  # 13.5 % is init


def test_generated_points_sit_on_the_subcell_lattice():
    norm = Normalizer(SHOWERS, np.zeros(4), np.ones(4), np.zeros(2), np.ones(2))
    x = np.array([[0.0, 0.1, -0.1, 3.0], [0.0, 0.9, 2.5, 29.7]])
    out = norm.decode_points(x)
    p = SHOWERS.lattice_pitch
    for k in ("x", "y"):
        cell = out[k] / p - 0.5
        np.testing.assert_allclose(cell, np.rint(cell), atol=1e-5)  # sub-cell centres
        assert np.all(np.abs(out[k] - x[:, SHOWERS.features.index(k)]) <= p / 2 + 1e-6)


def test_epic_layer_matches_the_concatenated_form():
    """The layer's per-shower shortcut equals the paper's form on concatenated rows."""
    torch.manual_seed(0)
    layer = EPiCLayer(6, 4, 16, 3, 0.1)
    x, ptr = torch.randn(9, 6), torch.tensor([0, 4, 9])
    g, cond, batch = torch.randn(2, 4), torch.randn(2, 3), batch_index(torch.tensor([0, 4, 9]))
    out, g_new = layer(x, g, cond, ptr, batch)
    pooled = torch.cat([segment_mean(x, ptr, batch), 0.1 * segment_sum(x, ptr, batch), g, cond], 1)
    g_ref = g + layer.act(layer.global2(layer.act(layer.global1(pooled))))
    local = torch.cat([x, g_ref[batch], cond[batch]], 1)
    ref = x + layer.act(layer.local2(layer.act(layer.local1(local))))
    torch.testing.assert_close(g_new, g_ref)
    torch.testing.assert_close(out, ref)


def test_point_count_flow_sizes_come_from_the_config():
    small = EPiCGAN(EPiCGANConfig(**TINY, count_hidden=8, count_transforms=1), 4, 10.0)
    large = EPiCGAN(EPiCGANConfig(**TINY, count_hidden=64, count_transforms=3), 4, 10.0)
    n = [sum(p.numel() for p in m.count.parameters()) for m in (small, large)]
    assert n[0] < n[1]


def test_a_second_training_into_the_same_folder_is_refused(tmp_path, clouds):
    """Two trainings writing one folder would interleave checkpoints and logs (it happened
    with a duplicated background command): the second stops with a one-line error naming the
    folder and the holder; the lock goes with its holder."""
    import fcntl

    from pointcalo.errors import PointcaloError

    cfg = tiny_config(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    with (out / "train.lock").open("a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 12345")
        held.flush()
        with pytest.raises(PointcaloError, match=r"run: another training \(pid 12345\)"):
            train(cfg, data=clouds, progress=False, log=lambda m: None)
        assert not (out / "checkpoint.pt").exists()
    ckpt = train(cfg, data=clouds, progress=False, log=lambda m: None)  # free again
    assert ckpt.exists()
    # a lock held by a process that has died is no lock: flock goes with the process
    code = f"import fcntl; f = open({str(out / 'train.lock')!r}, 'a+'); fcntl.flock(f, 2)"
    subprocess.run([sys.executable, "-c", code], check=True)
    train(cfg, data=clouds, resume=True, progress=False, log=lambda m: None)


def test_a_failed_training_leaves_nothing_behind(tmp_path, clouds):
    """A run that fails before its first checkpoint (here: a batch larger than the data)
    removes its lock and the folder it created; a folder that existed keeps what was there."""
    from pointcalo.errors import PointcaloError

    cfg = tiny_config(tmp_path, batch_size=1000)
    with pytest.raises(PointcaloError):
        train(cfg, data=clouds, progress=False, log=lambda m: None)
    assert not (tmp_path / "run").exists()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(PointcaloError):
        train(cfg, data=clouds, progress=False, log=lambda m: None)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["notes.txt"]
    ok = train(tiny_config(tmp_path), data=clouds, progress=False, log=lambda m: None)
    assert ok.exists() and not (tmp_path / "run" / "train.lock").exists()


def test_shower_flow_epic_gan_is_conditioned_on_and_calibrated_to_its_flow(tmp_path, clouds):
    from pointcalo.clouds import GeneratedClouds
    from pointcalo.models import registry
    from pointcalo.models.registry import GenerationBatch
    from pointcalo.models.showerflow.features import draw_features, n_shower_features

    cfg = tiny_config(tmp_path, {"shower_flow": True, "flow_transforms": 1, "flow_hidden": 8})
    ckpt = train(cfg, data=clouds, progress=False, log=lambda m: None)
    m = load_model(ckpt)
    assert m.model.flow is not None and not hasattr(m.model, "count")
    n_feats = n_shower_features(30, widths=True)
    assert m.model.generator.global_in.in_features == TINY["g_dim"] + 1 + n_feats
    energy = np.array([20e3, 50e3, 80e3, 30e3, 60e3])
    a, b = (
        GeneratedClouds.join(
            [
                registry.get("epic_gan").generate(
                    m.model, m.net, m.normalizer, m.cfg, GenerationBatch({"e": e}, 3, i, "cpu")
                )
                for i, e in parts
            ]
        )
        for parts in ([(0, energy[:2]), (2, energy[2:4]), (4, energy[4:])], [(0, energy)])
    )
    np.testing.assert_allclose(a.points["E"], b.points["E"], rtol=1e-5, atol=1e-7)
    # the flow's draw for each shower (its stream's first numbers) is what the points obey
    gens = cloud_generators([(3, i) for i in range(5)])
    _, feats, counts = draw_features(m.model.flow, m.normalizer, energy, gens, 20000)
    feats = feats.numpy()
    np.testing.assert_array_equal(np.diff(a.offsets), counts.numpy())
    shower = np.repeat(np.arange(5), np.diff(a.offsets))
    e_vis = np.bincount(shower, a.points["E"].astype(np.float64), 5)
    np.testing.assert_allclose(e_vis, np.exp(feats[:, 1]) * energy, rtol=1e-4)
    per_layer = np.bincount(shower * 30 + a.points["layer"], minlength=150).reshape(5, 30)
    want = feats[:, 5:35] / feats[:, 5:35].clip(0, None).sum(1, keepdims=True)
    assert np.abs(per_layer - want.clip(0, None) * counts.numpy()[:, None]).max() < 1.0 + 1e-9
