"""Generated points obey the data's rules (pointcalo.validity): one point per sub-cell,
positive energies, inside the training data's extent, no hotter than its hottest point."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pointcalo import io
from pointcalo.generation import generate, load_model
from pointcalo.models.showerflow.glue_validity import make_valid as glue_make_valid
from pointcalo.showers import flatten
from pointcalo.validity import PointLimits, make_valid, make_valid_tensors, violations

PITCH = 5.088 / 6
LIMITS = PointLimits(PITCH, 30, (-150.0, 150.0), (-150.0, 150.0), 25.0)


def _cols(e, x, y, layer):
    return {
        "E": np.asarray(e, np.float32),
        "x": np.asarray(x, np.float32),
        "y": np.asarray(y, np.float32),
        "layer": np.asarray(layer, np.int32),
    }


def test_each_rule_on_a_hand_made_cloud():
    # shower 0: two points in one sub-cell (merged, energies summed), one at E = 0 (dropped),
    # one far outside (dropped, also off the lattice), one too hot (capped), one off the
    # lattice (snapped);
    # shower 1: one negative point only (left empty)
    c = 0.5 * PITCH
    pts = _cols(
        [1.0, 2.0, 0.0, 3.0, 40.0, 0.5, -1.0],
        [c, c + 0.1, 3 * c, 860.0, c, 10.0, c],
        [c, c - 0.1, c, c, -c, 10.0, c],
        [4, 4, 4, 4, 5, 6, 0],
    )
    offsets = np.array([0, 6, 7])
    before = violations(offsets, pts, LIMITS)
    assert before == {
        "not_positive": 2, "outside": 1, "above_e_max": 1, "off_lattice": 3, "shared": 1
    }  # fmt: skip
    off, out = make_valid(offsets, pts, LIMITS)
    assert list(off) == [0, 3, 3]
    assert violations(off, out, LIMITS) == dict.fromkeys(before, 0)
    np.testing.assert_allclose(out["E"], [3.0, 25.0, 0.5])  # merged sum, cap, kept
    np.testing.assert_array_equal(out["layer"], [4, 5, 6])  # Geant4's order: layer, y, x
    k = out["x"][2] / PITCH - 0.5
    assert abs(k - round(k)) < 1e-4  # snapped onto the lattice


def test_a_merged_sum_above_the_cap_is_capped_and_energy_is_otherwise_kept():
    pts = _cols([15.0, 15.0, 1.0], [0.4, 0.4, 5.0], [0.4, 0.4, 5.0], [0, 0, 0])
    off, out = make_valid(np.array([0, 3]), pts, LIMITS)
    assert list(off) == [0, 2] and out["E"].max() == 25.0
    loose = PointLimits(PITCH, 30)
    off, out = make_valid(np.array([0, 3]), pts, loose)
    assert out["E"].sum() == pytest.approx(31.0)  # merging alone conserves energy


def test_numpy_glue_equals_the_torch_original():
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 300, 40)
    p = int(counts.sum())
    pts = _cols(
        rng.normal(1.0, 3.0, p),
        rng.normal(0, 40, p).round(1),
        rng.normal(0, 40, p).round(1),
        rng.integers(-1, 32, p),
    )
    pts["E"][::50] = np.nan
    got, got_counts = glue_make_valid(pts, counts, LIMITS.bounds())
    cols = [torch.as_tensor(pts[k]) for k in ("E", "x", "y", "layer")]
    *want, want_counts = make_valid_tensors(*cols, torch.as_tensor(counts), **LIMITS.bounds())
    np.testing.assert_array_equal(got_counts, want_counts.numpy())
    for k, w in zip(("E", "x", "y", "layer"), want, strict=True):
        np.testing.assert_allclose(got[k], w.numpy(), rtol=1e-6, err_msg=k)


def test_geant4_showers_are_a_fixed_point(g4_path):
    """Real data already obeys every rule: making it valid changes nothing, bit for bit."""
    showers = io.read(g4_path, 0, 300)
    flat = flatten(showers)
    limits = PointLimits.measure(flatten(io.read(g4_path, 300, 2000)).points, PITCH, 30)
    offsets = np.concatenate([[0], np.cumsum(flat.counts)])
    assert violations(offsets, flat.points, limits) == {
        "not_positive": 0, "outside": 0, "above_e_max": 0, "off_lattice": 0, "shared": 0
    }  # fmt: skip
    off, out = make_valid(offsets, flat.points, limits)
    np.testing.assert_array_equal(off, offsets)
    for k in out:
        np.testing.assert_array_equal(out[k], flat.points[k], err_msg=k)


@pytest.mark.parametrize(
    "name", ["ild-photon-cm", "ild-photon-cc", "ild-photon-bcm", "ild-photon-bcc"]
)
def test_shipped_models_generate_valid_points(name):
    torch.set_num_threads(1)
    loaded = load_model(name)
    limits = loaded.limits
    assert limits.e_max is not None and limits.x_range is not None  # measured on training data
    teacher = name.endswith("cc")
    energies = np.array([12e3, 88e3]) if teacher else np.linspace(10e3, 90e3, 16)
    kw = {"steps": 6} if teacher else {}
    clouds = generate(
        loaded.model, loaded.net, loaded.normalizer, energies, loaded.cfg, seed=1,
        limits=limits, **kw,
    )  # fmt: skip
    assert violations(clouds.offsets, clouds.points, limits) == {
        "not_positive": 0, "outside": 0, "above_e_max": 0, "off_lattice": 0, "shared": 0
    }  # fmt: skip
    assert (np.diff(clouds.offsets) > 100).all()
