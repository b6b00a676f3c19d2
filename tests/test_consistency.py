"""Consistency distillation pieces, and a distilled one-step sampler on a Gaussian mixture
whose teacher is the exact denoiser."""

from __future__ import annotations

import torch
from scipy.stats import wasserstein_distance
from torch import nn

from pointcalo.models.consistency import ConsistencyPrecond, distillation_loss, ema_target_update
from pointcalo.sampling import (
    SAMPLERS,
    heun_step,
    karras_discretisation,
    karras_sigmas,
    sample_consistency,
    sample_heun,
    sample_multistep,
)
from tests.test_sampling import gmm_denoiser


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.f = nn.Sequential(
            nn.Linear(2, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 1)
        )

    def forward(self, x, c_noise, cond):
        return self.f(torch.cat([x, c_noise], 1))


def _student(seed: int = 0) -> ConsistencyPrecond:
    torch.manual_seed(seed)
    return ConsistencyPrecond(MLP(), torch.tensor([1.5]), sigma_min=0.002)


def test_boundary_condition_is_exact():
    model = _student()
    x = torch.randn(100, 1) * 3
    out = model(x, torch.tensor(0.002), None)
    assert torch.equal(out, x)  # c_skip = 1 and c_out = 0 exactly at sigma_min
    c_skip, c_out, _, _ = model.scalings(torch.tensor([[0.002], [80.0]]))
    assert c_skip[0].item() == 1.0 and c_out[0].item() == 0.0
    assert c_skip[1].item() < 1e-3


def test_karras_discretisation():
    t = karras_discretisation(18, 0.002, 80.0, 7.0)
    assert len(t) == 18 and torch.all(t[1:] > t[:-1])
    assert abs(t[0].item() - 0.002) < 1e-12 and abs(t[-1].item() - 80.0) < 1e-9


def test_teacher_heun_step_matches_heun_sampler():
    x = torch.randn(50, 1, dtype=torch.float64) * 5
    sig = torch.tensor([5.0, 2.0, 0.0], dtype=torch.float64)
    step = heun_step(
        gmm_denoiser,
        x,
        torch.full((50, 1), 5.0, dtype=torch.float64),
        torch.full((50, 1), 2.0, dtype=torch.float64),
        None,
    )
    # the shared Heun sampler's first step from 5 to 2 (its second step goes to 0)
    first = []
    sample_heun(gmm_denoiser, x, sig, callback=lambda i, s, xi, d: first.append(xi.clone()))
    torch.testing.assert_close(step, first[0])


def test_ema_target_update():
    a, b = _student(0), _student(1)
    w = next(a.parameters()).clone()
    ema_target_update(a, b, 0.9)
    torch.testing.assert_close(next(a.parameters()), 0.9 * w + 0.1 * next(b.parameters()))


def test_distilled_one_step_sampler_reproduces_the_teacher():
    torch.manual_seed(0)
    student, target = _student(0), _student(0)
    target.load_state_dict(student.state_dict())
    teacher = lambda x, s, c: gmm_denoiser(x, s, c).float()  # noqa: E731
    t = karras_discretisation(18).float()
    opt = torch.optim.Adam(student.parameters(), 2e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(1500):
        comp = torch.rand(512, generator=g) < 0.3
        x0 = torch.where(
            comp,
            -2.0 + 0.3 * torch.randn(512, generator=g),
            1.5 + 0.5 * torch.randn(512, generator=g),
        )[:, None]
        n = torch.randint(0, 17, (512, 1), generator=g)
        loss = distillation_loss(
            student, target, teacher, x0, t[n + 1], t[n], torch.randn(512, 1, generator=g), None
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema_target_update(target, student, 0.95)
    x = torch.randn(20000, 1, generator=g) * 80.0
    teacher_samples = sample_heun(teacher, x.double(), karras_sigmas(40)).float()
    one = sample_consistency(student, x, torch.tensor([80.0, 0.0]))
    two = SAMPLERS["multistep"](
        student, x, torch.tensor([80.0, 0.8, 0.0]), generator=torch.Generator().manual_seed(3)
    )
    w1_one = wasserstein_distance(one[:, 0].numpy(), teacher_samples[:, 0].numpy())
    w1_two = wasserstein_distance(two[:, 0].numpy(), teacher_samples[:, 0].numpy())
    assert w1_one < 0.15, w1_one  # the mixture's standard deviation is 1.66
    assert w1_two < 0.15, w1_two


def test_multistep_takes_steps_real_steps_and_the_models_sigma_min():
    from pointcalo.sampling import schedule

    calls, renoised = [], []

    def zero(x, sigma, cond):  # a denoiser that always answers 0
        calls.append(float(sigma.reshape(-1)[0]))
        return torch.zeros_like(x)

    x = torch.randn(20000, 1) * 80.0
    for steps in (1, 2, 3):
        calls.clear()
        sample_multistep(zero, x, schedule("multistep", steps), sigma_min=0.002)
        assert len(calls) == steps  # steps=2 is not one step: sigma_min is not a step
    calls.clear()
    sample_multistep(
        zero,
        x,
        torch.tensor([80.0, 2.0, 0.4, 0.0]),
        sigma_min=0.5,
        generator=torch.Generator().manual_seed(0),
        callback=lambda i, s, xi, d: renoised.append(xi.std().item()),
    )
    assert calls == [80.0, 2.0]  # 0.4 lies below this model's sigma_min: no step there
    assert abs(renoised[1] - (2.0**2 - 0.5**2) ** 0.5) < 0.03  # re-noised with its sigma_min


def test_distill_command_from_a_caloclouds_teacher(tmp_path):
    import numpy as np
    import yaml

    from pointcalo import io
    from pointcalo.cli import main
    from pointcalo.generation import load_model
    from pointcalo.models.consistency import build_from_teacher
    from tests.conftest import random_showers
    from tests.test_caloclouds import _tiny_run

    teacher, _, _ = _tiny_run(tmp_path)
    student_model, *_ = build_from_teacher(str(teacher))
    for a, b in zip(
        student_model.denoiser.parameters(), student_model.teacher.parameters(), strict=True
    ):
        assert torch.equal(a, b)  # the student starts from the teacher's EMA weights
    data = io.write(random_showers(48, seed=3), tmp_path / "d.h5")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "model": {"name": "consistency", "teacher": "unused", "n_discretisation": 6},
                "data": {"val_fraction": 0.0},
                "train": {"steps": 3, "batch_size": 8, "device": "cpu", "checkpoint_every": 3},
            }
        )
    )
    out = tmp_path / "student"
    assert (
        main(["distill", str(teacher), str(cfg), "--data", str(data), "--out", str(out), "-q"]) == 0
    )
    loaded = load_model(out / "checkpoint.pt")  # rebuilt from its own checkpoint
    assert loaded.cfg.model.name == "consistency"
    x = torch.randn(5, 4)
    ptr, c = torch.tensor([0, 5]), torch.zeros(1, 2)
    torch.testing.assert_close(loaded.net(x, torch.tensor(0.002), (c, ptr)), x)  # boundary
    gen = tmp_path / "gen.h5"
    assert main(["sample", str(out / "checkpoint.pt"), "--n", "4", "-o", str(gen), "-q"]) == 0
    assert len(io.read(gen, allow_empty=True)) == 4
    assert np.isfinite(np.asarray(io.read(gen, allow_empty=True).incident_energy)).all()


