"""MPGAN (pointcalo.models.mpgan): message passing on torch-geometric, equivariance, gradients,
and that it learns a toy distribution."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from pointcalo.models.gan import critic_loss, generator_loss
from pointcalo.models.mpgan import MPGAN, MPGANConfig
from pointcalo.models.mpgan.network import MPLayer
from pointcalo.streams import cloud_generators, cloud_noise

REPO = Path(__file__).resolve().parents[1]

STEPS, LR = 300, 2e-3
TINY = {"node_dim": 8, "global_dim": 4, "hidden": 16, "layers": 2, "critic_layers": 2, "z_dim": 3}


def _model(graph: str, seed: int = 0, **kw) -> MPGAN:
    torch.manual_seed(seed)
    return MPGAN(MPGANConfig(**{**TINY, "graph": graph, "k": 3, **kw}), n_features=4)


def _noise(counts, seed=0):
    z, zg = cloud_noise(cloud_generators([(seed, i) for i in range(len(counts))]), counts, 3, 16)
    ptr = torch.tensor(np.concatenate([[0], np.cumsum(counts)]))
    return z, zg, ptr


def test_message_passing_layer_is_a_torch_geometric_layer():
    from torch_geometric.nn import MessagePassing

    layer = MPLayer(4, 2, 8)
    assert isinstance(layer, MessagePassing)
    # a node's update depends on its incoming edges only: drop node 0's edges, only it changes
    h, g = torch.randn(5, 4), torch.randn(1, 2)
    ptr, batch = torch.tensor([0, 5]), torch.zeros(5, dtype=torch.int64)
    ei = torch.tensor([[1, 2, 0, 3, 4], [0, 0, 1, 2, 3]])
    a, _ = layer(h, g, ei, ptr, batch)
    b, _ = layer(h, g, ei[:, 2:], ptr, batch)
    assert not torch.allclose(a[0], b[0])
    torch.testing.assert_close(a[1:], b[1:])


@pytest.mark.parametrize(("graph", "dynamic"), [("knn", False), ("knn", True), ("full", False)])
def test_permutation_equivariance_and_invariance(graph, dynamic):
    model = _model(graph, dynamic=dynamic).eval()
    counts = [6, 9]
    z, zg, ptr = _noise(counts)
    cond = torch.randn(2, 2)
    perm = torch.cat([torch.randperm(6), 6 + torch.randperm(9)])
    out = model.generator(z, zg, cond, ptr)
    out_p = model.generator(z[perm], zg, cond, ptr)
    torch.testing.assert_close(out_p, out[perm], rtol=1e-5, atol=1e-5)  # equivariant
    s = model.critic(out, cond, ptr)
    torch.testing.assert_close(model.critic(out[perm], cond, ptr), s, rtol=1e-5, atol=1e-5)
    # a cloud does not depend on the others in its batch
    alone = model.generator(z[6:], zg[1:], cond[1:], torch.tensor([0, 9]))
    torch.testing.assert_close(alone, out[6:], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("graph", ["knn", "full"])
def test_every_parameter_receives_a_gradient(graph):
    model = _model(graph)
    z, zg, ptr = _noise([4, 6])
    cond = torch.randn(2, 2)
    loss = model.critic(model.generator(z, zg, cond, ptr), cond, ptr).pow(2).mean()
    loss = loss + model.count.nll(cond)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing


def test_learns_a_toy_distribution():
    """Clouds of 2-d points from N((1.5, -1), 0.5^2): after STEPS least-squares GAN steps the
    EMA generator's points have the right mean (within 0.25) and a spread within a factor 2
    (the untrained generator is off by more than 1 in mean)."""
    torch.manual_seed(0)
    model = MPGAN(
        MPGANConfig(node_dim=16, global_dim=4, hidden=32, layers=2, critic_layers=2, z_dim=2, k=4),
        n_features=2,
    )
    counts = np.full(16, 8)
    ptr = torch.tensor(np.concatenate([[0], np.cumsum(counts)]))
    cond = torch.zeros(16, 2)
    target = torch.tensor([1.5, -1.0])
    opt_g = torch.optim.Adam(model.generator.parameters(), LR, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(model.critic.parameters(), LR, betas=(0.5, 0.9))

    ema = copy.deepcopy(model.generator).requires_grad_(False)

    def sample(step, net=model.generator):
        z, zg = cloud_noise(cloud_generators([(step, i) for i in range(16)]), counts, 2, 16)
        return net(z, zg, cond, ptr)

    first = sample(10_000).detach()
    assert (first.mean(0) - target).abs().max() > 1.0
    g = torch.Generator().manual_seed(1)
    for step in range(STEPS):
        real = target + 0.5 * torch.randn(int(ptr[-1]), 2, generator=g)
        fake = sample(step)
        loss_d = critic_loss(model.critic(real, cond, ptr), model.critic(fake.detach(), cond, ptr))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = generator_loss(model.critic(sample(step), cond, ptr))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        with torch.no_grad():  # sampling weights: an EMA, as the engine keeps
            for e, p in zip(ema.parameters(), model.generator.parameters(), strict=True):
                e.lerp_(p, 0.05)
    with torch.no_grad():
        out = torch.cat([sample(20_000 + i, ema) for i in range(8)])
    assert (out.mean(0) - target).abs().max() < 0.25
    ratio = out.std(0) / 0.5
    assert torch.all(ratio > 0.5) and torch.all(ratio < 2.0)


def test_shower_config_trains_from_the_command_line(tmp_path):
    """`pointcalo train configs/mpgan.yaml` on a small shower file, then `pointcalo sample`."""
    from pointcalo import io
    from pointcalo.cli import main
    from tests.conftest import random_showers

    data = tmp_path / "showers.h5"
    io.write(random_showers(24, seed=2), data)
    out = tmp_path / "run"
    config = str(REPO / "configs/mpgan.yaml")
    args = ["--data", str(data), "--steps", "2", "--out", str(out), "--device", "cpu", "-q"]
    rc = main(["train", config, *args])
    assert rc == 0 and (out / "checkpoint.pt").exists()
    gen = tmp_path / "gen.h5"
    args = ["sample", str(out / "checkpoint.pt"), "--n", "3", "--energy", "20:60", "-o", str(gen)]
    assert main(args) == 0
    showers = io.read(gen)
    assert len(showers) == 3 and float(np.min(showers.points.E[0])) >= 0


def test_jet_config_trains_on_the_jetnet_layout(tmp_path):
    """configs/mpgan_jets.yaml (full graphs) on a JetNet-layout file; jets come back with
    positive relative pT."""
    from pointcalo.config import load_config
    from pointcalo.generation import generate, load_model
    from pointcalo.io.jetnet import write_jetnet
    from pointcalo.train.engine import train

    rng = np.random.default_rng(0)
    counts = rng.integers(3, 12, 32)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    pts = {
        "etarel": rng.normal(0, 0.1, offsets[-1]),
        "phirel": rng.normal(0, 0.1, offsets[-1]),
        "ptrel": rng.uniform(0.01, 0.3, offsets[-1]),
    }
    path = write_jetnet(tmp_path / "jets.h5", offsets, pts, rng.uniform(500, 1500, 32), 30)
    cfg = load_config(REPO / "configs/mpgan_jets.yaml")
    assert cfg.model.name == "mpgan" and cfg.model.graph == "full"
    cfg = cfg.model_copy(
        update={
            "data": cfg.data.model_copy(update={"path": str(path), "val_fraction": 0.0}),
            "train": cfg.train.model_copy(
                update={"steps": 2, "batch_size": 8, "device": "cpu", "out": str(tmp_path / "r")}
            ),
        }
    )
    m = load_model(train(cfg, progress=False, log=lambda m: None))
    out = generate(m.model, m.net, m.normalizer, np.array([800.0, 1200.0]), m.cfg, seed=0)
    assert set(out.points) == {"etarel", "phirel", "ptrel"} and np.all(out.points["ptrel"] > 0)


def test_k_is_bounded_at_config_load():
    from pointcalo.config import validate_config
    from pointcalo.errors import ConfigError

    with pytest.raises(ConfigError, match=r"c\.yaml: model\.k: .*less than or equal to 128"):
        validate_config({"model": {"name": "mpgan", "k": 100000}}, source="c.yaml")
