"""JetNet-style jet metrics (pointcalo.metrics.jets) against analytic cases."""

from __future__ import annotations

import numpy as np

from pointcalo.metrics.jets import evaluate_jets, jet_features


def test_two_particle_mass_is_the_analytic_invariant_mass():
    """Two massless particles: m^2 = 2 pT1 pT2 (cosh(d eta) - cos(d phi))."""
    rng = np.random.default_rng(0)
    n = 50
    pt = rng.uniform(0.1, 0.6, (n, 2))
    eta = rng.normal(0, 0.3, (n, 2))
    phi = rng.normal(0, 0.3, (n, 2))
    offsets = np.arange(0, 2 * n + 1, 2)
    feats = jet_features(
        offsets, {"ptrel": pt.ravel(), "etarel": eta.ravel(), "phirel": phi.ravel()}
    )
    want = np.sqrt(
        2 * pt[:, 0] * pt[:, 1] * (np.cosh(eta[:, 0] - eta[:, 1]) - np.cos(phi[:, 0] - phi[:, 1]))
    )
    np.testing.assert_allclose(feats[:, 0], want, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(feats[:, 3], 2)
    # one particle: massless, its own pT and eta
    one = jet_features(np.array([0, 1]), {"ptrel": [0.7], "etarel": [0.2], "phirel": [0.1]})
    np.testing.assert_allclose(one[0, :3], [0.0, 0.7, 0.2], atol=1e-7)


def _jets(n: int, seed: int, spread: float = 0.1):
    rng = np.random.default_rng(seed)
    counts = rng.integers(5, 30, n)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    p = int(offsets[-1])
    pts = {
        "etarel": rng.normal(0, spread, p),
        "phirel": rng.normal(0, spread, p),
        "ptrel": rng.exponential(0.05, p),
    }
    return offsets, pts


def test_equal_samples_sit_at_the_floor_and_wider_jets_do_not():
    ref = _jets(1200, 0)
    same = evaluate_jets(ref, _jets(600, 1))
    wide = evaluate_jets(ref, _jets(600, 2, spread=0.15))
    for name in ("jet_mass", "etarel", "phirel", "ptrel"):
        g, f = same["w1x100"][name]["generated"], same["w1x100"][name]["floor"]
        assert g[0] < f[0] + 4 * max(f[1], g[1]) + 1.0, name
    for name in ("jet_mass", "etarel", "phirel"):
        w = wide["w1x100"][name]
        assert w["generated"][0] > 5 * w["floor"][0], name
    assert wide["fpd"]["generated"][0] > 10 * max(same["fpd"]["generated"][0], 1e-4)
