from __future__ import annotations

import tracemalloc
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
import pytest

from pointcalo import io
from pointcalo.data import example_path, load_example
from pointcalo.errors import ShowerFormatError
from pointcalo.io.hdf5 import FORMAT_VERSION, HDF5ShowerReader
from tests.conftest import random_showers


def _raw(path: Path, drop: tuple[str, ...] = (), **override) -> Path:
    """Write a native-layout file with h5py directly, replacing or dropping datasets."""
    rng = np.random.default_rng(1)
    data = {
        "incident_energy": np.array([1e4, 2e4, 3e4], np.float32),
        "offsets": np.array([0, 2, 5, 6], np.int64),
        "points/E": rng.uniform(0.1, 1, 6).astype(np.float32),
        "points/x": np.zeros(6, np.float32),
        "points/y": np.zeros(6, np.float32),
        "points/layer": np.arange(6, dtype=np.int16),
    }
    data.update(override)
    with h5py.File(path, "w") as f:
        for k, v in data.items():
            if k not in drop:
                f[k] = v
    return path


def test_hdf5_round_trip_with_optional_fields(tmp_path):
    s = random_showers(30, z=True, theta=np.linspace(0, 1, 30, dtype=np.float32))
    path = io.write(s, tmp_path / "a.h5", attrs={"particle": "photon"})
    back = io.read(path)
    assert ak.array_equal(back, s)
    with HDF5ShowerReader(path) as r:
        assert r.attrs["format_version"] == FORMAT_VERSION
        assert r.attrs["particle"] == "photon"
        assert r.attrs["units"] == "energies MeV, lengths mm"
        assert r.attrs["n_showers"] == 30
    with h5py.File(path) as f:
        assert f["points/E"].compression == "gzip" and f["points/E"].chunks is not None


def test_hdf5_slices_and_chunks_match_full_read(tmp_path):
    s = random_showers(25)
    path = io.write(s, tmp_path / "a.h5")
    assert ak.array_equal(io.read(path, 5, 12), s[5:12])
    assert ak.array_equal(io.read(path, 20), s[20:])
    chunks = list(io.iter_showers(path, chunk_size=7))
    assert [len(c) for c in chunks] == [7, 7, 7, 4]
    assert ak.array_equal(ak.concatenate(chunks), s)


def test_streaming_writer_appends_chunks(tmp_path):
    s = random_showers(40)
    with io.open_writer(tmp_path / "a.h5") as w:
        for start in range(0, 40, 9):
            w.write(s[start : start + 9])
    assert ak.array_equal(io.read(tmp_path / "a.h5"), s)


def test_writer_failure_leaves_no_file(tmp_path):
    out = tmp_path / "out.h5"
    s = random_showers(5)
    with pytest.raises(RuntimeError), io.open_writer(out) as w:
        w.write(s)
        raise RuntimeError("killed mid-write")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_writer_rejects_chunks_with_other_fields(tmp_path):
    out = tmp_path / "out.h5"
    with (
        pytest.raises(ShowerFormatError, match="differ from the first chunk"),
        io.open_writer(out) as w,
    ):
        w.write(random_showers(3))
        w.write(random_showers(3, z=True))
    assert not out.exists()


def test_reads_the_shared_geant4_sample(g4_path):
    with HDF5ShowerReader(g4_path) as r:
        assert r.n_showers == 8750
        first = r.read(0, 3)
        offsets = r.offsets[:4]
    assert str(first.type).endswith("layer: int32}}")
    with h5py.File(g4_path) as f:
        np.testing.assert_array_equal(
            ak.to_numpy(ak.flatten(first.points.E)), f["points/E"][: offsets[3]]
        )
        np.testing.assert_array_equal(ak.to_numpy(first.incident_energy), f["incident_energy"][:3])


def test_chunked_read_memory_is_bounded_by_the_chunk(tmp_path):
    s = random_showers(2000, seed=3)
    path = io.write(s, tmp_path / "big.h5")
    tracemalloc.start()
    io.read(path)
    _, peak_full = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    n = 0
    for chunk in io.iter_showers(path, chunk_size=100):
        n += len(chunk)
        del chunk
    _, peak_chunked = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert n == 2000
    assert peak_chunked < peak_full / 4


