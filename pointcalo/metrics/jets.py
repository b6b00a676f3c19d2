"""JetNet-style metrics for generated jets (Kansal et al., arXiv 2106.11535, sec. 4).

Jets are clouds of particles with relative coordinates ``etarel``, ``phirel`` and ``ptrel``
(the JetNet layout, :func:`pointcalo.io.jetnet.read_jetnet`). Treating every particle as
massless with ``pT = ptrel``, ``eta = etarel``, ``phi = phirel``, a jet's four-momentum is the
sum of ``(pT cosh eta, pT cos phi, pT sin phi, pT sinh eta)``; its relative mass is
``sqrt(E^2 - |p|^2)`` (in units of the jet pT, as JetNet's ``m/pT``). The metrics, each against
the floor of two halves of the reference with the same batch size, are: W1 (x100, standardised,
as for showers) of the relative jet mass and of the pooled particle features, and the Frechet
and kernel physics distances (FPD, KPD; Kansal et al., arXiv 2211.10295) on the jet features
``(m, pT, eta, n_particles)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pointcalo.clouds import gather_index
from pointcalo.metrics import distances as dist
from pointcalo.showers import segment_sum

PARTICLE_FEATURES = ("etarel", "phirel", "ptrel")
JET_FEATURES = ("mass", "pt", "eta", "n_particles")


def jet_four_momenta(offsets: np.ndarray, points: dict[str, np.ndarray]) -> np.ndarray:
    """``[N, 4]`` summed ``(E, px, py, pz)`` of each jet's massless particles (relative units)."""
    pt = np.asarray(points["ptrel"], np.float64)
    eta = np.asarray(points["etarel"], np.float64)
    phi = np.asarray(points["phirel"], np.float64)
    p4 = np.stack([pt * np.cosh(eta), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], 1)
    return np.stack([segment_sum(p4[:, j], offsets) for j in range(4)], 1)


def jet_features(offsets: np.ndarray, points: dict[str, np.ndarray]) -> np.ndarray:
    """``[N, 4]`` relative mass, pT and pseudorapidity of each jet and its particle count."""
    e, px, py, pz = jet_four_momenta(offsets, points).T
    mass = np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / np.maximum(pt, 1e-12))
    return np.stack([mass, pt, eta, np.diff(offsets).astype(np.float64)], 1)


def _distances(ref, gen, *, k: int, size: int, seed: int) -> dict[str, Any]:
    (r_off, r_pts), (g_off, g_pts) = ref, gen
    fr, fg = jet_features(r_off, r_pts), jet_features(g_off, g_pts)
    out: dict[str, Any] = {"w1x100": {}}
    out["w1x100"]["jet_mass"] = dist.w1(fr[:, 0], fg[:, 0], k=k, size=size, seed=seed)
    r_owner = np.repeat(np.arange(len(r_off) - 1), np.diff(r_off))
    g_owner = np.repeat(np.arange(len(g_off) - 1), np.diff(g_off))
    for name in PARTICLE_FEATURES:
        out["w1x100"][name] = dist.w1(
            r_pts[name],
            g_pts[name],
            ref_owner=r_owner,
            gen_owner=g_owner,
            n_ref=len(r_off) - 1,
            n_gen=len(g_off) - 1,
            k=k,
            size=size,
            seed=seed,
        )
    out["fpd"] = dist.fpd(fr, fg, seed=seed)
    out["kpd"] = dist.kpd(fr, fg, size=min(1000, size * k), seed=seed)
    return out


def _subset(offsets: np.ndarray, points: dict[str, np.ndarray], index: np.ndarray):
    counts = np.diff(offsets)[index]
    rows = gather_index(offsets, index, counts)
    new = np.concatenate([[0], np.cumsum(counts)])
    return new, {k: np.asarray(v)[rows] for k, v in points.items()}


def evaluate_jets(reference: Any, generated: Any, *, k: int = 5, seed: int = 0) -> dict[str, Any]:
    """Jet metrics of ``generated`` against ``reference`` (each a
    :class:`pointcalo.clouds.PointCloudData` or :class:`pointcalo.clouds.GeneratedClouds` of
    jets, or an ``(offsets, points)`` pair), with the floor of the reference's two halves.

    Returns:
        ``{"w1x100": {name: {"generated": [mean, std], "floor": [...]}}, "fpd": ...,
        "kpd": ...}`` and the jet counts.
    """

    def parts(x):
        return x if isinstance(x, tuple) else (np.asarray(x.offsets), x.points)

    ref, gen = parts(reference), parts(generated)
    n_ref = len(ref[0]) - 1
    perm = np.random.default_rng(seed).permutation(n_ref)
    half_a = _subset(*ref, np.sort(perm[: n_ref // 2]))
    half_b = _subset(*ref, np.sort(perm[n_ref // 2 :]))
    size = dist.batch_size(len(half_a[0]) - 1, min(len(half_b[0]), len(gen[0])) - 1, k)
    vs_gen = _distances(half_a, gen, k=k, size=size, seed=seed)
    floor = _distances(half_a, half_b, k=k, size=size, seed=seed)
    return {
        "n_reference": n_ref,
        "n_generated": len(gen[0]) - 1,
        "w1x100": {
            name: {"generated": list(v), "floor": list(floor["w1x100"][name])}
            for name, v in vs_gen["w1x100"].items()
        },
        "fpd": {"generated": list(vs_gen["fpd"]), "floor": list(floor["fpd"])},
        "kpd": {"generated": list(vs_gen["kpd"]), "floor": list(floor["kpd"])},
    }
