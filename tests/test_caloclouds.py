from __future__ import annotations

import pytest
import torch

from pointcalo.models.caloclouds import EDMPrecond, PointDenoiserNet, edm_loss, sample_ln_sigma
from pointcalo.sampling import karras_sigmas, sample_heun


def _model(seed: int = 0) -> EDMPrecond:
    torch.manual_seed(seed)
    net = PointDenoiserNet(4, point_dim=16, global_dim=8, hidden=32, layers=2, sum_scale=0.05)
    return EDMPrecond(net, torch.tensor([1.0, 0.5, 0.5, 2.0]))


def _batch(counts=(5, 9, 3), seed=1):
    g = torch.Generator().manual_seed(seed)
    ptr = torch.tensor([0, *torch.tensor(counts).cumsum(0).tolist()])
    return torch.randn(int(ptr[-1]), 4, generator=g), ptr, torch.randn(len(counts), 2, generator=g)


def test_denoiser_returns_its_input_at_the_smallest_noise_level():
    model = _model()
    x, ptr, c = _batch()
    out = model(x, torch.tensor(1e-6), (c, ptr))
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_preconditioning_scalings():
    model = _model()
    sd = model.sigma_data
    c_skip, c_out, c_in, _ = model.scalings(torch.tensor([[0.5]]))
    # unit-variance input and target at every noise level (EDM appendix B.6)
    torch.testing.assert_close(c_in**2 * (0.5**2 + sd**2), torch.ones(1, 4))
    # ... and the effective training target (x0 - c_skip x) / c_out has unit variance
    target_var = ((1 - c_skip) ** 2 * sd**2 + c_skip**2 * 0.5**2) / c_out**2
    torch.testing.assert_close(target_var, torch.ones_like(target_var))


def test_shapes_gradients_and_equivariance():
    model = _model()
    x, ptr, c = _batch()
    sigma = torch.full((len(x), 1), 0.7)
    out = model(x, sigma, (c, ptr))
    assert out.shape == x.shape
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.any() for p in model.parameters())
    perm = torch.cat([torch.randperm(int(ptr[b + 1] - ptr[b])) + ptr[b] for b in range(3)])
    with torch.no_grad():
        torch.testing.assert_close(
            model(x[perm], sigma, (c, ptr)), model(x, sigma, (c, ptr))[perm], rtol=1e-5, atol=1e-6
        )


def test_state_dict_round_trip():
    a, b = _model(0), _model(1)
    b.load_state_dict(a.state_dict())
    x, ptr, c = _batch()
    torch.testing.assert_close(a(x, torch.tensor(0.3), (c, ptr)), b(x, torch.tensor(0.3), (c, ptr)))


def test_edm_loss_decreases_and_sampling_runs():
    """A few steps on a toy set (points from N(mu_shower, 0.1)) lower the loss; the trained
    denoiser then samples with the shared sampler signature."""
    model = _model()
    g = torch.Generator().manual_seed(5)
    counts = torch.full((16,), 12)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), counts.cumsum(0)])
    c = torch.randn(16, 2, generator=g)
    x0 = torch.repeat_interleave(c[:, :1], counts)[:, None].expand(-1, 4) * 0.5 + 0.1 * torch.randn(
        int(ptr[-1]), 4, generator=g
    )
    opt = torch.optim.Adam(model.parameters(), 3e-3)

    def loss(seed: int) -> torch.Tensor:
        gg = torch.Generator().manual_seed(seed)
        return edm_loss(
            model,
            x0,
            ptr,
            (c, ptr),
            ln_sigma=sample_ln_sigma(16, gg),
            noise=torch.randn(x0.shape, generator=gg),
        )

    first = sum(loss(s).item() for s in range(5)) / 5
    for step in range(150):
        opt.zero_grad()
        loss(100 + step).backward()
        opt.step()
    last = sum(loss(s).item() for s in range(5)) / 5
    assert last < 0.7 * first
    sigmas = karras_sigmas(8, 0.002, 80.0)
    x = torch.randn(x0.shape, generator=g) * sigmas[0]
    out = sample_heun(lambda xx, s, cond: model(xx, s, cond), x, sigmas, cond=(c, ptr))
    assert out.shape == x0.shape and torch.isfinite(out).all()


