"""The model registry, and one contract test over every registered family: it trains through
the engine, is rebuilt from its checkpoint alone, and samples reproducibly (a shower does not
depend on the batch it is generated in) with physical outputs."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from pointcalo.clouds import GeneratedClouds, from_showers
from pointcalo.config import ModelConfig, validate_config
from pointcalo.errors import ConfigError
from pointcalo.generation import generate, load_model
from pointcalo.models import registry
from pointcalo.train.engine import train
from tests.conftest import TINY_CALOCLOUDS, random_showers

TINY = {
    "epic_gan": {"point_dim": 8, "global_dim": 4, "hidden": 16, "layers": 1, "critic_layers": 1},
    "caloclouds": TINY_CALOCLOUDS,
    "library": {"k": 3},
    "grid_vae": {"channels": 2, "latent": 4},
    "grid_gan": {"channels": 2, "latent": 4, "n_critic": 1},
    "grid_flow": {"transforms": 1, "hidden": 8},
    "grid_vqvae": {"channels": 2, "tokens": 4, "codebook": 16, "code_dim": 2},
    "point_vqvae": {"hidden": 8, "layer_embedding": 2, "codebook": 16, "code_dim": 2},
    "mpgan": {"node_dim": 8, "global_dim": 4, "hidden": 8, "layers": 1, "critic_layers": 1, "k": 3},
    "geometry_arm": {"hidden": 8, "depth": 1, "neighbours": 2, "bins": 4, "cells_per_layer": 64,
                     "grid": "calogan"},
}  # fmt: skip


def test_unknown_family_is_an_error_listing_the_known_ones():
    with pytest.raises(ConfigError) as err:
        validate_config({"model": {"name": "nosuchmodel"}}, source="c.yaml")
    msg = str(err.value)
    assert msg.startswith("c.yaml: model.name: unknown model 'nosuchmodel'")
    for name in ("caloclouds", "consistency", "epic_gan", "library", "mpgan"):
        assert name in msg


def test_family_fields_are_validated_by_the_familys_config():
    with pytest.raises(ConfigError, match=r"c.yaml: model.hidden: .*greater than or equal to 1"):
        validate_config({"model": {"name": "caloclouds", "hidden": 0}}, source="c.yaml")
    with pytest.raises(ConfigError, match=r"c\.yaml: model\.k: unknown field"):
        validate_config({"model": {"name": "caloclouds", "k": 3}}, source="c.yaml")


def _run(tmp_path, name: str, steps: int = 3):
    cfg = validate_config(
        {
            "model": {"name": name, **TINY.get(name, {})},
            "train": {
                "steps": steps,
                "batch_size": 8,
                "device": "cpu",
                "checkpoint_every": steps,
                "out": str(tmp_path / name),
                "warmup_steps": 1,
            },
            "data": {"val_fraction": 0.0},
        }
    )
    data = from_showers(random_showers(40, seed=5))
    if name == "geometry_arm":  # the CaloGAN-like segmentations have three layers
        data.points["layer"] = data.points["layer"] % 3
    return train(cfg, data=data, progress=False, log=lambda m: None), data


@pytest.mark.parametrize(
    "name",
    [
        "epic_gan",
        "caloclouds",
        "consistency",
        "library",
        "mpgan",
        "grid_vae",
        "grid_gan",
        "grid_flow",
        "grid_vqvae",
        "grid_gpt",
        "point_vqvae",
        "point_gpt",
        "geometry_arm",
    ],
)
def test_family_contract(tmp_path, name):
    if name in ("grid_gpt", "point_gpt"):  # stage 2 over a stage-1 model's tokens
        stage1, _ = _run(tmp_path, name.replace("gpt", "vqvae"))
        # the random showers' visible energy is ~1e-4 of E_inc: keep faint voxels
        extra = {"r_bins": 4, "e_min": 1e-6} if name == "grid_gpt" else {}
        cfg = validate_config(
            {
                "model": {"name": name, "stage1": str(stage1), "hidden": 8, "heads": 2,
                          "layers": 1, **extra},
                "train": {"steps": 2, "batch_size": 8, "device": "cpu", "out": str(tmp_path / "g")},
                "data": {"val_fraction": 0.0},
            }
        )  # fmt: skip
        ckpt = train(cfg, data=from_showers(random_showers(40, seed=5)), progress=False, log=print)
    elif name == "consistency":
        teacher, _ = _run(tmp_path, "caloclouds")
        cfg = validate_config(
            {
                "model": {"name": "consistency", "teacher": str(teacher), "n_discretisation": 4},
                "train": {"steps": 2, "batch_size": 8, "device": "cpu", "out": str(tmp_path / "s")},
                "data": {"val_fraction": 0.0},
            }
        )
        ckpt = train(cfg, data=from_showers(random_showers(40, seed=5)), progress=False, log=print)
    else:
        ckpt, _ = _run(tmp_path, name)
    m = load_model(ckpt)  # rebuilt from the checkpoint alone
    assert m.cfg.model.name == name and m.family is registry.get(name)
    energy = np.array([15e3, 70e3, 40e3, 85e3])
    a = generate(m.model, m.net, m.normalizer, energy, m.cfg, seed=2, batch_size=1)
    b = generate(m.model, m.net, m.normalizer, energy, m.cfg, seed=2, batch_size=4)
    c = generate(m.model, m.net, m.normalizer, energy, m.cfg, seed=3, batch_size=4)
    np.testing.assert_array_equal(a.offsets, b.offsets)
    for key in a.points:
        np.testing.assert_allclose(a.points[key], b.points[key], rtol=1e-4, atol=1e-5)
    assert not (
        np.array_equal(a.offsets, c.offsets) and np.array_equal(a.points["E"], c.points["E"])
    )  # another seed, other showers
    assert np.all(np.diff(a.offsets) >= 1) and np.all(a.points["E"] >= 0)
    assert a.points["layer"].min() >= 0 and a.points["layer"].max() <= 29
    assert set(a.points) == {"E", "x", "y", "layer"}


def test_library_scales_the_nearest_stored_shower(tmp_path):
    ckpt, data = _run(tmp_path, "library")
    m = load_model(ckpt)
    stored = np.sort(data.condition)
    want = np.array([stored[7] * 1.01])  # near the 8th stored energy
    out = generate(m.model, m.net, m.normalizer, want, m.cfg, seed=0)
    near = m.model.nearest(want, 3)[0]
    e_sum = [
        data.points["E"][data.offsets[i] : data.offsets[i + 1]].sum()
        for i in np.argsort(data.condition)[near]
    ]
    ratios = want[0] / stored[near]
    # the generated shower is one of the 3 nearest, scaled by the energy ratio
    assert np.isclose(out.points["E"].sum(), np.array(e_sum) * ratios, rtol=1e-5).any()


class ToyConfig(ModelConfig):
    """A toy family: each point is Gaussian noise times a learned scale."""

    name: str = "toy"


class ToyModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4))


class ToyTask(registry.TaskBase):
    def __init__(self, cfg, n_features, mean_points, data) -> None:
        self.model = ToyModel()

    def optimizers(self):
        return {"toy": (torch.optim.SGD(self.model.parameters(), lr=0.1), 0.1)}

    def ema_target(self):
        return self.model

    def wrap(self, wrap) -> None:
        pass

    def step(self, batch, ctx, opts):
        loss = ((batch.points - self.model.scale) ** 2).mean()
        ctx.update(loss, self.model, "toy")  # the engine steps the optimiser
        return {"loss_toy": loss.item()}


def _toy_generate(model, net, normalizer, cfg, batch):
    n = len(batch)
    counts = np.full(n, 3)
    x = np.tile(net.scale.detach().numpy(), (3 * n, 1))
    x[:, 1] += np.tile([0.0, 1.0, 2.0], n)  # three sub-cells (one point in each)
    pts = normalizer.decode_points(x)
    return GeneratedClouds(np.concatenate([[0], np.cumsum(counts)]), pts, batch.condition)


def test_a_new_family_needs_no_change_outside_its_own_code(tmp_path):
    registry.register(
        registry.Family(
            name="toy",
            config=ToyConfig,
            task=ToyTask,
            build=lambda cfg, meta, normalizer: ToyModel(),
            sampling_net=lambda model: model,
            generate=_toy_generate,
        )
    )
    ckpt, _ = _run(tmp_path, "toy", steps=20)
    m = load_model(ckpt)
    assert isinstance(m.model, ToyModel)
    assert not torch.equal(m.net.scale, torch.ones(4))  # trained by the engine, EMA loaded
    out = generate(m.model, m.net, m.normalizer, np.array([20e3, 30e3]), m.cfg)
    assert list(np.diff(out.offsets)) == [3, 3]


class ThetaTask(ToyTask):
    """The toy family conditioned on ``theta``: it records the condition columns it sees."""

    seen: ClassVar[list] = []

    def step(self, batch, ctx, opts):
        ThetaTask.seen.append((batch.cond_names, batch.cond.shape[1]))
        return super().step(batch, ctx, opts)


def _theta_generate(model, net, normalizer, cfg, batch):
    """The toy's showers, each moved in x by 100 mm per radian of its ``theta``: the named
    condition reaches the family."""
    clouds = _toy_generate(model, net, normalizer, cfg, batch)
    shift = np.repeat(100.0 * batch.conditions["theta"], np.diff(clouds.offsets))
    clouds.points["x"] = (clouds.points["x"] + shift).astype(np.float32)
    return clouds


def test_adding_a_condition_is_one_line_of_config(tmp_path, capsys):
    """``data.conditions: [theta]`` trains a family on theta (standardised beside log E and
    log n, its range in the checkpoint) and ``pointcalo sample --theta`` samples it: within
    the range only, written as a per-shower field, and seen by the family."""
    import yaml

    from pointcalo import io
    from pointcalo.cli import main
    from pointcalo.errors import ConfigError

    registry.register(
        registry.Family(
            name="toy_theta", config=type("ToyThetaConfig", (ToyConfig,), {}), task=ThetaTask,
            build=lambda cfg, meta, normalizer: ToyModel(), sampling_net=lambda model: model,
            generate=_theta_generate, extra_conditions=True,
        )
    )  # fmt: skip
    rng = np.random.default_rng(0)
    data = tmp_path / "d.h5"
    io.write(random_showers(40, seed=5, theta=rng.uniform(0.0, 0.5, 40).astype(np.float32)), data)
    train_cfg = {"steps": 4, "batch_size": 8, "device": "cpu", "out": str(tmp_path / "run")}
    config = {"model": {"name": "toy_theta"}, "train": train_cfg}
    config["data"] = {"path": str(data), "val_fraction": 0.0, "conditions": ["theta"]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert main(["train", str(tmp_path / "c.yaml"), "-q"]) == 0
    assert ThetaTask.seen[-1] == (("log_c", "log_n", "theta"), 3)
    m = load_model(tmp_path / "run" / "checkpoint.pt")
    lo, hi = m.conditions["theta"]
    assert 0.0 <= lo < 0.05 and 0.45 < hi <= 0.5 and "incident_energy" in m.conditions
    out = tmp_path / "gen.h5"
    ckpt = str(tmp_path / "run" / "checkpoint.pt")
    assert main(["sample", ckpt, "--n", "6", "--theta", "0.1:0.2", "-o", str(out), "-q"]) == 0
    gen = io.read(out)
    theta = np.asarray(gen.theta)
    assert len(gen) == 6 and theta.min() >= 0.1 and theta.max() <= 0.2 and np.ptp(theta) > 0
    x_mean = np.asarray([np.mean(np.asarray(s.points.x)) for s in gen])
    np.testing.assert_allclose(np.diff(x_mean), 100.0 * np.diff(theta), atol=0.9)
    # the same showers again from the file's own conditions
    again = tmp_path / "again.h5"
    assert main(["sample", ckpt, "--conditions-from", str(out), "-o", str(again), "-q"]) == 0
    np.testing.assert_allclose(np.asarray(io.read(again).theta), theta)
    capsys.readouterr()
    assert main(["sample", ckpt, "--theta", "1:2", "-o", str(tmp_path / "x.h5")]) == 2
    assert "--theta: 1:2 rad lies outside the model's training range" in capsys.readouterr().err
    assert main(["sample", ckpt, "--phi", "0.1", "-o", str(tmp_path / "x.h5")]) == 2
    assert "--phi: the model is not conditioned on phi" in capsys.readouterr().err
    assert not (tmp_path / "x.h5").exists()
    # a family that takes only the energy refuses the line at config load
    with pytest.raises(ConfigError, match=r"data\.conditions: model 'epic_gan' is conditioned on"):
        validate_config({"model": {"name": "epic_gan"}, "data": {"conditions": ["theta"]}})
    with pytest.raises(ConfigError, match=r"data\.conditions.*unknown condition 'tilt'"):
        validate_config({"model": {"name": "toy_theta"}, "data": {"conditions": ["tilt"]}})


def test_every_shipped_config_validates():
    """Each YAML in configs/ is a valid run configuration of a registered family."""
    from pathlib import Path

    from pointcalo.config import load_config

    configs = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
    assert len(configs) >= 15
    for path in configs:
        cfg = load_config(path)
        assert cfg.model.name in registry.names(), path.name


@pytest.mark.parametrize(
    "name", ["epic_gan", "caloclouds", "mpgan", "grid_vae", "grid_gan", "grid_flow"]
)
def test_every_family_honours_the_train_settings(tmp_path, name):
    """The engine steps every family's optimisers (ctx.update): ``train.betas`` reaches every
    optimiser and the checkpoint's meta records it; ``train.grad_clip`` bounds every step: with
    a clip of 1e-9 the weights move hundreds of times less in one Adam step than without
    (the first Adam step is ``lr g / (|g| + eps)``, ``eps = 1e-8``)."""
    from pointcalo.checkpoint import load_checkpoint

    def run(out, lr, **train_cfg):
        model = {"name": name, **TINY.get(name, {})}
        if name == "grid_vae":
            model |= {"critic": True, "post_processor": True}
        model |= {"caloclouds": {"flow_lr": lr}, "epic_gan": {"count_lr": lr},
                  "mpgan": {"count_lr": lr}}.get(name, {})  # fmt: skip
        cfg = validate_config(
            {
                "model": model,
                "train": {
                    "steps": 1,
                    "batch_size": 8,
                    "device": "cpu",
                    "out": str(tmp_path / out),
                    "warmup_steps": 0,
                    "ema": 0.0,
                    "ema_warmup": False,
                    "lr": lr,
                    "lr_critic": lr,
                    "betas": [0.3, 0.7],
                    **train_cfg,
                },
                "data": {"val_fraction": 0.0},
            }
        )
        torch.manual_seed(0)  # the same initial weights in every run
        data = from_showers(random_showers(40, seed=5))
        return load_checkpoint(train(cfg, data=data, progress=False, log=lambda m: None))

    start = run("start", 1e-30, grad_clip=None)
    free = run("free", 1e-3, grad_clip=None)
    clipped = run("clipped", 1e-3, grad_clip=1e-9)
    for state in (free, clipped):
        assert state["meta"]["optimizers"]
        for opt in state["meta"]["optimizers"].values():
            assert opt["betas"] == [0.3, 0.7]

    def moved(state):
        return sum(
            float((w - start["model"][k]).abs().sum())
            for k, w in state["model"].items()
            if w.is_floating_point()
        )

    assert moved(free) > 100 * moved(clipped) > 0


def test_a_library_written_before_named_conditions_still_loads(tmp_path):
    """Library checkpoints from before the ``extra`` buffer (no named conditions) rebuild and
    sample the same showers; a library with conditions still needs its own."""
    from pointcalo.checkpoint import load_checkpoint, save_checkpoint
    from pointcalo.models.library.model import ShowerLibrary

    ckpt, _ = _run(tmp_path, "library")
    state = load_checkpoint(ckpt)
    old = dict(state, model={k: v for k, v in state["model"].items() if k != "extra"})
    path = save_checkpoint(tmp_path / "old.pt", old)
    energy = np.array([20e3, 60e3])
    a, b = load_model(ckpt), load_model(path)
    ga = generate(a.model, a.net, a.normalizer, energy, a.cfg, seed=1)
    gb = generate(b.model, b.net, b.normalizer, energy, b.cfg, seed=1)
    np.testing.assert_array_equal(ga.offsets, gb.offsets)
    np.testing.assert_array_equal(ga.points["E"], gb.points["E"])
    with_conditions = ShowerLibrary(2, 3, ("E", "x", "y", "layer"), ("theta",))
    bad = {k: v for k, v in with_conditions.state_dict().items() if k != "extra"}
    with pytest.raises(RuntimeError, match="extra"):
        with_conditions.load_state_dict(bad)
