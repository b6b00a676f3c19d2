"""Grid models (pointcalo.models.voxels and the grid families): projection, scaling, shapes,
gradients, and that a model learns a toy distribution through the engine."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

import voxelize as vx
from pointcalo.clouds import from_showers
from pointcalo.config import validate_config
from pointcalo.errors import ConfigError
from pointcalo.models.generate import generate, load_model
from pointcalo.models.grid_vae import GridVAE, GridVAEConfig
from pointcalo.models.voxels import VoxelScale, grid_shape, project_clouds
from pointcalo.showers import make_showers
from pointcalo.train.engine import train
from tests.conftest import random_showers

#: a 2-layer grid of 4 x 4 cells of 10 mm
TOY_GRID = {
    "kind": "cartesian",
    "name": "toy",
    "n_layers": 2,
    "cells": [4, 4],
    "cell_size": [10.0, 10.0],
    "origin": [-20.0, -20.0],
}
#: toy showers: energy E_inc * 1e-3 * PATTERN in (layer, cell) with 10 % noise
PATTERN = np.zeros((2, 16))
PATTERN[0, 5], PATTERN[0, 6], PATTERN[1, 5], PATTERN[1, 10] = 0.5, 0.2, 0.2, 0.1


def _toy_showers(n: int, seed: int):
    rng = np.random.default_rng(seed)
    inc = rng.uniform(10e3, 90e3, n)
    layer, cell = np.nonzero(PATTERN)
    cx = (cell % 4 - 1.5) * 10.0
    cy = (cell // 4 - 1.5) * 10.0
    k = len(layer)
    e = inc[:, None] * 1e-3 * PATTERN[layer, cell] * rng.normal(1, 0.1, (n, k))
    points = {
        "E": e.ravel().astype(np.float32),
        "x": np.tile(cx + rng.uniform(-4, 4, k), n).astype(np.float32),
        "y": np.tile(cy + rng.uniform(-4, 4, k), n).astype(np.float32),
        "layer": np.tile(layer, n).astype(np.int32),
    }
    return make_showers(inc, points, counts=np.full(n, k))


def test_projection_keeps_the_energy_and_the_scale_round_trips():
    showers = random_showers(30, seed=3)
    data = from_showers(showers)
    grid = vx.load_grid("ild-cylindrical")
    voxels = project_clouds(data, grid, chunk=7)  # chunks give the same as one projection
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
        dec = model.decoder(torch.randn(5, 4), torch.randn(5, 1))
    assert dec.shape == (5, 30, 16, 9)
    energy = VoxelScale(8.0, 10.0, 1.0).decode(dec.numpy() - 0.2)  # a linear output that
    assert energy.min() == 0.0 and np.isfinite(energy).all()  # is < 0 means no energy


@pytest.mark.parametrize("name", ["grid_vae"])
def test_learns_a_toy_distribution(tmp_path, name):
    """Two-layer showers with a fixed pattern scaled by the incident energy: after training,
    generated showers put their energy where the pattern does (the four cells within 10 % of
    their mean share), and the deposited energy follows the incident energy."""
    grid_file = tmp_path / "toy.yaml"
    grid_file.write_text(yaml.safe_dump(TOY_GRID))
    sizes = {"grid_vae": {"channels": 4, "latent": 4}}[name]
    cfg = validate_config(
        {
            "model": {"name": name, "grid": str(grid_file), **sizes},
            "train": {
                "steps": 400,
                "batch_size": 32,
                "lr": 3e-3,
                "device": "cpu",
                "warmup_steps": 10,
                "checkpoint_every": 400,
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
    share = vox.mean(0) / vox.mean(0).sum()
    want = PATTERN / PATTERN.sum()
    assert np.abs(share - want).max() < 0.1 * want.max(), share.round(3)
    low, high = vox[:200].sum((1, 2)).mean(), vox[200:].sum((1, 2)).mean()
    assert 3.0 < high / low < 5.0  # 80 / 20 GeV deposits 4x the energy