def _tiny_run(tmp_path, steps=4):
    import numpy as np

    from pointcalo.clouds import from_showers
    from pointcalo.config import validate_config
    from pointcalo.train.engine import train
    from tests.conftest import TINY_CALOCLOUDS, random_showers

    cfg = validate_config(
        {
            "model": TINY_CALOCLOUDS,
            "train": {
                "steps": steps,
                "batch_size": 8,
                "device": "cpu",
                "checkpoint_every": 2,
                "out": str(tmp_path / "cc"),
                "warmup_steps": 1,
            },
            "data": {"val_fraction": 0.0},
        }
    )
    data = from_showers(random_showers(48, seed=3))
    return train(cfg, data=data, progress=False, log=lambda m: None), data, np


def test_shower_features_by_hand():
    import numpy as np

    from pointcalo.clouds import from_showers
    from pointcalo.models.showerflow.features import N_SCALARS
    from pointcalo.models.showerflow.features import data_features as shower_features
    from pointcalo.showers import make_showers

    s = make_showers(
        [100.0],
        {"E": [1.0, 3.0, 4.0], "x": [0.0, 2.0, 2.0], "y": [0.0, 0.0, 1.0], "layer": [0, 2, 2]},
        counts=[3],
    )
    f = shower_features(from_showers(s))[0]
    assert f[0] == np.log(3) and np.isclose(f[1], np.log(8 / 100))
    assert np.isclose(f[2], 14 / 8) and np.isclose(f[3], 4 / 8) and np.isclose(f[4], 14 / 8)
    frac_n, frac_e = f[N_SCALARS : N_SCALARS + 30], f[N_SCALARS + 30 : N_SCALARS + 60]
    np.testing.assert_allclose(frac_n[[0, 2]], [1 / 3, 2 / 3])
    np.testing.assert_allclose(frac_e[[0, 2]], [1 / 8, 7 / 8])
    assert np.isclose(frac_n.sum(), 1) and np.isclose(frac_e.sum(), 1)


def test_trains_samples_and_calibrates(tmp_path):
    from pointcalo.generation import generate, load_model
    from pointcalo.models.showerflow.features import N_SCALARS

    ckpt, _, np = _tiny_run(tmp_path)
    loaded = load_model(ckpt)
    energy = np.array([20e3, 60e3, 40e3])
    a = generate(
        loaded.model, loaded.net, loaded.normalizer, energy, loaded.cfg, seed=1, batch_size=1
    )
    b = generate(
        loaded.model, loaded.net, loaded.normalizer, energy, loaded.cfg, seed=1, batch_size=3
    )
    np.testing.assert_array_equal(a.offsets, b.offsets)  # a shower ignores its batch
    np.testing.assert_allclose(a.points["E"], b.points["E"], rtol=1e-4, atol=1e-6)
    # the calibration reproduces the flow's per-layer energies exactly
    from pointcalo.streams import cloud_generators

    flow = loaded.model.flow
    gens = cloud_generators([(1, i) for i in range(3)])
    base = torch.stack([torch.randn(flow.mean.shape[0], generator=g) for g in gens])
    log_c = loaded.normalizer.encode_cond(energy, np.ones(3))[:, 0]
    feats = flow.sample(torch.as_tensor(log_c), base).double().numpy()
    frac_e = np.clip(feats[:, N_SCALARS + 30 : N_SCALARS + 60], 0, None)
    e_vis = np.exp(feats[:, 1]) * energy
    target = frac_e / frac_e.sum(1, keepdims=True) * e_vis[:, None]
    for i in range(3):
        sl = slice(a.offsets[i], a.offsets[i + 1])
        got = np.bincount(a.points["layer"][sl], a.points["E"][sl].astype(float), 30)
        assert got.sum() == pytest.approx(e_vis[i], rel=1e-4)  # the flow's visible energy
        occupied = got > 0  # layers with points carry the flow's shares, renormalised
        np.testing.assert_allclose(
            got[occupied] / got.sum(), target[i][occupied] / target[i][occupied].sum(), rtol=1e-3
        )


