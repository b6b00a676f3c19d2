"""Grid models (pointcalo.models.voxels and the grid families): projection, scaling, shapes,
gradients, and that a model learns a toy distribution through the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

import voxelize as vx
from pointcalo.clouds import from_showers
from pointcalo.config import validate_config
from pointcalo.errors import ConfigError
from pointcalo.generation import generate, load_model
from pointcalo.models.grid_vae import GridVAE, GridVAEConfig
from pointcalo.models.voxels import VoxelScale, grid_shape, project_clouds
from pointcalo.showers import make_showers
from pointcalo.train.engine import train
from tests.conftest import random_showers

REPO = Path(__file__).resolve().parents[1]

TINY = {
    "grid_vae": {"channels": 2, "latent": 4},
    "grid_gan": {"channels": 2, "latent": 4},
    "grid_flow": {"transforms": 1, "hidden": 8},
}
#: a 2-layer grid of 4 x 4 cells of 10 mm
TOY_GRID = {
    "kind": "cartesian",
    "name": "toy",
    "n_layers": 2,
    "cells": [4, 4],
    "cell_size": [10.0, 10.0],
    "origin": [-20.0, -20.0],
}
#: toy showers: energy E_inc * 1e-3 * pattern in (layer, cell) with 10 % noise; showers below
#: 50 GeV follow LOW, above it HIGH (so the mean shower alone does not fit either)
LOW = np.zeros((2, 16))
LOW[0, 5], LOW[0, 6], LOW[1, 5], LOW[1, 10] = 0.5, 0.2, 0.2, 0.1
HIGH = np.zeros((2, 16))
HIGH[0, 9], HIGH[1, 9], HIGH[1, 10], HIGH[1, 14] = 0.3, 0.4, 0.2, 0.1


def _toy_showers(n: int, seed: int):
    rng = np.random.default_rng(seed)
    inc = rng.uniform(10e3, 90e3, n)
    cols = {k: [] for k in ("E", "x", "y", "layer")}
    counts = []
    for e_inc in inc:
        pattern = LOW if e_inc < 50e3 else HIGH
        layer, cell = np.nonzero(pattern)
        k = len(layer)
        cols["E"].append(e_inc * 1e-3 * pattern[layer, cell] * rng.normal(1, 0.1, k))
        cols["x"].append((cell % 4 - 1.5) * 10.0 + rng.uniform(-4, 4, k))
        cols["y"].append((cell // 4 - 1.5) * 10.0 + rng.uniform(-4, 4, k))
        cols["layer"].append(layer)
        counts.append(k)
    points = {
        "E": np.concatenate(cols["E"]).astype(np.float32),
        "x": np.concatenate(cols["x"]).astype(np.float32),
        "y": np.concatenate(cols["y"]).astype(np.float32),
        "layer": np.concatenate(cols["layer"]).astype(np.int32),
    }
    return make_showers(inc, points, counts=np.asarray(counts))


def test_projection_keeps_the_energy_and_the_scale_round_trips():
    showers = random_showers(30, seed=3)
    data = from_showers(showers)
    grid = vx.load_grid("ild-cylindrical")
    voxels = project_clouds(data, grid)
    ref = vx.project(showers, grid)
    np.testing.assert_allclose(voxels, ref.voxels, rtol=1e-6)
    total = np.asarray([float(np.sum(s)) for s in showers.points.E.to_list()])
    np.testing.assert_allclose(voxels.sum(1) + ref.outside, total, rtol=1e-5)
    scale = VoxelScale.fit(voxels, data.condition)
    y = scale.encode(voxels)
    assert y.min() >= 0 and y.max() <= 1 + 1e-6
    np.testing.assert_allclose(scale.decode(y), voxels, rtol=1e-4, atol=1e-6)
    assert grid_shape(grid) == (30, 16, 9)
    with pytest.raises(ConfigError, match="one shape for every layer"):
        grid_shape(vx.load_grid("calogan"))


def test_vae_shapes_gradients_and_non_negative_energies():
    torch.manual_seed(0)
    model = GridVAE(GridVAEConfig(channels=2, latent=4), (30, 16, 9))
    y = torch.rand(3, 30, 16, 9)
    out = model.loss(y, torch.randn(3, 1), torch.randn(3, 4))
    out["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing
    with torch.no_grad():
        dec = model.decoder(torch.randn(5, model.noise_dim), torch.randn(5, 1))
    assert dec.shape == (5, 30, 16, 9)
    energy = VoxelScale(8.0, 10.0, 1.0).decode(dec.numpy() - 0.2)  # a linear output that
    assert energy.min() == 0.0 and np.isfinite(energy).all()  # is < 0 means no energy


def test_encoder_and_decoder_stay_small_on_the_ild_grid():
    """The dense maps act on a coarse grid: halved twice on the ILD 30x30x30 grid (14 M
    encoder weights without the second halving), once on the cylindrical one."""
    from pointcalo.nn.grid import COARSE_VOXELS, GridDecoder, GridEncoder, pyramid

    assert pyramid((30, 30, 30)) == [(30, 30, 30), (15, 15, 15), (8, 8, 8)]
    assert pyramid((30, 16, 9)) == [(30, 16, 9), (15, 8, 5)]
    assert np.prod(pyramid((45, 45, 45))[-1]) <= COARSE_VOXELS
    for shape in [(30, 30, 30), (7, 5, 3)]:
        enc, dec = GridEncoder(shape, 8, 33), GridDecoder(shape, 8, 33)
        assert sum(p.numel() for p in enc.parameters()) < 2.5e6
        assert sum(p.numel() for p in dec.parameters()) < 1.2e6
        x = torch.randn(2, *shape, requires_grad=True)
        assert dec(enc(x, torch.randn(2, 1))).shape == (2, *shape)
        enc(x, torch.randn(2, 1)).sum().backward()  # every voxel reaches the code
        assert (x.grad != 0).all()


def test_bib_ae_post_processor_and_critic():
    """The post-processor starts as the identity and learns from its sorted-energy loss alone
    (no gradient into the VAE); the sorted W2 ignores where a value sits; the critic is a
    training part only (not in the sampling network)."""
    from pointcalo.models.grid_vae.model import sorted_w2

    a = torch.tensor([[3.0, 1.0, 2.0, 0.0]])
    assert sorted_w2(a, a[:, [2, 0, 3, 1]]) == 0  # a permutation: same distribution
    assert torch.isclose(sorted_w2(a, a + 1.0), torch.tensor(1.0))
    torch.manual_seed(0)
    shape = (30, 16, 9)
    cfg = GridVAEConfig(channels=2, latent=4, post_processor=True, critic=True)
    model = GridVAE(cfg, shape)
    plain = GridVAE(GridVAEConfig(channels=2, latent=4), shape)
    plain.decoder.net.load_state_dict(model.decoder.net.state_dict())
    noise, cond = torch.randn(3, model.noise_dim), torch.randn(3, 1)
    with torch.no_grad():
        torch.testing.assert_close(model.decoder(noise, cond), plain.decoder(noise, cond))
    y = torch.rand(3, *shape)
    out = model.loss(y, torch.randn(3, 1), torch.randn(3, 4), torch.randn(3, *shape))
    out["loss_post"].backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert all(p.grad is None for p in model.decoder.net.parameters())
    assert model.decoder.post.net[-1].weight.grad.abs().sum() > 0
    assert "critic" not in dict(model.decoder.named_children())


@pytest.mark.parametrize("name", ["grid_vae", "grid_vae_bib", "grid_gan", "grid_flow"])
def test_learns_a_toy_distribution(tmp_path, name):
    """Two-layer showers whose pattern depends on the incident energy (LOW below 50 GeV, HIGH
    above), scaled by it: after training, showers generated at 20 and at 80 GeV put their
    energy where LOW and HIGH do (every cell's share within 0.08), and 80 GeV showers deposit
    about 4 times the energy of 20 GeV ones."""
    grid_file = tmp_path / "toy.yaml"
    grid_file.write_text(yaml.safe_dump(TOY_GRID))
    sizes = {
        "grid_vae": {"channels": 4, "latent": 4},
        # BIB-AE's switches on: the critic and the post-processor must not spoil the fit
        "grid_vae_bib": {"channels": 4, "latent": 4, "critic": True, "post_processor": True},
        "grid_gan": {"channels": 4, "latent": 4},
        "grid_flow": {"transforms": 2, "hidden": 32},
    }
    steps = {"grid_vae": 1500, "grid_vae_bib": 1500, "grid_gan": 2000, "grid_flow": 600}[name]
    family = name.removesuffix("_bib")
    cfg = validate_config(
        {
            "model": {"name": family, "grid": str(grid_file), **sizes[name]},
            "train": {
                "steps": steps,
                "batch_size": 32,
                "lr": 3e-3,
                "lr_critic": 3e-3,
                "device": "cpu",
                "warmup_steps": 10,
                "checkpoint_every": steps,
                "out": str(tmp_path / "run"),
            },
            "data": {"val_fraction": 0.0},
        }
    )
    data = from_showers(_toy_showers(512, 0))
    m = load_model(train(cfg, data=data, progress=False, log=lambda msg: None))
    energy = np.repeat([20e3, 80e3], 200)
    gen = generate(m.model, m.net, m.normalizer, energy, m.cfg, seed=1)
    cols = {k: v for k, v in gen.points.items()}
    cols["ptr"] = gen.offsets
    vox = vx.project(cols, vx.load_grid(str(grid_file))).voxels.reshape(-1, 2, 16)
    for part, pattern in ((vox[:200], LOW), (vox[200:], HIGH)):
        share = part.mean(0) / part.mean(0).sum()
        assert np.abs(share - pattern / pattern.sum()).max() < 0.08, share.round(3)
    low, high = vox[:200].sum((1, 2)).mean(), vox[200:].sum((1, 2)).mean()
    assert 3.0 < high / low < 5.0


@pytest.mark.parametrize(
    "config",
    [f"grid_{m}{g}.yaml" for m in ("vae", "gan", "flow") for g in ("", "_ild")],
)
def test_shipped_configs_train_on_both_grids(tmp_path, config):
    """`pointcalo train configs/<grid model>.yaml` (two steps, tiny sizes) on both grids, then
    `pointcalo sample`, and the CaloChallenge-layout file of the generated voxels."""
    from pointcalo.config import load_config
    from pointcalo.models.voxels import write_voxels
    from voxelize.calochallenge_files import read_calochallenge

    cfg = load_config(REPO / "configs" / config)
    cfg = cfg.model_copy(
        update={
            "model": cfg.model.model_copy(update=TINY[cfg.model.name]),
            "data": cfg.data.model_copy(update={"val_fraction": 0.0}),
            "train": cfg.train.model_copy(
                update={"steps": 2, "batch_size": 8, "device": "cpu", "out": str(tmp_path / "r")}
            ),
        }
    )
    m = load_model(train(cfg, data=from_showers(random_showers(16, seed=1)), progress=False))
    grid = vx.load_grid(cfg.model.grid)
    assert m.model.shape == grid_shape(grid)
    energy = np.array([20e3, 60e3])
    clouds = generate(m.model, m.net, m.normalizer, energy, m.cfg, seed=0, batch_size=1)
    store = [clouds.voxels]
    assert store[0].shape == (2, grid.n_voxels) and np.all(store[0] >= 0)
    path = write_voxels(tmp_path / "vox.h5", store[0], energy)
    inc, vox = read_calochallenge(path, grid)
    np.testing.assert_allclose(inc, energy)
    np.testing.assert_allclose(vox, store[0], rtol=1e-6)
    # the point showers project back onto the voxels they came from
    cols = {**clouds.points, "ptr": clouds.offsets}
    np.testing.assert_allclose(vx.project(cols, grid).voxels, store[0], rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["grid_vae_bib", "grid_gan", "grid_flow"])
def test_two_processes_match_one_process(tmp_path, name):
    """Data-parallel training (torchrun, 2 gloo ranks, half the batch each) gives the weights of
    one process with the whole batch: every trained part's gradients are averaged (the VAE,
    its critic and post-processor, the GAN's critic and the flows do not go through DDP)."""
    from pointcalo import io
    from tests.conftest import train_on_one_and_two_ranks

    grid_file = tmp_path / "toy.yaml"
    grid_file.write_text(yaml.safe_dump(TOY_GRID))
    model = {"grid_vae_bib": {"critic": True, "post_processor": True}}.get(name, {})
    family = name.removesuffix("_bib")
    cfg = {
        "model": {"name": family, "grid": str(grid_file), **TINY[family], **model},
        "data": {"val_fraction": 0.0},
        "train": {"steps": 6, "batch_size": 16, "checkpoint_every": 6, "device": "cpu"},
    }
    if family == "grid_gan":
        cfg["model"]["n_critic"] = 2  # generator steps too
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    data = io.write(_toy_showers(64, 3), tmp_path / "train.h5")
    a, b = train_on_one_and_two_ranks(path, data, tmp_path)
    assert any(k.endswith("weight") for k in a)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5, msg=k)


