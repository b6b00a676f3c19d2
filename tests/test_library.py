"""The frozen-shower library with named conditions: nearest stored shower in energy, theta and
particle; rotated to the requested azimuth and moved to the requested impact point."""

from __future__ import annotations

import awkward as ak
import numpy as np

from pointcalo.clouds import from_showers
from pointcalo.config import validate_config
from pointcalo.generation import generate, load_model
from pointcalo.showers import make_showers
from pointcalo.train.engine import train

NAMES = ("theta", "phi", "pdg", "impact_x", "impact_y")


def _inclined_showers(n: int, seed: int) -> tuple:
    """Toy showers whose points run along the particle's direction: layer ``l`` centred at
    ``impact + 5 l tan(theta) (cos phi, sin phi)`` mm; electrons carry twice the energy per
    point of photons (so the particle can be told from the showers)."""
    rng = np.random.default_rng(seed)
    named = {
        "theta": rng.uniform(0.0, 0.7, n),
        "phi": rng.uniform(0.0, 2 * np.pi, n),
        "pdg": rng.choice([11.0, 22.0], n),
        "impact_x": rng.uniform(-2.5, 2.5, n),
        "impact_y": rng.uniform(-2.5, 2.5, n),
    }
    counts = np.full(n, 60)
    owner = np.repeat(np.arange(n), counts)
    layer = np.tile(np.repeat(np.arange(30), 2), n)
    reach = 5.0 * layer * np.tan(named["theta"][owner])
    x = named["impact_x"][owner] + reach * np.cos(named["phi"][owner])
    y = named["impact_y"][owner] + reach * np.sin(named["phi"][owner])
    e = np.where(named["pdg"][owner] == 11.0, 2.0, 1.0)
    points = {"E": e, "x": x, "y": y, "layer": layer}
    showers = make_showers(
        rng.uniform(20e3, 60e3, n), points, offsets=np.concatenate([[0], np.cumsum(counts)]),
        fields=named,
    )  # fmt: skip
    return showers, named


def test_library_draws_the_nearest_shower_and_moves_it_to_the_requested_direction(tmp_path):
    showers, _ = _inclined_showers(300, seed=0)
    cfg = validate_config({
        "model": {"name": "library", "k": 1},
        "data": {"val_fraction": 0.0, "conditions": list(NAMES)},
        "train": {"steps": 1, "batch_size": 1, "device": "cpu", "out": str(tmp_path / "lib")},
    })  # fmt: skip
    data = from_showers(showers, conditions=NAMES)
    m = load_model(train(cfg, data=data, progress=False, log=lambda m: None))
    assert m.model.conditions == NAMES
    n = 40
    want = {
        "theta": np.full(n, 0.5), "phi": np.linspace(0, 6, n), "pdg": np.full(n, 11.0),
        "impact_x": np.full(n, 1.5), "impact_y": np.full(n, -0.5),
    }  # fmt: skip
    got = generate(m.model, m.net, m.normalizer, np.full(n, 40e3), m.cfg, seed=3, conditions=want)
    counts = np.diff(got.offsets)
    owner = np.repeat(np.arange(n), counts)
    pts = got.points
    # the particle matches exactly (electron showers: energy per point twice a photon's, times
    # the energy scaling, the same for every point of a shower)
    e = pts["E"].astype(np.float64)
    assert np.allclose(e, np.repeat(np.bincount(owner, e) / counts, counts))
    # the last layer's point sits at impact + 5 * 29 * tan(theta_stored) * (cos, sin)(phi_req):
    # azimuth and impact point as asked (to the snap onto the 0.848 mm sensor lattice: at most
    # 0.6 mm at 70 mm, 0.01 rad), the reach that of the nearest stored theta
    last = pts["layer"] == 29
    assert np.array_equal(np.bincount(owner[last], minlength=n), np.ones(n))  # merged: 1 point
    dx = pts["x"][last] - want["impact_x"]
    dy = pts["y"][last] - want["impact_y"]
    turn = np.angle(np.exp(1j * (np.arctan2(dy, dx) - want["phi"])))
    assert np.all(np.abs(turn) < 0.01), turn
    reach = np.hypot(dx, dy)
    assert np.all(np.abs(reach - 5 * 29 * np.tan(0.5)) < 5 * 29 * 0.05)  # theta within ~0.03
    # without transform: the stored shower as it is, at its own azimuth
    raw_cfg = cfg.model.model_copy(update={"transform": False})
    raw_run = m.cfg.model_copy(update={"model": raw_cfg})
    raw = generate(m.model, m.net, m.normalizer, np.full(n, 40e3), raw_run, seed=3, conditions=want)
    assert not np.allclose(np.sort(raw.points["x"]), np.sort(pts["x"]))
    assert isinstance(showers, ak.Array)


def test_the_impact_frame_trains_relative_to_the_impact_point_and_generates_back(tmp_path):
    """``data.frame: impact``: training points are relative to each shower's impact point
    (one place: pointcalo.frames), generated points are moved back to the requested one; the
    frame needs the impact point among the conditions."""
    import pytest

    from pointcalo import frames
    from pointcalo.errors import ConfigError
    from pointcalo.train.datasets import prepare

    showers, _ = _inclined_showers(200, seed=1)
    data = from_showers(showers, conditions=NAMES)
    moved = frames.to_model_frame(data, "impact")
    first = moved.points["layer"] == 0  # layer 0: the shower starts at its impact point
    assert np.allclose(moved.points["x"][first], 0, atol=1e-4)
    assert np.allclose(moved.points["y"][first], 0, atol=1e-4)
    assert not np.allclose(data.points["x"][first], 0, atol=1e-4)  # the caller's data as it was
    back = frames.to_detector_frame(moved.points, moved.offsets, data.extra, "impact")
    np.testing.assert_allclose(back["x"], data.points["x"], atol=1e-4)
    run = {"steps": 1, "batch_size": 1, "device": "cpu", "out": str(tmp_path / "lib")}
    cfg = validate_config({
        "model": {"name": "library", "k": 1},
        "data": {"val_fraction": 0.0, "conditions": list(NAMES), "frame": "impact"},
        "train": run,
    })  # fmt: skip
    prepared = prepare(cfg, data=data)
    assert np.allclose(prepared.train.points["x"][prepared.train.points["layer"] == 0], 0,
                       atol=1e-4)  # fmt: skip
    m = load_model(train(cfg, data=data, progress=False, log=lambda m: None))
    n = 30
    want = {
        "theta": np.full(n, 0.3), "phi": np.full(n, 2.0), "pdg": np.full(n, 22.0),
        "impact_x": np.linspace(-2.5, 2.5, n), "impact_y": np.full(n, 1.7),
    }  # fmt: skip
    got = generate(m.model, m.net, m.normalizer, np.full(n, 30e3), m.cfg, seed=2, conditions=want)
    owner = np.repeat(np.arange(n), np.diff(got.offsets))
    first = got.points["layer"] == 0
    x0 = np.bincount(owner[first], got.points["x"][first], n) / np.bincount(owner[first], None, n)
    assert np.all(np.abs(x0 - want["impact_x"]) <= 0.425)  # at the impact, to the lattice snap
    with pytest.raises(ConfigError, match=r"needs the impact point among data\.conditions"):
        validate_config({
            "model": {"name": "library"}, "train": run,
            "data": {"conditions": ["theta"], "frame": "impact"},
        })  # fmt: skip