def test_streamed_sampling_memory_is_bounded_by_the_chunk(tmp_path):
    import tracemalloc

    from pointcalo.cli import main
    from tests.test_caloclouds import _tiny_run

    ckpt, _, _ = _tiny_run(tmp_path)
    peaks = []
    for n in (8, 32):
        tracemalloc.start()
        assert (
            main(
                [
                    "sample",
                    str(ckpt),
                    "--n",
                    str(n),
                    "--batch-size",
                    "1",
                    "--steps",
                    "2",
                    "-o",
                    str(tmp_path / f"g{n}.h5"),
                    "-q",
                ]
            )
            == 0
        )
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < 1.5 * peaks[0]  # 4x the showers, same peak: written chunk by chunk


def test_steps_without_a_sampler_means_multistep():
    """`--steps 2` on a consistency model takes two steps (the one-step sampler used to ignore
    it silently): the same showers as the multistep sampler asked by name, not one-step's."""
    import numpy as np

    from pointcalo import pretrained
    from pointcalo.generation import generate, load_model

    m = load_model(pretrained.resolve("ild-photon-cm"))
    e = np.array([20e3, 60e3])
    one = generate(m.model, m.net, m.normalizer, e, m.cfg, seed=0)
    two = generate(m.model, m.net, m.normalizer, e, m.cfg, seed=0, steps=2)
    named = generate(m.model, m.net, m.normalizer, e, m.cfg, seed=0, steps=2, sampler="multistep")
    np.testing.assert_array_equal(two.points["x"], named.points["x"])
    assert not (
        np.array_equal(one.offsets, two.offsets)
        and np.array_equal(one.points["x"], two.points["x"])
    )


def test_bf16_on_a_cpu_casts_the_raw_network_only_and_leaves_the_loaded_model_alone():
    """``pointcalo sample --bf16`` on a CPU: the raw network's weights in bfloat16 (its
    matrix products about twice as fast with AVX512-BF16), the preconditioning's noise-level
    scalings in float32, the loaded denoiser untouched; outputs within bfloat16's rounding."""
    from pointcalo import pretrained
    from pointcalo.generation import in_bfloat16, load_model

    m = load_model(pretrained.resolve("ild-photon-cm"))
    net = in_bfloat16(m.net, torch.device("cpu"))
    assert net is not m.net and isinstance(net, ConsistencyPrecond)
    assert net.sigma_data.dtype == torch.float32
    assert {p.dtype for p in net.net.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in m.net.parameters()} == {torch.float32}
    gen = torch.Generator().manual_seed(0)
    counts = torch.tensor([300, 500])
    x = 80.0 * torch.randn(int(counts.sum()), 4, generator=gen)
    cond = (torch.randn(2, 2, generator=gen), torch.cat([torch.zeros(1), counts.cumsum(0)]).long())
    with torch.no_grad():
        want = m.net(x, torch.tensor([80.0]), cond)
        got = net(x, torch.tensor([80.0]), cond)
    assert got.dtype == torch.float32
    err = (got - want).abs()
    assert err.max() < 0.1 * want.std() and err.mean() < 0.01 * want.std(), err.max()
