"""The model registry, and one contract test over every registered family: it trains through
the engine, is rebuilt from its checkpoint alone, and samples reproducibly (a shower does not
depend on the batch it is generated in) with physical outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from pointcalo.clouds import GeneratedClouds, from_showers
from pointcalo.config import ModelConfig, validate_config
from pointcalo.errors import ConfigError
from pointcalo.models import registry
from pointcalo.models.generate import generate, load_model
from pointcalo.train.engine import train
from tests.conftest import TINY_CALOCLOUDS, random_showers

TINY = {
    "epic_gan": {"point_dim": 8, "global_dim": 4, "hidden": 16, "layers": 1, "critic_layers": 1},
    "caloclouds": TINY_CALOCLOUDS,
    "library": {"k": 3},
    "grid_vae": {"channels": 2, "latent": 4},
    "grid_gan": {"channels": 2, "latent": 4, "n_critic": 1},
    "grid_flow": {"transforms": 1, "hidden": 8},
    "mpgan": {"node_dim": 8, "global_dim": 4, "hidden": 8, "layers": 1, "critic_layers": 1, "k": 3},
}


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
    ],
)
def test_family_contract(tmp_path, name):
    if name == "consistency":
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


class ToyTask:
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


def _toy_generate(model, net, normalizer, condition, cfg, *, seed=0, **kwargs):
    counts = np.full(len(condition), 3)
    x = np.tile(net.scale.detach().numpy(), (3 * len(condition), 1))
    x[:, 1] += np.tile([0.0, 1.0, 2.0], len(condition))  # three sub-cells (one point in each)
    pts = normalizer.decode_points(x)
    return GeneratedClouds(np.concatenate([[0], np.cumsum(counts)]), pts, condition)


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