def test_a_grid_model_trains_on_a_calochallenge_file(tmp_path, capsys):
    """``pointcalo train grid_flow --data dataset_2-like.hdf5``: the challenge's own layout (no
    grid attribute; the grid told by its 6,480 voxels), one point per voxel at its centre,
    which projects back onto the file's voxels exactly; the model takes the file's grid, and
    its samples are on it."""
    import h5py
    import yaml

    from pointcalo import io
    from pointcalo.cli import main
    from pointcalo.io.calochallenge import file_grid, read_calochallenge_showers

    grid = vx.load_grid("calochallenge-2")
    rng = np.random.default_rng(0)
    voxels = rng.exponential(50.0, (24, grid.n_voxels)) * (rng.random((24, grid.n_voxels)) < 0.3)
    path = tmp_path / "dataset_2_1.hdf5"
    with h5py.File(path, "w") as f:  # as the challenge ships them: no grid attribute
        f["incident_energies"] = rng.uniform(1e3, 1e5, (24, 1))
        f["showers"] = voxels
    assert file_grid(path).name == "calochallenge-2"
    showers = read_calochallenge_showers(path, grid, mode="centre")
    back = vx.project(showers, grid).voxels
    np.testing.assert_allclose(back, voxels, rtol=1e-5, atol=1e-3)
    config = {
        "model": {"name": "grid_flow", **TINY["grid_flow"]},
        "data": {"val_fraction": 0.0},
        "train": {"steps": 2, "batch_size": 8, "device": "cpu", "out": str(tmp_path / "r")},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "c.yaml"), "--data", str(path), "-q"]) == 0
    assert "model.grid: calochallenge-2, the grid of" in capsys.readouterr().out
    m = load_model(tmp_path / "r" / "checkpoint.pt")
    assert m.cfg.model.grid == "calochallenge-2"
    out = tmp_path / "gen.h5"
    ckpt = str(tmp_path / "r" / "checkpoint.pt")
    assert main(["sample", ckpt, "--n", "3", "-o", str(out), "-q", "--allow-extrapolation"]) == 0
    assert vx.project(io.read(out), grid).outside.sum() < 1e-3


def test_convert_turns_a_calochallenge_file_into_point_showers(tmp_path, capsys):
    import h5py

    from pointcalo import io
    from pointcalo.cli import main

    grid = vx.load_grid("calochallenge-2")
    rng = np.random.default_rng(1)
    voxels = rng.exponential(50.0, (5, grid.n_voxels)) * (rng.random((5, grid.n_voxels)) < 0.2)
    src = tmp_path / "dataset_2_2.hdf5"
    with h5py.File(src, "w") as f:
        f["incident_energies"] = rng.uniform(1e3, 1e5, (5, 1))
        f["showers"] = voxels
    out = tmp_path / "points.h5"
    assert main(["convert", str(src), str(out), "-q"]) == 2  # how voxels become points: asked
    assert "--voxel-points" in capsys.readouterr().err and not out.exists()
    assert main(["convert", str(src), str(out), "--voxel-points", "centre", "-q"]) == 0
    showers = io.read(out)
    counts = [len(s.points) for s in showers]
    assert counts == list((voxels > 0).sum(1))  # one point per non-empty voxel
    np.testing.assert_allclose(vx.project(showers, grid).voxels, voxels, rtol=1e-5, atol=1e-3)
