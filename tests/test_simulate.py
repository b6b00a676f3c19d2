from __future__ import annotations

import awkward as ak
import h5py
import numpy as np
import pytest

from pointcalo.cli import main
from pointcalo.errors import PointcaloError
from pointcalo.simulate import SamplingCalorimeter, ShowerSimulator
from pointcalo.simulate.gflash import gamma_density, radial_parameters

BINS = [(10e3, 30e3), (30e3, 50e3), (50e3, 70e3), (70e3, 90e3)]


@pytest.fixture(scope="module")
def sim() -> ShowerSimulator:
    return ShowerSimulator()


def _np(a) -> np.ndarray:
    return ak.to_numpy(ak.flatten(a)).astype(np.float64)


def test_showers_follow_the_data_model_and_the_sensor_lattice(sim):
    s = sim.simulate(50, (10e3, 90e3), seed=2)
    assert str(s.type).startswith("50 * {incident_energy: float32, points: var * {E: float32")
    x, y = _np(s.points.x), _np(s.points.y)
    pitch = sim.geometry.pitch_mm
    frac = x / pitch - 0.5
    np.testing.assert_allclose(frac, np.round(frac), atol=1e-3)  # on sub-cell centres
    assert np.abs(x).max() < 150 and np.abs(y).max() < 150
    layers = _np(s.points.layer)
    assert layers.min() >= 0 and layers.max() <= 29
    assert _np(s.points.E).min() > 0
    # one point per sub-cell and layer
    shower = np.repeat(np.arange(50), ak.to_numpy(ak.num(s.points)))
    ix = np.floor(x / pitch).astype(np.int64) + 500
    iy = np.floor(y / pitch).astype(np.int64) + 500
    key = ((shower * 30 + layers.astype(np.int64)) * 1000 + ix) * 1000 + iy
    assert len(np.unique(key)) == len(key)


def test_seed_fixes_the_showers(sim):
    a = sim.simulate(40, (10e3, 90e3), seed=5)
    b = sim.simulate(40, (10e3, 90e3), seed=5)
    c = sim.simulate(40, (10e3, 90e3), seed=6)
    assert ak.array_equal(a, b)
    assert not ak.array_equal(a.incident_energy, c.incident_energy)


def test_mean_visible_energy_matches_the_expected_profile(sim):
    """Poisson crossings and their deposits keep the mean: simulated visible energy per layer
    equals the longitudinal model's expectation (same showers' parameters)."""
    rng = np.random.default_rng(0)
    energy = np.full(400, 50e3)
    lon = sim.longitudinal(energy, "electron", np.random.default_rng(1))
    expected = lon["visible"].sum(0) + lon["leading"].sum(0) * sim._deposit_moments[0]
    # the same showers, through the full chain: replay the stream
    showers = sim._chunk(energy, "electron", np.random.default_rng(1))
    got = np.bincount(_np(showers.points.layer).astype(int), _np(showers.points.E), 30)
    big = expected > 0.01 * expected.sum()
    # lateral leakage outside 30 x 30 cm is tiny for photons of 50 GeV
    np.testing.assert_allclose(got[big], expected[big], rtol=0.03)
    del rng


def test_photons_start_later_than_electrons(sim):
    def depth(particle):
        s = sim.simulate(300, 50e3, particle, seed=3)
        depth = sim.geometry.sensor_depth_mm()[_np(s.points.layer).astype(int)]
        return np.average(depth, weights=_np(s.points.E))

    # a photon converts after 9/7 X0 on average (X0_eff = 4.3 mm): about 5.5 mm deeper
    assert 3.0 < depth("photon") - depth("electron") < 8.0


def test_shower_maximum_grows_logarithmically_with_energy(sim):
    def t_max(e):
        lon = sim.longitudinal(np.full(4000, e), "electron", np.random.default_rng(4))
        return np.mean(np.log(lon["T"]))

    x0 = sim.geometry.effective(0)
    # T ~ ln(E / E_c): a factor 9 in energy moves the maximum by about ln 9 = 2.2 X0
    shift = np.exp(t_max(90e3)) - np.exp(t_max(10e3))
    assert 1.5 < shift < 2.8, (shift, x0)