def test_root_round_trip(tmp_path):
    s = random_showers(30, z=True)
    path = io.write(s, tmp_path / "a.root")
    back = io.read(path)
    assert ak.array_equal(back, s)
    chunks = list(io.iter_showers(path, chunk_size=8))
    assert ak.array_equal(ak.concatenate(chunks), s)


def test_root_custom_branches_and_gev(tmp_path):
    import uproot

    path = tmp_path / "custom.root"
    with uproot.recreate(path) as f:
        f["hits"] = {
            "Egen": np.array([10.0, 20.0]),
            "e": ak.Array([[0.001, 0.002], [0.003]]),
            "px": ak.Array([[1.0, 2.0], [3.0]]),
            "py": ak.Array([[1.0, 2.0], [3.0]]),
            "lay": ak.Array([[0, 1], [2]]),
        }
    branches = io.RootBranches(
        tree="hits",
        incident_energy="Egen",
        E="e",
        x="px",
        y="py",
        layer="lay",
        z=None,
        energy_scale=1000.0,
    )
    s = io.read(path, branches=branches)
    np.testing.assert_allclose(ak.to_numpy(s.incident_energy), [1e4, 2e4])
    np.testing.assert_allclose(ak.to_numpy(ak.flatten(s.points.E)), [1.0, 2.0, 3.0], rtol=1e-6)
    with pytest.raises(ShowerFormatError, match="missing branch for 'E'"):
        io.read(path, branches=io.RootBranches(tree="hits", incident_energy="Egen"))
    with pytest.raises(ShowerFormatError, match="no such TTree"):
        io.read(path)


def test_convert_hdf5_root_hdf5(tmp_path):
    s = random_showers(17)
    a = io.write(s, tmp_path / "a.h5")
    assert io.convert(a, tmp_path / "b.root", chunk_size=5) == 17
    assert io.convert(tmp_path / "b.root", tmp_path / "c.h5", chunk_size=4) == 17
    assert ak.array_equal(io.read(tmp_path / "c.h5"), s)


def test_shipped_example():
    assert example_path().stat().st_size < 5e6
    s = load_example()
    assert 100 <= len(s) <= 500
    ratio = ak.to_numpy(ak.sum(s.points.E, axis=1) / s.incident_energy)
    # Geant4 sampling fraction of the ILD-like Si-W ECAL (shared/data/README.md): 0.027-0.030
    assert 0.026 < ratio.mean() < 0.031


# ---- bad input: each a one-line error naming the file and the field -------------------------

