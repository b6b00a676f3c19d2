from __future__ import annotations

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