def test_gflash_functions():
    t = np.linspace(0, 60, 60001)
    f = gamma_density(t, np.array(4.0), np.array(0.5))
    assert np.trapezoid(f, t) == pytest.approx(1.0, abs=1e-4)
    assert t[np.argmax(f)] == pytest.approx((4.0 - 1) / 0.5, abs=1e-2)  # T = (alpha-1)/beta
    r_c, r_t, p = radial_parameters(np.array([50.0]), np.array([1.0]), 74.0, 1.65, 0.70)
    assert 0 < r_c[0] < r_t[0] and 0 < p[0] <= 1


def test_geometry_of_the_shared_sample(g4_path):
    with h5py.File(g4_path) as f:
        depth = f.attrs["layer_depth_mm"]
    np.testing.assert_allclose(SamplingCalorimeter().sensor_depth_mm(), depth, atol=1e-9)
    eff = SamplingCalorimeter().effective(0)
    assert eff["X0"] == pytest.approx(4.30, abs=0.01)  # 2.1 mm W + 0.5 mm Si
    assert eff["RM"] == pytest.approx(9.5, abs=0.2)


def test_bad_arguments(sim):
    with pytest.raises(PointcaloError, match="particle must be one of"):
        sim.simulate(2, 1e4, "pion")
    with pytest.raises(PointcaloError, match="energy range"):
        sim.simulate(2, (5e4, 1e4))
    assert len(sim.simulate(0)) == 0


@pytest.fixture(scope="module")
def geant4_reference(g4_path):
    with h5py.File(g4_path) as f:
        off = f["offsets"][:]
        inc = f["incident_energy"][:].astype(np.float64)
        E = f["points/E"][:].astype(np.float64)
        layer = f["points/layer"][:].astype(np.int64)
        r = np.hypot(f["points/x"][:], f["points/y"][:])
    return off, inc, E, layer, r


def _bin_stats(off, inc, E, layer, r, lo, hi):
    shower = np.repeat(np.arange(len(inc)), np.diff(off))
    sel = (inc >= lo) & (inc < hi)
    pts = sel[shower]
    evis = np.bincount(shower[pts], E[pts], len(inc))[sel]
    ratio = evis / inc[sel]
    prof = np.bincount(layer[pts], E[pts], 30)
    radial = np.histogram(r[pts], [0, 1, 2, 4, 8, 16, 40], weights=E[pts])[0]
    return {
        "ratio": ratio.mean(),
        "spread": ratio.std() / ratio.mean(),
        "profile": prof / prof.sum(),
        "radial": radial / E[pts].sum(),
        "points": np.diff(off)[sel].mean(),
    }


@pytest.mark.parametrize(("lo", "hi"), BINS)
def test_calibrated_against_geant4(sim, geant4_reference, lo, hi):
    ref = _bin_stats(*geant4_reference, lo, hi)
    s = sim.simulate(1500, (lo, hi), seed=17)  # enough for ~2 % on early layers
    off = np.concatenate([[0], np.cumsum(ak.to_numpy(ak.num(s.points)))])
    x, y = _np(s.points.x), _np(s.points.y)
    got = _bin_stats(
        off,
        ak.to_numpy(s.incident_energy).astype(np.float64),
        _np(s.points.E),
        _np(s.points.layer).astype(np.int64),
        np.hypot(x, y),
        lo,
        hi,
    )
    assert got["ratio"] == pytest.approx(ref["ratio"], rel=0.03)  # E_vis/E_inc mean
    assert got["spread"] == pytest.approx(ref["spread"], rel=0.20)  # its relative spread
    big = ref["profile"] > 0.01
    np.testing.assert_allclose(got["profile"][big], ref["profile"][big], rtol=0.10)
    ring = ref["radial"] > 0.05
    np.testing.assert_allclose(got["radial"][ring], ref["radial"][ring], rtol=0.20)
    assert got["points"] == pytest.approx(ref["points"], rel=0.10)


def test_simulate_command_is_reproducible(tmp_path, capsys):
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    for path in (a, b):
        assert (
            main(
                ["simulate", "--n", "40", "--energy", "10:90", "--seed", "1", "-o", str(path), "-q"]
            )
            == 0
        )
    assert a.read_bytes() == b.read_bytes()
    with h5py.File(a) as f:
        assert f.attrs["particle"] == "photon" and f.attrs["n_showers"] == 40
    assert main(["simulate", "--n", "2", "--energy", "ten", "-o", str(tmp_path / "c.h5")]) == 2
    assert "--energy: expected GeV" in capsys.readouterr().err
    assert not (tmp_path / "c.h5").exists()
