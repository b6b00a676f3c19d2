"""Grid alignments and the grid-free point observables of the evaluation protocol."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

import voxelize as vx
from pointcalo.errors import PointcaloError
from pointcalo.metrics import alignment
from pointcalo.metrics.compare import compare_views
from pointcalo.metrics.observables import compute
from pointcalo.metrics.point_structure import PAIR_EDGES, adjacency_profile, point_structure
from pointcalo.showers import make_showers

PITCH = 5.088 / 6
CELL = 5.088


def _showers(e, x, y, layer, counts, inc=50e3):
    n = len(counts)
    pts = {
        "E": np.asarray(e, np.float32),
        "x": np.asarray(x, np.float32),
        "y": np.asarray(y, np.float32),
        "layer": np.asarray(layer, np.int32),
    }
    return make_showers(np.full(n, inc, np.float32), pts, counts=np.asarray(counts))


def test_offsets_are_lattice_steps_uniform_over_a_cell_and_the_same_for_every_file():
    grid = vx.ild()
    off = alignment.offsets("random", grid, 6000, seed=3, lattice=PITCH)
    steps = off / PITCH
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-9)  # whole sub-cells: exact
    values, counts = np.unique(np.round(steps[:, 0]).astype(int), return_counts=True)
    assert list(values) == [-3, -2, -1, 0, 1, 2]  # every position of the axis in a cell
    assert counts.min() > 850 and counts.max() < 1150
    # shower i has its offset whatever chunk it is read in
    part = alignment.offsets("random", grid, 100, first_index=2000, seed=3, lattice=PITCH)
    np.testing.assert_array_equal(part, off[2000:2100])
    half = alignment.offsets("half-cell", grid, 2)
    np.testing.assert_allclose(half, CELL / 2)
    with pytest.raises(PointcaloError, match="Cartesian"):
        alignment.offsets("random", vx.load_grid("ild-cylindrical"), 2)


def test_infer_lattice_finds_the_sub_cell_pitch_and_refuses_continuous_points():
    k = np.arange(-5, 5)
    s = _showers(np.ones(10), (k + 0.5) * PITCH, (k[::-1] + 0.5) * PITCH, k % 3, [10])
    assert alignment.infer_lattice(s, CELL) == pytest.approx(PITCH)
    t = _showers(np.ones(10), np.linspace(-3.1, 2.9, 10), np.zeros(10), np.zeros(10), [10])
    assert alignment.infer_lattice(t, CELL) is None


def test_moving_the_grid_moves_hits_but_not_energy_or_the_centre_of_gravity():
    """One layer, two deposits either side of the axis 1 sub-cell away: on the centred grid
    they share the central cell (1 hit), on the half-cell grid they sit in two cells."""
    s = _showers([1.0, 1.0], [-0.5 * PITCH, 0.5 * PITCH], [0.5 * PITCH] * 2, [3, 3], [2])
    grid = vx.ild()
    centred = compute(s, grid=grid, alignment="centred")
    half = compute(s, grid=grid, alignment="half-cell")
    assert centred.scalars["n_hits"][0] == 1 and half.scalars["n_hits"][0] == 2
    for obs in (centred, half):
        assert obs.scalars["e_vis"][0] == pytest.approx(2.0)
        assert obs.profiles["layer_hits"][0].sum() == obs.scalars["n_hits"][0]
    # measured from the shower axis, the centre of gravity does not move with the grid
    assert centred.scalars["cog_x"][0] == pytest.approx(0.0, abs=1e-9)
    assert half.scalars["cog_x"][0] == pytest.approx(0.0, abs=1e-9)
    assert half.scalars["r_mean"][0] == pytest.approx(np.hypot(CELL / 2, CELL / 2))


def test_point_structure_of_known_configurations():
    # shower 0: two points 3 mm apart in layer 0 and one alone in layer 1;
    # shower 1: two points in one sub-cell (a duplicate)
    s = _showers(
        [2.0, 1.0, 5.0, 1.0, 1.0],
        [0.0, 3.0, 0.0, 0.4, 0.4],
        [0.0, 0.0, 0.0, 0.4, 0.4],
        [0, 0, 1, 7, 7],
        [3, 2],
    )
    nn, owner, pair = point_structure(s)
    np.testing.assert_allclose(nn, [3.0, 3.0, 0.0, 0.0])  # the lone point has no neighbour
    np.testing.assert_array_equal(owner, [0, 0, 1, 1])
    np.testing.assert_allclose(pair.sum(1), 1.0)
    b3 = np.searchsorted(PAIR_EDGES, 3.0) - 1
    assert pair[0, b3] == pytest.approx(1.0)  # every E_i E_j of shower 0 at 3 mm
    assert pair[1, 0] == pytest.approx(1.0)  # the duplicate: all at distance 0


def test_adjacency_profile_sees_tracks_and_isolated_points():
    """A track of 5 touching sub-cells 20-24 mm out, a diagonal pair at 40 mm, points alone in
    their layer or 3 pitches from the next one, and a heavy core point that fixes the axis."""
    p = PITCH
    xs = [0.0] + [20 + i * p for i in range(5)] + [40.0, 40 + p] + [0.0, -40.0, -40 + 3 * p]
    ys = [0.0] * 6 + [0.0, p] + [0.0, 10.0, 10.0]
    layers = [0] * 6 + [3, 3] + [5, 0, 0]
    energies = [1e4] + [0.1] * 10  # the axis stays at the core point
    s = _showers(energies, xs, ys, layers, [len(xs)])
    points, share = adjacency_profile(s, p)
    ring = np.searchsorted(np.array([0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]), 22.0) - 1
    assert points[ring] == 5 and share[ring] == 1.0  # the track: every point has a neighbour
    assert points[ring + 1] == 4  # the diagonal pair (1.2 pitches) and the two far points
    assert share[ring + 1] == pytest.approx(0.5)  # 3 pitches apart is not a neighbour
    assert points[0] == 2 and share[0] == 0.0  # same x, y in another layer: no neighbour
    assert points.sum() == len(xs) and np.isnan(share[1])  # empty ring: no share
    # independent points of the same radial density have far fewer neighbours than a track
    rng = np.random.default_rng(0)
    r, phi = rng.uniform(20, 24, 40), rng.uniform(0, 2 * np.pi, 40)  # 5 % of the area lit
    lone = _showers(
        [1e4] + [0.1] * 40, [0, *r * np.cos(phi)], [0, *r * np.sin(phi)], [0] * 41, [41]
    )
    assert adjacency_profile(lone, p)[1][ring] < 0.5  # Poisson: 1 - exp(-0.37) = 0.31


def _dense(n, seed, snap_to_cells=False):
    """Showers with a narrow core (sigma 3 mm) in three layers; optionally every point moved
    to the centre of its 5.088 mm cell of the centred ILD grid (a generator "tuned" to it)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(150, 250, n)
    p = int(counts.sum())
    x = (np.floor(rng.normal(0, 3.0, p) / PITCH) + 0.5) * PITCH
    y = (np.floor(rng.normal(0, 3.0, p) / PITCH) + 0.5) * PITCH
    if snap_to_cells:
        x, y = np.round(x / CELL) * CELL + 0.5 * PITCH, np.round(y / CELL) * CELL + 0.5 * PITCH
    e = rng.exponential(0.5, p)
    return _showers(e, x, y, rng.integers(0, 3, p), counts)


