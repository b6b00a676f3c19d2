"""Statistical amplification (pointcalo amplify): the measure is checked on samples whose
worth is known: a sample resampled with replacement from N values is worth about N (it holds
no more information), a sample drawn from the true density is worth far more than N."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pointcalo.cli import main
from pointcalo.metrics.amplification import amplification


def _gamma(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.gamma(3.0, 1.0, n)


def test_a_resampled_sample_is_worth_its_training_showers():
    """n_eff / N of a sample drawn with replacement from N Geant4-like values scatters
    around 1 (the training sample's chi-square with K - 1 degrees of freedom: about 30 %
    per training set); the median over independent training sets is near 1."""
    factors = []
    for seed in range(9):
        rng = np.random.default_rng(seed)
        truth, train = _gamma(rng, 20_000), _gamma(rng, 500)
        r = amplification(truth, rng.choice(train, 50_000), 500, boots=20, seed=seed)
        assert r.factor_interval[0] <= r.factor <= r.factor_interval[1]
        factors.append(r.factor)
    assert 0.7 < np.median(factors) < 1.5, factors
    assert max(factors) < 3


def test_a_sample_of_the_true_density_is_worth_more_than_its_training_showers():
    for seed in range(3):
        rng = np.random.default_rng(100 + seed)
        truth = _gamma(rng, 20_000)
        r = amplification(truth, _gamma(rng, 50_000), 500, boots=20, seed=seed)
        assert r.factor > 20  # beyond what this truth resolves, or nearly
        assert r.factor_interval[0] > 10  # and the bootstrap's lower bound says so too


def test_a_biased_generator_is_worth_less_the_more_it_is_off():
    rng = np.random.default_rng(7)
    truth = _gamma(rng, 20_000)
    worth = [
        amplification(truth, _gamma(rng, 50_000) * (1 + shift), 500, boots=5).n_eff
        for shift in (0.01, 0.03, 0.1)
    ]
    assert worth[0] > worth[1] > worth[2] > 0


def test_amplification_refuses_too_few_values():
    from pointcalo.errors import PointcaloError

    with pytest.raises(PointcaloError, match="truth has 30 showers, 40 needed"):
        amplification(np.arange(30.0), np.arange(100.0), 10)


def test_amplify_command_on_shower_files(tmp_path, capsys):
    """End to end on simulated showers: a 'model' that replays 40 training showers is worth
    far fewer Geant4 showers than fresh showers of the same simulator, and the report,
    JSON and plots are written."""
    from pointcalo import io
    from pointcalo.simulate import ShowerSimulator

    sim = ShowerSimulator()
    truth = io.write(sim.simulate(1000, (20e3, 60e3), seed=1), tmp_path / "truth.h5")
    train = sim.simulate(40, (20e3, 60e3), seed=2)
    idx = np.random.default_rng(0).integers(0, 40, 1000)
    replay = io.write(train[idx], tmp_path / "replay.h5")
    fresh = io.write(sim.simulate(1000, (20e3, 60e3), seed=3), tmp_path / "fresh.h5")
    args = ["amplify", "--truth", str(truth), "--n-train", "40", "--bins", "10",
            "--bootstrap", "10", "--observables", "e_ratio,cog_z,width", "-q"]  # fmt: skip
    assert main([*args, "--generated", str(replay), "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--generated", str(fresh), "--out", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "amplify.json").read_text())
    b = json.loads((tmp_path / "b" / "amplify.json").read_text())

    def worth(report, name):
        v = report["observables"][name]["n_eff"]
        return np.inf if v == "inf" else v

    for name in ("e_ratio", "cog_z", "width"):
        assert worth(a, name) < 200  # 40 showers replayed: worth about 40
        assert worth(b, name) > 2 * worth(a, name)
        assert (tmp_path / "a" / f"amplify_{name}.png").stat().st_size > 1000
    assert "| e_ratio |" in (tmp_path / "a" / "amplify.md").read_text()
    assert main([*args, "--out", str(tmp_path / "c")]) == 2
    assert "--generated FILE or --model" in capsys.readouterr().err
