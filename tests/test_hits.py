"""Hit counting and the hit-count calibration of generated showers."""

from __future__ import annotations

import numpy as np

import voxelize as vx
from pointcalo.metrics.observables import compute
from pointcalo.models.caloclouds.hits import calibrate_hits, count_hits
from pointcalo.showers import flatten
from tests.conftest import random_showers

CELL = 5.088


def test_count_hits_equals_the_ild_grid_observable():
    showers = random_showers(30, seed=2)
    flat = flatten(showers)
    p = flat.points
    got = count_hits(p["x"], p["y"], p["layer"], p["E"], flat.counts, CELL, 0.1)
    want = compute(showers, grid=vx.ild(), threshold=0.1).scalars["n_hits"]
    np.testing.assert_array_equal(got, want)


def _shower():
    """One layer: a 4-point cluster in the central cell (too big to move) and lone 0.3 MeV
    points just outside it in its four edge neighbours and one far away."""
    x = np.array([0.0, 0.8, -0.8, 3.0, -3.0, 0.0, 0.0, 40.0, 0.0])
    y = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 3.0, -3.0, 40.0, 0.8])
    e = np.array([2.0, 1.0, 1.0, 0.3, 0.3, 0.3, 0.3, 0.3, 0.5])
    return {
        "E": e.astype(np.float32),
        "x": x.astype(np.float32),
        "y": y.astype(np.float32),
        "layer": np.zeros(9, np.int32),
    }


def test_lone_points_merge_into_the_neighbouring_cluster():
    pts = _shower()
    counts = np.array([9])
    before = count_hits(pts["x"], pts["y"], pts["layer"], pts["E"], counts, CELL, 0.1)
    assert before[0] == 6
    x0, y0, e0 = pts["x"].copy(), pts["y"].copy(), pts["E"].copy()
    calibrate_hits(pts, counts, np.array([3]), CELL, 0.1, np.linspace(0, 1, 9, endpoint=False))
    after = count_hits(pts["x"], pts["y"], pts["layer"], pts["E"], counts, CELL, 0.1)
    assert after[0] == 3
    np.testing.assert_array_equal(pts["E"], e0)  # energies are untouched
    moved = np.hypot(pts["x"] - x0, pts["y"] - y0)
    assert moved[[0, 1, 2, 8]].max() == 0 and moved[7] == 0  # the cluster and far point stay
    assert (moved > 0).sum() == 3 and moved.max() < 1.0  # three lone points, small moves
    # a shower already at (or below) its target is left alone
    again = {k: v.copy() for k, v in pts.items()}
    calibrate_hits(again, counts, np.array([5]), CELL, 0.1, np.zeros(9))
    for k in pts:
        np.testing.assert_array_equal(again[k], pts[k])


def test_calibration_is_per_shower():
    """A shower's result depends on its own target and numbers, not on the others."""
    one = _shower()
    two = {k: np.concatenate([v, v]) for k, v in _shower().items()}
    u = np.linspace(0, 1, 9, endpoint=False)
    calibrate_hits(one, np.array([9]), np.array([4]), CELL, 0.1, u)
    calibrate_hits(two, np.array([9, 9]), np.array([4, 6]), CELL, 0.1, np.concatenate([u, u]))
    for k in one:
        np.testing.assert_array_equal(two[k][:9], one[k])
    hits = count_hits(two["x"], two["y"], two["layer"], two["E"], np.array([9, 9]), CELL, 0.1)
    assert list(hits) == [4, 6]