def test_a_sample_tuned_to_the_centred_grid_fails_the_worst_alignment():
    """The defect the protocol exists for: points moved to their cell's centre give exactly the
    reference's cells on the centred grid, and nothing else."""
    ref, tuned = _dense(300, 1), _dense(300, 2, snap_to_cells=True)
    grid = vx.ild()
    views = {}
    for a in alignment.ALIGNMENTS:
        views[a] = tuple(
            compute(s, grid=grid, alignment=a, lattice=PITCH, point_structure=a == "centred")
            for s in (ref, tuned)
        )
    result = compare_views({a: (r, {"tuned": g}) for a, (r, g) in views.items()}, k=3)
    h = result["headline"]["tuned"]
    assert h["classifier_auc"]["centred"][0] < 0.75  # indistinguishable where it was tuned
    assert h["classifier_auc_worst"][0] > 0.9 and h["worst_view"] != "centred"
    assert h["point_w1_over_floor"]["nn_distance"] > 5  # the points show it on no grid at all


def test_voxels_cannot_be_realigned():
    with pytest.raises(PointcaloError, match="alignment"):
        compute(
            voxels=np.zeros((2, vx.ild().n_voxels)),
            incident_energy=np.ones(2),
            alignment="half-cell",
        )


def test_shift_moves_every_point_of_its_shower():
    s = _showers(np.ones(3), [0.0, 1.0, 2.0], [0.0, 0.0, 0.0], [0, 0, 0], [2, 1])
    moved = alignment.shift(s, np.array([[1.0, -1.0], [2.0, 0.5]]))
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(moved.points.x)), [1.0, 2.0, 4.0])
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(moved.points.y)), [-1.0, -1.0, 0.5])


def test_evaluate_on_another_alignment_says_so(tmp_path):
    from pointcalo import io
    from pointcalo.cli import main

    ref, gen = tmp_path / "r.h5", tmp_path / "g.h5"
    io.write(_dense(120, 1), ref)
    io.write(_dense(120, 2, snap_to_cells=True), gen)
    out = tmp_path / "ev"
    args = ["evaluate", "--reference", str(ref), "--generated", str(gen), "--out", str(out)]
    assert main([*args, "--alignment", "half-cell", "--batches", "3", "-q"]) == 0
    import json

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["alignment"] == "half-cell"
    assert "(half-cell on the shower axis)" in (out / "summary.md").read_text()
