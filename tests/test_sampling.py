"""Samplers against the exact denoiser of a Gaussian mixture, where every answer is known."""

from __future__ import annotations

import math

import pytest
import torch

from pointcalo.sampling import SAMPLERS, karras_sigmas, sample_heun, sample_ode

W = torch.tensor([0.3, 0.7], dtype=torch.float64)
MU = torch.tensor([-2.0, 1.5], dtype=torch.float64)
S = torch.tensor([0.3, 0.5], dtype=torch.float64)
MEAN = float((W * MU).sum())
VAR = float((W * (S**2 + MU**2)).sum()) - MEAN**2


def gmm_denoiser(x: torch.Tensor, sigma: torch.Tensor, cond=None) -> torch.Tensor:
    """E[x0 | x] for x = x0 + sigma * noise, x0 ~ the mixture (closed form)."""
    var = S**2 + sigma.double() ** 2
    logp = torch.log(W) - 0.5 * torch.log(2 * math.pi * var) - 0.5 * (x.double() - MU) ** 2 / var
    r = torch.softmax(logp, dim=-1)
    post = MU + S**2 / var * (x.double() - MU)
    return (r * post).sum(-1, keepdim=True).to(x.dtype)


def test_karras_schedule():
    s = karras_sigmas(13, 0.002, 80.0, 7.0)
    assert len(s) == 14 and s[-1] == 0
    assert s[0] == pytest.approx(80.0) and s[-2] == pytest.approx(0.002)
    assert torch.all(s[1:] < s[:-1])


def test_denoiser_is_exact_at_small_and_large_sigma():
    x = torch.linspace(-3, 3, 7, dtype=torch.float64)[:, None]
    assert torch.allclose(gmm_denoiser(x, torch.tensor([1e-6])), x, atol=1e-6)
    assert torch.allclose(gmm_denoiser(x, torch.tensor([1e4])), torch.full_like(x, MEAN), atol=1e-3)


@pytest.mark.parametrize(
    ("name", "steps"), [("euler", 200), ("heun", 40), ("heun_churn", 40), ("ode", 10)]
)
def test_samplers_reproduce_the_mixture(name, steps):
    g = torch.Generator().manual_seed(0)
    sigmas = karras_sigmas(steps, 0.002, 80.0)
    x = torch.randn(100_000, 1, generator=g, dtype=torch.float64) * sigmas[0]
    out = SAMPLERS[name](gmm_denoiser, x, sigmas, generator=torch.Generator().manual_seed(1))
    assert float(out.mean()) == pytest.approx(MEAN, abs=0.03)
    assert float(out.var()) == pytest.approx(VAR, rel=0.03)
    assert float((out < 0).double().mean()) == pytest.approx(float(W[0]), abs=0.015)


def test_heun_converges_to_the_ode_solution():
    x = torch.randn(500, 1, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 80
    exact = sample_ode(gmm_denoiser, x, karras_sigmas(8), rtol=1e-8, atol=1e-8)
    errors = [
        float((sample_heun(gmm_denoiser, x, karras_sigmas(n)) - exact).abs().mean())
        for n in (4, 8, 32)
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-2


def test_callback_and_per_cloud_noise():
    seen = []
    sigmas = karras_sigmas(5)
    x = torch.randn(10, 1, dtype=torch.float64) * sigmas[0]
    calls = []

    fresh = torch.randn(10, 1, generator=torch.Generator().manual_seed(5), dtype=torch.float64)

    def noise(step: int) -> torch.Tensor:
        calls.append(step)
        return fresh

    churned = SAMPLERS["heun_churn"](
        gmm_denoiser, x, sigmas, generator=noise, callback=lambda i, s, xi, d: seen.append(i)
    )
    assert seen == [0, 1, 2, 3, 4]
    # fresh noise is asked for at every step inside [s_tmin, s_tmax] = [0.05, 50]
    inside = [i for i in range(5) if 0.05 <= float(sigmas[i]) <= 50.0]
    assert calls == inside and inside
    again = SAMPLERS["heun_churn"](gmm_denoiser, x, sigmas, generator=lambda step: fresh)
    torch.testing.assert_close(churned, again)  # the noise comes from the generator alone
    silent = SAMPLERS["heun_churn"](gmm_denoiser, x, sigmas, generator=lambda s: 0 * fresh)
    assert (churned - silent).abs().max() > 1e-3  # and it is used


def test_ode_with_a_one_level_schedule():
    x = torch.randn(2000, 1, generator=torch.Generator().manual_seed(4), dtype=torch.float64) * 80
    one = sample_ode(gmm_denoiser, x, karras_sigmas(1))
    many = sample_ode(gmm_denoiser, x, karras_sigmas(13))
    torch.testing.assert_close(one, many, rtol=1e-3, atol=1e-3)  # same end points
