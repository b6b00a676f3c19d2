from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import torch

from pointcalo.errors import ShowerFormatError
from pointcalo.showers import (
    FlatShowers,
    flatten,
    from_torch,
    make_showers,
    segment_sum,
    summary,
    to_torch,
    validate,
)
from tests.conftest import random_showers


def _cols(n_points: int = 6):
    return {
        "E": np.arange(1, n_points + 1, dtype=np.float32),
        "x": np.zeros(n_points, np.float32),
        "y": np.zeros(n_points, np.float32),
        "layer": np.arange(n_points, dtype=np.int32),
    }


def test_schema_and_dtypes():
    s = make_showers([1.0, 2.0], _cols(), counts=[2, 4])
    assert str(s.type) == (
        "2 * {incident_energy: float32, points: var * "
        "{E: float32, x: float32, y: float32, layer: int32}}"
    )
    assert ak.to_list(ak.num(s.points)) == [2, 4]
    # python lists with float64 / int64 become canonical dtypes
    s2 = make_showers([1.0], {"E": [1.0], "x": [0.0], "y": [0.0], "layer": [3.0]}, counts=[1])
    assert flatten(s2).points["layer"].dtype == np.int32


def test_optional_fields_kept():
    s = random_showers(5, z=True, theta=np.linspace(0, 1, 5))
    assert "z" in s.points.fields and "theta" in s.fields
    flat = flatten(s)
    assert flat.points["z"].dtype == np.float32
    np.testing.assert_allclose(flat.fields["theta"], np.linspace(0, 1, 5))


def test_flatten_is_zero_copy_for_packed_arrays():
    cols = _cols()
    offsets = np.array([0, 2, 6])
    s = make_showers([1.0, 2.0], cols, offsets=offsets)
    flat = flatten(s)
    assert np.shares_memory(flat.points["E"], cols["E"])
    assert np.shares_memory(flat.offsets, offsets)


def test_flatten_of_slices_and_selections():
    s = random_showers(10)
    option_mask = ak.max(s.points.E, axis=1) > 0.5  # option-typed
    for sub in (s[3:7], s[[8, 1, 4]], s[s.incident_energy > 50e3], s[option_mask]):
        flat = flatten(sub)
        assert flat.offsets[0] == 0
        assert flat.n_showers == len(sub)
        np.testing.assert_array_equal(flat.counts, ak.to_numpy(ak.num(sub.points)))
        np.testing.assert_array_equal(flat.points["E"], ak.to_numpy(ak.flatten(sub.points.E)))


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda c, o, e: c["E"].__setitem__(1, np.nan), "points/E", "non-finite"),
        (lambda c, o, e: c["x"].__setitem__(2, np.inf), "points/x", "non-finite"),
        (lambda c, o, e: c["E"].__setitem__(0, -1.0), "points/E", "negative energy"),
        (lambda c, o, e: c["layer"].__setitem__(0, -3), "points/layer", "negative layer"),
        (lambda c, o, e: e.__setitem__(0, np.nan), "incident_energy", "finite and > 0"),
        (lambda c, o, e: e.__setitem__(1, 0.0), "incident_energy", "finite and > 0"),
        (lambda c, o, e: o.__setitem__(1, 5), "offsets", "not monotonic"),
        (lambda c, o, e: o.__setitem__(0, 1), "offsets", "must start at 0"),
        (lambda c, o, e: o.__setitem__(1, 0), "points", "no points"),
    ],
)
def test_validation_errors_name_the_field(mutate, field, words):
    cols = _cols()
    offsets = np.array([0, 2, 4, 6])
    energy = np.array([1.0, 2.0, 3.0], np.float32)
    mutate(cols, offsets, energy)
    with pytest.raises(ShowerFormatError) as err:
        make_showers(energy, cols, offsets=offsets, source="mem.h5")
    msg = str(err.value)
    assert msg.startswith(f"mem.h5: {field}:"), msg
    assert words in msg
    assert "\n" not in msg


def test_length_mismatch_and_missing_field():
    cols = _cols()
    cols["x"] = cols["x"][:-1]
    with pytest.raises(ShowerFormatError, match="points/x: has shape"):
        make_showers([1.0], cols, counts=[6])
    cols = _cols()
    del cols["layer"]
    with pytest.raises(ShowerFormatError, match="points/layer: missing"):
        make_showers([1.0], cols, counts=[6])
    with pytest.raises(ShowerFormatError, match="layer values must be integers"):
        make_showers([1.0], {**_cols(1), "layer": [0.5]}, counts=[1])


def test_empty_showers_allowed_on_request():
    s = make_showers([1.0, 2.0], _cols(3), counts=[0, 3], allow_empty=True)
    assert ak.to_list(ak.num(s.points)) == [0, 3]
    with pytest.raises(ShowerFormatError, match="shower 0 has no points"):
        validate(s)


def test_missing_showers_are_refused():
    s = ak.mask(random_showers(3), [True, False, True])
    with pytest.raises(ShowerFormatError, match="shower 1 is missing"):
        flatten(s)


def test_validate_rejects_non_showers():
    with pytest.raises(ShowerFormatError, match="records"):
        validate(ak.Array([1, 2, 3]))
    with pytest.raises(ShowerFormatError, match="incident_energy: missing"):
        validate(ak.Array([{"points": [{"E": 1.0, "x": 0.0, "y": 0.0, "layer": 1}]}]))


def test_to_torch_layout_and_memory_sharing():
    s = random_showers(7)
    batch = to_torch(s)
    flat = flatten(s)
    assert batch.points.shape == (flat.n_points, 4)
    assert batch.cond.shape == (7, 1)
    assert batch.points.dtype == torch.float32
    assert np.shares_memory(batch.ptr.numpy(), flat.offsets)
    np.testing.assert_array_equal(batch.points[:, 0].numpy(), flat.points["E"])
    np.testing.assert_array_equal(batch.points[:, 3].numpy(), flat.points["layer"])
    # the batch vector agrees with ptr
    idx = batch.batch_index()
    assert torch.equal(torch.bincount(idx, minlength=7), batch.counts)


def test_torch_round_trip_exact():
    s = random_showers(12, z=True, theta=np.arange(12, dtype=np.float32))
    batch = to_torch(s, features=("E", "x", "y", "z", "layer"), cond=("incident_energy", "theta"))
    back = from_torch(batch)
    assert ak.array_equal(back, s, check_parameters=False)


def test_to_torch_unknown_feature():
    with pytest.raises(ShowerFormatError, match="points/q: not present"):
        to_torch(random_showers(2), features=("E", "q"))


def test_summary_matches_hand_computation():
    s = make_showers([100.0, 50.0], _cols(), counts=[2, 4])
    out = summary(s)
    assert out["n_showers"] == 2 and out["n_points"] == 6
    assert out["points_per_shower"] == {"min": 2.0, "mean": 3.0, "max": 4.0}
    # E_vis: 1+2 = 3 of 100, 3+4+5+6 = 18 of 50
    assert out["evis_over_einc"]["mean"] == pytest.approx((0.03 + 0.36) / 2)
    assert out["visible_energy_MeV"]["max"] == pytest.approx(18.0)
    assert out["layers"] == [0, 5]


def test_segment_sum_with_empty_segments():
    np.testing.assert_allclose(
        segment_sum(np.array([1.0, 2.0, 3.0]), np.array([0, 0, 2, 3, 3])), [0, 3, 3, 0]
    )


def test_flat_empty():
    e = FlatShowers.empty()
    assert e.n_showers == 0 and e.n_points == 0
