"""Hit counting (the shower flow's optional hit-count feature)."""

from __future__ import annotations

import numpy as np

import voxelize as vx
from pointcalo.metrics.observables import compute
from pointcalo.models.showerflow.hits import count_hits
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