def test_sample_command_with_samplers(tmp_path):
    from pointcalo import io
    from pointcalo.cli import main

    ckpt, _, _ = _tiny_run(tmp_path)
    for sampler in ("euler", "heun", "ode"):
        out = tmp_path / f"{sampler}.h5"
        assert (
            main(
                [
                    "sample",
                    str(ckpt),
                    "--n",
                    "3",
                    "--sampler",
                    sampler,
                    "--steps",
                    "3",
                    "-o",
                    str(out),
                    "-q",
                ]
            )
            == 0
        )
        assert len(io.read(out, allow_empty=True)) == 3


def test_noise_level_is_embedded_into_every_layer():
    from pointcalo.models.caloclouds.network import PointDenoiserNet

    torch.manual_seed(0)
    net = PointDenoiserNet(4, point_dim=8, global_dim=4, hidden=16, layers=2, noise_dim=8)
    assert net.embed is not None and net.layers[0].global1.in_features == 2 * 8 + 4 + 2 + 8
    x, c, ptr = torch.randn(10, 4), torch.zeros(1, 2), torch.tensor([0, 10])
    outs = [net(x, torch.full((10, 1), v), (c, ptr)) for v in (-0.5, -0.45, 0.5)]
    assert (outs[0] - outs[1]).abs().max() > 1e-4  # nearby noise levels are told apart
    out = net(x, torch.full((10, 1), 0.1), (c, ptr)).sum()
    out.backward()
    assert net.embed.linear.weight.grad.abs().sum() > 0


def test_caloclouds_takes_named_conditions(tmp_path):
    """``data.conditions: [theta, pdg]``: the denoiser's condition and the flow's context
    grow by two, generation needs both and depends on them; a distillation reading other
    conditions than its teacher's is refused."""
    import numpy as np
    import pytest

    from pointcalo.clouds import from_showers
    from pointcalo.config import validate_config
    from pointcalo.errors import ConfigError, PointcaloError
    from pointcalo.generation import generate, load_model
    from pointcalo.train.engine import train
    from tests.conftest import TINY_CALOCLOUDS, random_showers

    rng = np.random.default_rng(0)
    showers = random_showers(
        48, seed=3, theta=rng.uniform(0, 0.7, 48), pdg=rng.choice([11.0, 22.0], 48)
    )
    train_cfg = {"steps": 3, "batch_size": 8, "device": "cpu", "out": str(tmp_path / "cc")}
    data_cfg = {"val_fraction": 0.0, "conditions": ["theta", "pdg"]}
    cfg = validate_config({"model": TINY_CALOCLOUDS, "train": train_cfg, "data": data_cfg})
    data = from_showers(showers, conditions=("theta", "pdg"))
    m = load_model(train(cfg, data=data, progress=False, log=lambda m: None))
    assert m.normalizer.extra_names == ("theta", "pdg") and m.model.n_extra == 2
    assert m.conditions["pdg"] == [11.0, 22.0] and 0 <= m.conditions["theta"][0] < 0.05
    energy = np.full(4, 50e3)
    with pytest.raises(PointcaloError, match="conditioned on theta"):
        generate(m.model, m.net, m.normalizer, energy, m.cfg, seed=1)
    a, b = (
        generate(m.model, m.net, m.normalizer, energy, m.cfg, seed=1,
                 conditions={"theta": np.full(4, t), "pdg": np.full(4, 22.0)})
        for t in (0.0, 0.7)
    )  # fmt: skip
    assert not np.array_equal(a.points["E"][:5], b.points["E"][:5])
    student = {"name": "consistency", "teacher": str(tmp_path / "cc" / "checkpoint.pt")}
    with pytest.raises(ConfigError, match=r"data\.conditions: the teacher is conditioned on"):
        bad = validate_config(
            {"model": student, "train": {**train_cfg, "out": str(tmp_path / "s")}}
        )
        train(bad, data=from_showers(showers), progress=False, log=lambda m: None)
