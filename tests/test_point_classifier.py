"""Graph-network classifier test on raw points (pointcalo.metrics.point_classifier)."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from pointcalo import io
from pointcalo.cli import main
from pointcalo.metrics.point_classifier import point_classifier_auc, point_sample
from pointcalo.metrics.report import evaluate
from pointcalo.showers import make_showers


def _showers(n: int, seed: int, paired: bool) -> ak.Array:
    """Showers of 60 points in one layer, x and y ~ N(0, 10 mm), E ~ Exp(1 MeV). ``paired``:
    the points come in pairs 0.3 mm apart (deposits along a track), which changes each point's
    nearest-neighbour distance but hardly any per-shower sum or moment."""
    rng = np.random.default_rng(seed)
    counts = np.full(n, 60)
    p = int(counts.sum())
    if paired:
        centre = rng.normal(0, 10, (p // 2, 2))
        angle = rng.uniform(0, 2 * np.pi, p // 2)
        step = 0.15 * np.stack([np.cos(angle), np.sin(angle)], 1)
        xy = np.stack([centre - step, centre + step], 1).reshape(p, 2)
    else:
        xy = rng.normal(0, 10, (p, 2))
    points = {
        "E": rng.exponential(1.0, p).astype(np.float32),
        "x": xy[:, 0].astype(np.float32),
        "y": xy[:, 1].astype(np.float32),
        "layer": np.zeros(p, np.int32),
    }
    return make_showers(rng.uniform(10e3, 90e3, n), points, counts=counts)


def test_point_sample_draws_at_most_points_per_shower_reproducibly():
    s = _showers(10, 0, paired=False)
    a, b = (point_sample(s, 25, seed=1, mode="uniform") for _ in range(2))
    assert a.n_showers == 10 and np.all(np.diff(a.ptr) == 25)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.array_equal(a.values, point_sample(s, 25, seed=2, mode="uniform").values)
    # "core" (the default): the 25 points nearest the axis, whatever the seed
    core = point_sample(s, 25, seed=1)
    np.testing.assert_array_equal(core.values, point_sample(s, 25, seed=2).values)
    r = np.hypot(core.values[:25, 1], core.values[:25, 2])
    flat0 = ak.flatten(s.points[:1])
    r_all = np.sort(np.hypot(ak.to_numpy(flat0.x), ak.to_numpy(flat0.y)))
    assert r.max() <= r_all[24] + 1e-6
    # drawn points are points of the shower, without repetition
    flat = ak.flatten(s.points)
    first = {(float(flat.x[i]), float(flat.y[i])) for i in range(60)}
    drawn = {tuple(p) for p in a.values[:25, 1:3].astype(np.float32).tolist()}
    assert len(drawn) == 25 and drawn <= first
    full = point_sample(s, 100)
    assert np.all(np.diff(full.ptr) == 60) and np.array_equal(full.n_points, np.full(10, 60))
    sub = full.subset(np.array([3, 1]))
    np.testing.assert_array_equal(sub.values[:60], full.values[180:240])


def test_separates_track_like_pairs():
    ref, gen = _showers(300, 1, paired=True), _showers(300, 2, paired=False)
    r = point_classifier_auc(point_sample(ref), point_sample(gen), seed=0)
    assert r["auc"] > 0.85, r
    # the same distribution: at chance
    same = point_classifier_auc(
        point_sample(_showers(300, 3, paired=False)), point_sample(gen), seed=0
    )
    assert abs(same["auc"] - 0.5) < 0.12, same


def test_evaluate_reports_the_point_classifier_beside_its_floor(tmp_path):
    ref, gen = _showers(300, 4, paired=True), _showers(200, 5, paired=False)
    m = evaluate(ref, gen, k=2, points=(point_sample(ref), point_sample(gen)), out=tmp_path)
    pc = m["point_classifier_auc"]
    assert pc["generated"][0] > 0.7 and abs(pc["floor"][0] - 0.5) < 0.2
    assert pc["points_per_shower"] == 256 and pc["showers_per_class"] == [150, 150]
    assert (
        "point classifier AUC (EdgeConv, 256 points per shower)"
        in (tmp_path / "summary.md").read_text()
    )
    with pytest.raises(Exception, match="point samples have"):
        evaluate(ref, gen, k=2, points=(point_sample(gen), point_sample(gen)))


def test_cli_evaluate_and_compare_with_the_point_classifier(tmp_path, capsys):
    ref, gen = tmp_path / "ref.h5", tmp_path / "gen.h5"
    io.write(_showers(100, 6, paired=True), ref)
    io.write(_showers(100, 7, paired=False), gen)
    args = ["--reference", str(ref), "--point-classifier", "--point-classifier-points", "32"]
    main(["evaluate", *args, "--generated", str(gen), "--out", str(tmp_path / "ev"), "-q"])
    text = (tmp_path / "ev" / "summary.md").read_text()
    assert "point classifier AUC (EdgeConv, 32 points per shower)" in text
    compare = ["compare", *args, "--generated", str(gen), "--labels", "free", "--voxel-classifier"]
    main([*compare, "--out", str(tmp_path / "c")])
    out = capsys.readouterr().out
    assert "| AUC ild-cylindrical | voxel AUC (worst view) | point AUC |" in out
    assert "| free |" in out
