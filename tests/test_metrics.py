from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import linalg

import voxelize as vx
from pointcalo.cli import main
from pointcalo.data import example_path, load_example
from pointcalo.errors import PointcaloError
from pointcalo.metrics import classifier_auc, compute, evaluate, fpd, kpd, separation_power, w1
from pointcalo.metrics.distances import frechet_distance
from pointcalo.showers import make_showers


def test_w1_of_shifted_gaussians_is_one():
    rng = np.random.default_rng(0)
    value, err = w1(rng.normal(0, 1, 20000), rng.normal(1, 1, 20000), k=5, seed=1)
    assert value == pytest.approx(100.0, abs=4.0)  # x100
    assert 0 < err < 5


def test_w1_identical_distributions_at_floor_and_seeded():
    rng = np.random.default_rng(1)
    a, b, c = (rng.exponential(2.0, 10000) for _ in range(3))
    same, same_err = w1(a, b, k=5, seed=3)
    floor, floor_err = w1(a, c, k=5, seed=3)
    assert same < 10 and floor < 10
    assert abs(same - floor) < 3 * (same_err + floor_err)
    assert w1(a, b, k=5, seed=3) == (same, same_err)  # explicit seed: reproducible
    assert w1(a, b, k=5, seed=4) != (same, same_err)


def test_w1_pooled_follows_showers():
    # values pooled over "cells": shower i owns values i*10 .. i*10+9
    rng = np.random.default_rng(2)
    vals = rng.normal(0, 1, 1000)
    owner = np.repeat(np.arange(100), 10)
    v, _ = w1(vals, vals + 1.0, ref_owner=owner, gen_owner=owner, n_ref=100, n_gen=100, k=4)
    assert v == pytest.approx(100.0, abs=15)
    with pytest.raises(PointcaloError, match="too few showers for 20 batches"):
        w1(vals, vals, ref_owner=owner, gen_owner=owner, n_ref=100, n_gen=100, k=20)


def test_classifier_auc():
    rng = np.random.default_rng(3)
    same = classifier_auc(rng.normal(size=(1500, 4)), rng.normal(size=(1500, 4)), seed=0)
    assert abs(same[0] - 0.5) < 0.05
    shifted = rng.normal(size=(1500, 4))
    shifted[:, 0] += 3.0
    diff = classifier_auc(rng.normal(size=(1500, 4)), shifted, seed=0)
    assert diff[0] > 0.9
    assert diff[1] < 0.05


def test_frechet_distance_closed_form_and_fpd():
    rng = np.random.default_rng(4)
    mu1, mu2 = np.array([1.0, 2.0]), np.array([1.5, 1.0])
    c1 = np.array([[1.0, 0.3], [0.3, 0.5]])
    c2 = np.array([[0.5, -0.1], [-0.1, 0.8]])
    expected = float(np.sum((mu1 - mu2) ** 2) + np.trace(c1 + c2 - 2 * linalg.sqrtm(c1 @ c2).real))
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(expected, rel=1e-10)
    ref = rng.multivariate_normal(mu1, c1, 40000)
    gen = rng.multivariate_normal(mu2, c2, 40000)
    s = np.abs(ref).max(0)  # FPD works on features scaled by the reference's max |value|
    closed = frechet_distance(mu1 / s, c1 / np.outer(s, s), mu2 / s, c2 / np.outer(s, s))
    value, err = fpd(ref, gen, seed=0)
    assert value == pytest.approx(closed, rel=0.05)
    assert err < 0.05 * closed
    same, _ = fpd(ref, rng.multivariate_normal(mu1, c1, 40000), seed=0)
    assert same < 0.02 * closed


def test_kpd_separates():
    rng = np.random.default_rng(5)
    ref = rng.normal(size=(4000, 3))
    v_same, e_same = kpd(ref, rng.normal(size=(4000, 3)), seed=0)
    v_diff, _ = kpd(ref, rng.normal(0.5, 1.0, size=(4000, 3)), seed=0)
    assert abs(v_same) < 3 * e_same + 1e-3
    assert v_diff > 20 * abs(v_same) and v_diff > 10 * e_same