BAD_FILES = {
    "missing_key": (dict(drop=("points/E",)), "points/E", "missing dataset"),
    "misnamed_key": (dict(drop=("offsets",), offset=np.array([0, 2, 5, 6])), "offsets", "missing"),
    "wrong_dtype": (dict(**{"points/E": np.arange(6)}), "points/E", "must be floating"),
    "string_layer": (dict(**{"points/layer": np.array([b"a"] * 6)}), "points/layer", "non-numeric"),
    "wrong_shape": (dict(**{"points/x": np.zeros((6, 2), np.float32)}), "points/x", "1-d"),
    "short_column": (dict(**{"points/y": np.zeros(5, np.float32)}), "points/y", "5 points"),
    "not_monotonic": (dict(offsets=np.array([0, 4, 2, 6])), "offsets", "not monotonic"),
    "offsets_mismatch": (dict(offsets=np.array([0, 2, 5, 9])), "points/E", "offsets[-1] = 9"),
    "offsets_start": (dict(offsets=np.array([1, 2, 5, 6])), "offsets", "start at 0"),
    "nan_energy": (
        dict(**{"points/E": np.array([1, np.nan, 1, 1, 1, 1], np.float32)}),
        "points/E",
        "non-finite",
    ),
    "inf_incident": (
        dict(incident_energy=np.array([1e4, np.inf, 1], np.float32)),
        "incident_energy",
        "finite",
    ),
    "negative_energy": (
        dict(**{"points/E": np.array([1, 1, -2, 1, 1, 1], np.float32)}),
        "points/E",
        "negative",
    ),
    "empty_shower": (
        dict(offsets=np.array([0, 2, 2, 6]), **{k: np.ones(6, np.float32) for k in ("points/E",)}),
        "points",
        "no points",
    ),
    "per_shower_shape": (dict(incident_energy=np.ones(4, np.float32)), "incident_energy", "(3,)"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_hdf5_files(tmp_path, case):
    kwargs, field, words = BAD_FILES[case]
    path = _raw(tmp_path / f"{case}.h5", **kwargs)
    with pytest.raises(ShowerFormatError) as err:
        io.read(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: {field}:"), msg
    assert words in msg, msg
    assert "\n" not in msg


def test_missing_file_and_not_hdf5(tmp_path):
    with pytest.raises(ShowerFormatError, match="no such file"):
        io.read(tmp_path / "nope.h5")
    junk = tmp_path / "junk.h5"
    junk.write_text("this is not HDF5")
    with pytest.raises(ShowerFormatError, match=r"junk.h5: not an HDF5 file"):
        io.read(junk)
    with pytest.raises(ShowerFormatError, match=r"junk.root: not a readable ROOT file"):
        (tmp_path / "junk.root").write_bytes(b"\0" * 100)
        io.read(tmp_path / "junk.root")
    with pytest.raises(ShowerFormatError, match=r"unknown file extension '.txt'"):
        io.read(tmp_path / "a.txt")


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_file(tmp_path, keep):
    path = io.write(random_showers(300, seed=2), tmp_path / "full.h5")
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ShowerFormatError) as err:
        io.read(cut)
    assert str(err.value).startswith(str(cut))
    assert "truncated" in str(err.value) or "not an HDF5" in str(err.value)


def test_newer_format_version_is_refused(tmp_path):
    path = _raw(tmp_path / "v.h5")
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(ShowerFormatError, match=r"format_version: .* newer"):
        io.read(path)


def test_caloclouds_layout_round_trip_and_shared_sample(tmp_path, shared_dir):
    from pointcalo.io.caloclouds import read_caloclouds, write_caloclouds
    from voxelize.presets import ILD_LAYER_DEPTH_MM

    s = random_showers(12, seed=5)
    path = write_caloclouds(s, tmp_path / "cc.hdf5")
    with h5py.File(path) as f:
        assert f["events"].shape[:2] == (12, 4) and f["energy"].shape == (12, 1)
    back = read_caloclouds(path, layer_depth=ILD_LAYER_DEPTH_MM)
    np.testing.assert_array_equal(
        ak.to_numpy(ak.flatten(back.points.layer)), ak.to_numpy(ak.flatten(s.points.layer))
    )
    np.testing.assert_allclose(
        ak.to_numpy(ak.flatten(back.points.E)), ak.to_numpy(ak.flatten(s.points.E)), rtol=1e-6
    )
    np.testing.assert_allclose(
        ak.to_numpy(back.incident_energy), ak.to_numpy(s.incident_energy), rtol=1e-6
    )
    # the shared two-shower fixture of the CaloClouds family: [N, 6000, 4], GeV, zero padding
    mini = read_caloclouds(shared_dir / "caloclouds" / "mini_data_sample.hdf5")
    assert len(mini) == 2
    assert ak.to_list(ak.num(mini.points)) == [163, 236]
    np.testing.assert_allclose(ak.to_numpy(mini.incident_energy), [15620.06, 41926.82], rtol=1e-5)
    assert ak.min(mini.points.E) > 0 and "z" in mini.points.fields


def test_read_dask_is_lazy_and_equals_the_eager_read(tmp_path):
    """An observable computed lazily over several files (ROOT and HDF5, a glob) equals the
    eager one, partition by partition of at most chunk_size showers."""
    pytest.importorskip("dask_awkward")
    from pointcalo.io import read_dask

    parts = [random_showers(7, seed=s) for s in range(3)]
    io.write(parts[0], tmp_path / "a_0.h5")
    io.write(parts[1], tmp_path / "a_1.h5")
    io.write(parts[2], tmp_path / "b.root")
    lazy = read_dask([str(tmp_path / "a_*.h5"), tmp_path / "b.root"], chunk_size=3)
    assert lazy.npartitions == 3 + 3 + 3  # 7 showers -> 3 + 3 + 1 per file
    e_vis = ak.sum(lazy.points.E, axis=1)
    eager = np.concatenate([ak.to_numpy(ak.sum(p.points.E, axis=1)) for p in parts])
    np.testing.assert_allclose(ak.to_numpy(e_vis.compute()), eager, rtol=1e-6)
    assert ak.to_numpy(lazy.incident_energy.compute()).shape == (21,)
    with pytest.raises(ShowerFormatError, match="no such file"):
        read_dask(str(tmp_path / "missing_*.h5"))