def test_separation_power_limits():
    rng = np.random.default_rng(6)
    a = rng.normal(size=5000)
    assert separation_power(a, rng.normal(size=5000))[0] < 0.02
    assert separation_power(a, a + 100.0)[0] == pytest.approx(1.0, abs=0.02)


def test_observables_of_hand_made_showers():
    grid = vx.ild()
    d = float(grid.dx[0])
    # shower 0: 1 MeV at the axis in layer 0, 3 MeV one cell to +x in layer 2 (two points in the
    # same cell), and 0.05 MeV below the 0.1 MeV threshold in layer 5
    # shower 1: 2 MeV at (0, -d) in layer 1
    showers = make_showers(
        [100.0, 50.0],
        {
            "E": np.array([1.0, 1.0, 2.0, 0.05, 2.0], np.float32),
            "x": np.array([0.0, d, d + 0.5, 0.0, 0.0], np.float32),
            "y": np.array([0.0, 0.0, 0.3, 0.0, -d], np.float32),
            "layer": np.array([0, 2, 2, 5, 1], np.int32),
        },
        counts=[4, 1],
    )
    obs = compute(showers, grid=grid, threshold=0.1)
    s = obs.scalars
    np.testing.assert_allclose(s["n_hits"], [2, 1])
    np.testing.assert_allclose(s["e_vis"], [4.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(s["e_ratio"], [0.04, 0.04], rtol=1e-6)
    np.testing.assert_allclose(s["cog_x"], [3 * d / 4, 0.0], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(s["cog_y"], [0.0, -d], atol=1e-6)
    depth = grid.layer_depth
    np.testing.assert_allclose(s["cog_z"], [(depth[0] + 3 * depth[2]) / 4, depth[1]], rtol=1e-6)
    np.testing.assert_allclose(s["n_points"], [4, 1])
    np.testing.assert_allclose(obs.profiles["layer_energy"][0, :3], [1.0, 0.0, 3.0], rtol=1e-6)
    np.testing.assert_allclose(obs.profiles["layer_energy"].sum(1), [4.0, 2.0], rtol=1e-6)
    np.testing.assert_allclose(obs.profiles["layer_width"], 0.0, atol=1e-6)  # one cell a layer
    np.testing.assert_allclose(
        obs.profiles["radial_energy"][:, :2], [[1.0, 3.0], [0.0, 2.0]], rtol=1e-6
    )
    np.testing.assert_allclose(
        np.sort(obs.pooled["cell_energy"].values), [1.0, 2.0, 3.0], rtol=1e-6
    )
    assert len(obs.pooled["point_energy"].values) == 5


def test_layer_width_of_two_cells():
    grid = vx.ild()
    d = float(grid.dx[0])
    showers = make_showers(
        [10.0], {"E": [1.0, 1.0], "x": [-d, d], "y": [0.0, 0.0], "layer": [3, 3]}, counts=[2]
    )
    obs = compute(showers, grid=grid)
    assert obs.profiles["layer_width"][0, 3] == pytest.approx(d, rel=1e-6)  # std of -d, +d
    assert obs.scalars["width"][0] == pytest.approx(d, rel=1e-6)


def test_observables_of_voxels_equal_those_of_points():
    showers = load_example()[:20]
    grid = vx.ild()
    from_points = compute(showers, grid=grid)
    voxels = vx.project(showers, grid).voxels
    from_voxels = compute(
        voxels=voxels, incident_energy=np.asarray(showers.incident_energy), grid=grid
    )
    for k in ("n_hits", "e_vis", "cog_z", "width"):
        np.testing.assert_allclose(from_voxels.scalars[k], from_points.scalars[k], rtol=1e-5)
    assert "n_points" not in from_voxels.scalars


def test_evaluate_writes_report_and_sees_a_difference(tmp_path):
    showers = load_example()
    ref, same = showers[0::2], showers[1::2]
    m = evaluate(ref, same, k=2, seed=0, out=tmp_path)
    assert (tmp_path / "metrics.json").exists() and (tmp_path / "summary.md").exists()
    assert json.loads((tmp_path / "metrics.json").read_text())["grid"] == "ild"
    for name in m["plots"]:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    assert "W1 x100" in (tmp_path / "summary.md").read_text()
    # a "model" that loses 30 % of the energy is far from the floor in E_vis / E_inc
    from pointcalo.showers import flatten, from_flat

    flat = flatten(same)
    scaled = from_flat(
        type(flat)(flat.offsets, {**flat.points, "E": flat.points["E"] * 0.7}, flat.fields)
    )
    bad = evaluate(ref, scaled, k=2, seed=0)
    e_gen, e_floor = bad["w1x100"]["e_ratio"]["generated"], bad["w1x100"]["e_ratio"]["floor"]
    assert e_gen[0] > e_floor[0] + 3 * (e_gen[1] + e_floor[1])


def test_evaluate_refuses_mismatches():
    showers = load_example()
    a = compute(showers[:80], grid="ild")
    b = compute(showers[80:], grid="calogan", layer_map=np.repeat([0, 1, 2], [8, 14, 8]))
    with pytest.raises(PointcaloError, match="grid 'ild' but generated on 'calogan'"):
        evaluate(a, b)
    with pytest.raises(PointcaloError, match="too few showers"):
        evaluate(showers[:30], showers[30:60], k=5)
    c = compute(showers[80:], grid="ild", threshold=0.5)
    with pytest.raises(PointcaloError, match="thresholds differ"):
        evaluate(a, c)


def test_evaluate_cli(tmp_path, capsys):
    from pointcalo import io

    showers = load_example()
    io.write(showers[:80], tmp_path / "ref.h5")
    io.write(showers[80:], tmp_path / "gen.root")
    assert (
        main(
            [
                "evaluate",
                "--reference",
                str(tmp_path / "ref.h5"),
                "--generated",
                str(tmp_path / "gen.root"),
                "--batches",
                "2",
                "--out",
                str(tmp_path / "ev"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "| e_vis |" in out and "classifier AUC" in out
    assert (tmp_path / "ev" / "metrics.json").exists()
    # voxel files on a grid other than the evaluation grid are refused
    assert (
        main(
            [
                "voxelize",
                str(example_path()),
                str(tmp_path / "cg.h5"),
                "--grid",
                "calochallenge-2",
                "-q",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "evaluate",
                "--reference",
                str(tmp_path / "ref.h5"),
                "--generated",
                str(tmp_path / "cg.h5"),
                "-q",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert "voxels are on grid 'calochallenge-2'" in capsys.readouterr().err


def test_voxel_classifier_option():
    showers = load_example()
    grid = vx.calogan()
    lm = np.repeat([0, 1, 2], [8, 14, 8])
    a = compute(showers[0::2], grid=grid, layer_map=lm, keep_voxels=True)
    b = compute(showers[1::2], grid=grid, layer_map=lm, keep_voxels=True)
    assert a.voxels.shape == (80, grid.n_voxels) and a.voxels.dtype == np.float32
    assert a.subset(np.arange(10)).voxels.shape == (10, grid.n_voxels)
    m = evaluate(a, b, grid=grid, k=2, seed=0)
    auc = m["voxel_classifier_auc"]["generated"][0]
    assert 0.2 < auc < 0.8  # Geant4 against Geant4: near 0.5 with 80 showers a side
    # a shower shifted by 3 cells in x is told apart from the voxels at once
    c = compute(showers[1::2], grid=grid, layer_map=lm, keep_voxels=True)
    c.voxels = np.roll(c.voxels.reshape(80, -1), 3, axis=1)
    m = evaluate(a, c, grid=grid, k=2, seed=0)
    assert m["voxel_classifier_auc"]["generated"][0] > 0.9


def test_out_of_core_observables_equal_the_in_memory_ones(tmp_path):
    """A file streamed in chunks gives the in-memory path's numbers, with memory bounded by
    the chunk and a small sample per shower (not by the file)."""
    import tracemalloc

    import voxelize as vx
    from pointcalo import io
    from pointcalo.metrics.observables import compute
    from pointcalo.metrics.report import load_observables
    from pointcalo.simulate import ShowerSimulator

    showers = ShowerSimulator().simulate(480, (20e3, 60e3), seed=3)
    small = io.write(showers[:120], tmp_path / "small.h5")
    big = io.write(showers, tmp_path / "big.h5")
    grid = vx.ild()
    streamed = load_observables(big, grid, 0.1, chunk_size=40)
    memory = compute(io.read(big), grid=grid, threshold=0.1)
    for k in memory.scalars:
        np.testing.assert_array_equal(streamed.scalars[k], memory.scalars[k])
    for k in memory.profiles:
        np.testing.assert_array_equal(streamed.profiles[k], memory.profiles[k])
    for k in memory.pooled:
        a, b = streamed.pooled[k], memory.pooled[k]
        np.testing.assert_array_equal(a.values, b.values)
        np.testing.assert_array_equal(a.owner, b.owner)
        np.testing.assert_array_equal(a.weights, b.weights)
        # the weighted sample keeps each shower's weight: its number of points / cells
        assert np.bincount(a.owner, a.weights).max() > 256
    np.testing.assert_allclose(streamed.mean_image, memory.mean_image, rtol=1e-12)

    def peak(fn):
        tracemalloc.start()
        fn()
        out = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return out

    p_small = peak(lambda: load_observables(small, grid, 0.1, chunk_size=40))
    p_big = peak(lambda: load_observables(big, grid, 0.1, chunk_size=40))
    p_whole = peak(lambda: compute(io.read(big), grid=grid, threshold=0.1))
    assert p_big < 1.6 * p_small  # 4x the showers, about the same peak: bounded by the chunk
    assert p_big < 0.5 * p_whole  # and well below reading the file whole


def test_separation_power_uses_the_given_batch_size():
    """compare() passes W1's batch size to the separation power, so value and floor use the
    same number of showers (before, each took the largest batch its two samples allowed)."""
    from pointcalo.errors import PointcaloError
    from pointcalo.metrics.distances import separation_power

    rng = np.random.default_rng(0)
    a, b = rng.normal(size=100), rng.normal(size=30)
    same = separation_power(a, b, k=2, size=10)[0]
    shifted = separation_power(a, b + 3.0, k=2, size=10)[0]
    # two distributions 3 sigma apart share no histogram bin of 10 showers: 1; one
    # distribution gives less (binning noise of 10 showers keeps it well above 0)
    assert 0 <= same < shifted == pytest.approx(1.0)
    with pytest.raises(PointcaloError, match="2 batches of 20"):
        separation_power(a, b, k=2, size=20)  # 40 generated showers needed, 30 given


def test_voxel_classifier_keeps_the_voxels_either_sample_uses():
    from pointcalo.metrics.report import voxels_in_use

    ref = np.zeros((1000, 4))
    gen = np.zeros((1000, 4))
    ref[:, 0] = 1.0  # always lit in Geant4
    gen[:10, 1] = 2.0  # lit in 1 % of the generated showers only: tells them apart
    ref[:2, 2] = 3.0  # lit in 0.2 % of the showers: dropped
    assert voxels_in_use(ref, gen).tolist() == [True, True, False, False]


def test_compare_computes_the_reference_floor_once(monkeypatch):
    """Three samples against one reference: three sample comparisons and one floor (it used
    to be recomputed, identically, for every sample)."""
    from pointcalo.metrics import report
    from pointcalo.metrics.compare import compare_samples
    from pointcalo.metrics.observables import compute
    from tests.conftest import random_showers

    ref = compute(random_showers(120, seed=1))
    samples = {f"s{i}": compute(random_showers(120, seed=10 + i)) for i in range(3)}
    calls = []
    original = report.compare

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(report, "compare", counting)
    result = compare_samples(ref, samples, k=2)
    assert len(calls) == 4
    assert set(result["samples"]) == {"s0", "s1", "s2"}


def _comparison(auc, floor, w1, memo=None):
    """A compare_views result with one sample on two views: ``auc``, ``floor`` (mean, std over
    folds) on the worst view, ``w1``: observable -> W1/floor per view."""
    views = ("a", "b")
    return {
        "floor": {v: {"classifier_auc": list(floor)} for v in views},
        "headline": {
            "s": {
                "worst_view": "a",
                "classifier_auc_worst": list(auc),
                "worst_w1_over_floor": {"value": max(max(r) for r in w1.values()), "view": "a",
                                        "observable": max(w1, key=lambda k: max(w1[k]))},
                "memorisation_ratio": memo,
            }
        },
        "by_view": {
            v: {"samples": {"s": {"w1_over_floor": {k: r[i] for k, r in w1.items()}}}}
            for i, v in enumerate(views)
        },
    }  # fmt: skip


def test_verdicts_follow_their_rules():
    from pointcalo.metrics.verdict import verdict

    w1 = {"e_vis": (1.2, 1.9), "n_hits": (1.0, 3.5), "radial": (8.0, 2.0)}
    sep = verdict(_comparison((0.99, 0.01), (0.5, 0.03), w1), "s", "Geant4")
    assert sep["status"] == "separated" and "separated from Geant4" in sep["text"]
    assert sep["within"] == ["e_vis"] and list(sep["beyond"]) == ["radial", "n_hits"]
    assert sep["beyond"]["n_hits"] == 3.5  # the worst view counts
    # within twice the combined error of the mean over 5 folds (0.028 here)
    same = verdict(_comparison((0.53, 0.02), (0.51, 0.02), w1), "s")
    assert same["status"] == "indistinguishable"
    assert verdict(_comparison((0.58, 0.01), (0.51, 0.01), w1), "s")["status"] == "close"
    # too uncertain to tell 0.05 apart: no verdict, unless it is far off anyway
    assert verdict(_comparison((0.55, 0.1), (0.5, 0.1), w1), "s")["status"] == "unresolved"
    assert verdict(_comparison((0.95, 0.1), (0.5, 0.1), w1), "s")["status"] == "separated"
    copies = verdict(_comparison((0.5, 0.01), (0.5, 0.01), w1, memo=0.01), "s")
    assert "copies its training showers" in copies["text"]


def test_a_periodic_condition_is_seen_as_its_cosine_and_sine():
    """phi = 0 and phi = 2 pi are one direction: the normaliser gives them the same inputs."""
    from pointcalo.clouds import SHOWERS, Normalizer

    rng = np.random.default_rng(0)
    n = 200
    phi, theta = rng.uniform(0, 2 * np.pi, n), rng.uniform(0, 0.7, n)
    pts = {"E": np.ones(n), "x": np.zeros(n), "y": np.zeros(n), "layer": np.zeros(n, np.int32)}
    norm = Normalizer.fit(
        SHOWERS, pts, rng.uniform(1e4, 9e4, n), np.ones(n), {"phi": phi, "theta": theta}
    )
    assert norm.cond_names == ("log_c", "log_n", "cos_phi", "sin_phi", "theta")
    assert norm.n_extra == 3
    e, ones = np.full(2, 5e4), np.ones(2)
    same = norm.encode_cond(e, ones, {"phi": np.array([0.0, 2 * np.pi]), "theta": np.zeros(2)})
    np.testing.assert_allclose(same[0], same[1], atol=1e-6)
    other = norm.encode_cond(e, ones, {"phi": np.array([0.0, np.pi]), "theta": np.zeros(2)})
    assert abs(other[0, 2] - other[1, 2]) > 1.0  # cos differs by 2 before standardising
    back = Normalizer.from_dict(norm.to_dict())
    assert back.cond_names == norm.cond_names


def test_compare_per_bin_of_a_condition(tmp_path):
    """``compare --by theta=...``: the comparison again on the showers of each bin; a bin with
    too few showers says so; a bad --by is one line naming it."""
    from pointcalo import io
    from pointcalo.errors import PointcaloError
    from pointcalo.metrics.bins import parse_by
    from pointcalo.metrics.files import compare_files
    from tests.conftest import random_showers

    rng = np.random.default_rng(0)
    ref, gen = tmp_path / "ref.h5", tmp_path / "gen.h5"
    io.write(random_showers(400, seed=1, theta=rng.uniform(0, 0.6, 400)), ref)
    io.write(random_showers(400, seed=2, theta=rng.uniform(0, 0.6, 400)), gen)
    result = compare_files(
        str(ref), [str(gen)], labels=["g"], alignments=["centred"], extra_grids="none",
        out=str(tmp_path / "c"), by=("theta", [0.0, 0.3, 0.6, 0.7]), log=lambda m: None,
    )  # fmt: skip
    bins = result["by"]["bins"]
    assert [b["range"] for b in bins] == [[0.0, 0.3], [0.3, 0.6], [0.6, 0.7]]
    assert sum(b["n_reference"] for b in bins) == 400
    assert bins[2].get("too_small") and "headline" not in bins[2]
    for b in bins[:2]:
        assert 0.3 < b["headline"]["g"]["auc"][0] < 0.75  # the same distribution
    text = (tmp_path / "c" / "by_theta.md").read_text()
    assert "theta 0-0.3" in text and "too few showers" in text
    with pytest.raises(PointcaloError, match=r"--by: expected NAME=e0,e1"):
        parse_by("theta=0.5,0.1")
    with pytest.raises(PointcaloError, match=r"--by: .*tilt"):
        compare_files(str(ref), [str(gen)], alignments=["centred"], extra_grids="none",
                      by=("tilt", [0.0, 1.0]), log=lambda m: None)  # fmt: skip


def test_the_classifier_with_conditions_catches_a_sample_that_ignores_them(tmp_path):
    """Showers whose spread follows theta, against a sample with the same spreads but each
    shower's theta shuffled (right marginals, ignores the angle): the per-layer classifier
    alone cannot tell them apart, the one given theta can."""
    from pointcalo.metrics.compare import compare_samples
    from pointcalo.metrics.observables import compute
    from pointcalo.showers import make_showers

    rng = np.random.default_rng(0)

    def showers(n, theta):
        counts = np.full(n, 200)
        spread = np.repeat(2.0 + 30.0 * theta, counts)
        pts = {
            "E": rng.exponential(1.0, counts.sum()).astype(np.float32),
            "x": (rng.normal(0, 1, counts.sum()) * spread).astype(np.float32),
            "y": (rng.normal(0, 1, counts.sum()) * spread).astype(np.float32),
            "layer": rng.integers(0, 3, counts.sum()).astype(np.int32),
        }
        inc = np.full(n, 5e4, np.float32)
        return make_showers(inc, pts, counts=counts, fields={"theta": theta.astype(np.float32)})

    theta_ref = rng.uniform(0, 0.7, 600)
    ref = compute(showers(600, theta_ref))
    theta_gen = rng.uniform(0, 0.7, 600)
    good = compute(showers(600, theta_gen))
    ignores = compute(showers(600, theta_gen))
    ignores.conditions["theta"] = rng.permutation(theta_gen)  # shapes no longer follow theta
    result = compare_samples(ref, {"good": good, "ignores": ignores}, k=5, seed=0)
    rows = result["samples"]
    assert rows["ignores"]["classifier_auc"][0] < 0.65  # the marginals are right
    cond = {k: rows[k]["classifier_auc_conditioned"][0] for k in rows}
    assert cond["ignores"] > 0.75 and cond["good"] < 0.65 and cond["ignores"] > cond["good"] + 0.15
    assert "classifier_auc_conditioned" in result["floor"]


def test_observables_of_a_file_keep_its_conditions_across_chunks(tmp_path):
    """Read in chunks, every shower keeps its theta and particle (even a chunk where the
    particle does not change)."""
    import voxelize as vx
    from pointcalo import io
    from pointcalo.metrics.report import load_observables
    from tests.conftest import random_showers

    theta = np.linspace(0, 0.7, 30)
    pdg = np.repeat([22.0, 11.0], 15)
    io.write(random_showers(30, seed=3, theta=theta, pdg=pdg), tmp_path / "s.h5")
    obs = load_observables(tmp_path / "s.h5", vx.load_grid("ild"), 0.1, chunk_size=7)
    np.testing.assert_allclose(obs.conditions["theta"], theta, rtol=1e-6)
    np.testing.assert_array_equal(obs.conditions["pdg"], pdg)
    np.testing.assert_allclose(obs.subset(np.array([3, 29])).conditions["theta"], theta[[3, 29]])


def test_a_file_beyond_max_showers_is_evaluated_on_one_fixed_random_subset(tmp_path, monkeypatch):
    """Memory and time of an evaluation are bounded: a file with more showers than
    ``max_showers`` is read whole but observed on a fixed uniform subset of that many; the
    observables, the point classifier's sample and the per-shower fields pick the same
    showers, whatever the chunking; pooled values are capped per file, not per shower."""
    import voxelize as vx
    from pointcalo import io
    from pointcalo.metrics import observables as obs_mod
    from pointcalo.metrics.bins import field_values
    from pointcalo.metrics.observables import kept_showers, pool_limit_for
    from pointcalo.metrics.point_classifier import point_sample_file
    from pointcalo.metrics.report import load_observables
    from tests.conftest import random_showers

    kept = kept_showers(10_000, 2_500)
    assert len(kept) == len(np.unique(kept)) == 2_500 and np.all(np.diff(kept) > 0)
    # uniform: each quarter of the file holds about a quarter of the subset (binomial sd 22)
    assert np.all(np.abs(np.histogram(kept, bins=4, range=(0, 10_000))[0] - 625) < 100)
    assert kept_showers(2_500, 2_500) is None and kept_showers(10, 0) is None
    assert pool_limit_for(100) == 256 and pool_limit_for(10**9) == 16
    assert pool_limit_for(50_000) * 50_000 <= obs_mod.POOL_TOTAL

    theta = np.linspace(0.0, 0.9, 40)
    path = io.write(random_showers(40, seed=5, theta=theta), tmp_path / "s.h5")
    grid = vx.load_grid("ild")
    whole = load_observables(path, grid, 0.1, max_showers=None)
    chosen = kept_showers(40, 15)
    for chunk_size in (7, 64):
        capped = load_observables(path, grid, 0.1, chunk_size=chunk_size, max_showers=15)
        assert capped.n_showers == 15 and capped.meta["n_showers_in_file"] == 40
        np.testing.assert_array_equal(capped.incident_energy, whole.incident_energy[chosen])
        np.testing.assert_allclose(capped.conditions["theta"], theta[chosen], rtol=1e-6)
        np.testing.assert_array_equal(capped.scalars["e_vis"], whole.scalars["e_vis"][chosen])
    np.testing.assert_allclose(field_values(str(path), "theta", 15), theta[chosen], rtol=1e-6)
    sample = point_sample_file(path, points=8, max_showers=15)
    assert sample.n_showers == 15
    # a smaller total shrinks the per-shower pool: pooled memory stays fixed per file
    monkeypatch.setattr(obs_mod, "POOL_TOTAL", 40 * 20)
    small = load_observables(path, grid, 0.1, max_showers=None)
    counts = np.bincount(small.pooled["point_energy"].owner)
    assert counts.max() == 20 and len(small.pooled["point_energy"].values) <= 40 * 20
