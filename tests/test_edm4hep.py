"""EDM4hep reader: global full-simulation hits into local shower points."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from pointcalo import io
from pointcalo.cli import main
from pointcalo.io.edm4hep import decode_field, parse_encoding, read_edm4hep
from voxelize.placement import local_to_global

SI = ["ECalBarrelSiHitsEven", "ECalBarrelSiHitsOdd"]


def test_encodings_in_both_syntaxes():
    short = parse_encoding("system:5,side:-2,module:8,stave:4,layer:9")
    assert short["side"] == (5, 2, True) and short["layer"] == (19, 9, False)
    full = parse_encoding("system:0:5,module:5:3,stave:8:4,tower:12:4,layer:16:6")
    assert full["layer"] == (16, 6, False)
    # layer 23, side -1 (signed, two bits), system 7
    cid = np.array([7 | (0b11 << 5) | (23 << 19)], np.uint64)
    assert decode_field(cid, "system:5,side:-2,module:8,stave:4,layer:9", "layer")[0] == 23
    assert decode_field(cid, "system:5,side:-2,module:8,stave:4,layer:9", "side")[0] == -1
    assert decode_field(cid, "system:5,side:-2,module:8,stave:4,layer:9", "system")[0] == 7


@pytest.mark.parametrize(
    "bad", ["system:0:5,layer:200:6", "system:5,layer:100", "system:5,layer:0", ":5", "layer:x"]
)
def test_encodings_that_cannot_be_a_cellid_are_refused(bad):
    from pointcalo.errors import PointcaloError

    with pytest.raises(PointcaloError, match=r"^encoding: "):
        parse_encoding(bad)


@pytest.fixture(scope="module")
def event(shared_dir):
    path = shared_dir / "edm4hep" / "single_event_example.edm4hep.root"
    if not path.exists():
        pytest.skip("EDM4hep example not found")
    return path


def test_real_ild_event(event):
    import uproot

    tree = uproot.open(event)["events"]
    want = sum(float(np.sum(tree[f"{n}/{n}.energy"].array(library="np")[0])) for n in SI) * 1e3
    hits = sum(len(tree[f"{n}/{n}.energy"].array(library="np")[0]) for n in SI)
    s = read_edm4hep(event, collections=SI)
    assert len(s) == 1 and float(s.incident_energy[0]) == pytest.approx(43.7e3, rel=0.01)
    p = s.points[0]
    e = np.asarray(p.E, np.float64)
    assert e.sum() == pytest.approx(want, rel=1e-5) and len(e) == hits  # every hit, in MeV
    x, y = np.asarray(p.x), np.asarray(p.y)
    assert abs((e * x).sum() / e.sum()) < 5 and abs((e * y).sum() / e.sum()) < 5  # on the axis
    layers = np.asarray(p.layer)  # from the cellID, with the encoding stored in the file
    assert layers.min() >= 0 and layers.max() <= 29
    z = np.asarray(p.z)
    ahead = z >= 0  # a few hits lie on the far side of the detector, behind the vertex
    assert ahead.mean() > 0.9 and z[ahead].min() == 0  # depth from the first hit plane
    assert 20 < (e * z)[ahead].sum() / e[ahead].sum() < 100  # a 44 GeV shower's depth (mm)
    # the deepest layers hold the deepest hits of the core
    core = (np.hypot(x, y) < 20) & (z < 300)
    assert np.corrcoef(layers[core], z[core])[0, 1] > 0.9


def test_convert_and_voxelize_the_real_event(event, tmp_path):
    out = tmp_path / "ev.h5"
    assert main(["convert", str(event), str(out), "--collections", *SI, "-q"]) == 0
    showers = io.read(out)
    assert len(showers) == 1 and set(showers.fields) == {"incident_energy", "points"}
    vox = tmp_path / "vox.h5"
    assert main(["voxelize", str(out), str(vox), "--grid", "ild", "-q"]) == 0
    assert vox.exists()


def _synthetic(path, direction, vertex, local, energy_gev, encoding=None, layers=None):
    import uproot

    glob = local_to_global(local[:, 0], local[:, 1], local[:, 2], vertex, direction)
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    impact = np.asarray(vertex, float)
    hits = {
        "energy": ak.Array([np.full(len(local), 0.001)]),
        "position.x": ak.Array([glob[:, 0]]),
        "position.y": ak.Array([glob[:, 1]]),
        "position.z": ak.Array([glob[:, 2]]),
    }
    if layers is not None:
        hits["cellID"] = ak.Array([np.asarray(layers, np.uint64) << np.uint64(16)])
    mom = d * energy_gev
    mc = {
        "generatorStatus": ak.Array([[1, 0]]),
        "mass": ak.Array([[0.0, 0.0]]),
        "momentum.x": ak.Array([[mom[0], 0.0]]),
        "momentum.y": ak.Array([[mom[1], 0.0]]),
        "momentum.z": ak.Array([[mom[2], 0.0]]),
        "vertex.x": ak.Array([[impact[0], 0.0]]),
        "vertex.y": ak.Array([[impact[1], 0.0]]),
        "vertex.z": ak.Array([[impact[2], 0.0]]),
    }
    columns = {f"EcalHits.{k}": v for k, v in hits.items()}
    columns.update({f"MCParticles.{k}": v for k, v in mc.items()})
    types = {k: "var * uint64" if k.endswith("cellID") else "var * float64" for k in columns}
    types["MCParticles.generatorStatus"] = "var * int32"
    with uproot.recreate(path) as f:  # a TTree in podio's flat naming
        f.mktree("events", types, counter_name=lambda name: "n_" + name.replace(".", "_"))
        f["events"].extend(columns)
        f["podio_metadata"] = {"version": np.array([1])}
    return path


def test_synthetic_file_known_geometry(tmp_path):
    rng = np.random.default_rng(0)
    local = np.stack([rng.normal(0, 5, 50), rng.normal(0, 5, 50), rng.uniform(10, 90, 50)], 1)
    local[0, 2] = 10.0  # the first hit plane, 10 mm behind the vertex
    path = _synthetic(
        tmp_path / "s.edm4hep.root",
        [0.3, 0.5, 0.8],
        [100.0, -50.0, 2000.0],
        local,
        20.0,
        layers=np.arange(50) % 30,
    )
    s = io.read(path, encoding="system:0:16,layer:16:8")
    p = s.points[0]
    np.testing.assert_allclose(np.asarray(p.z), local[:, 2] - 10.0, atol=1e-3)
    np.testing.assert_allclose(np.hypot(p.x, p.y), np.hypot(local[:, 0], local[:, 1]), atol=1e-3)
    np.testing.assert_array_equal(np.asarray(p.layer), np.arange(50) % 30)
    assert float(s.incident_energy[0]) == pytest.approx(20e3)
    np.testing.assert_allclose(np.asarray(p.E), 1.0, rtol=1e-6)  # GeV -> MeV
    # without an encoding the layer comes from the depth (ILD grid layer edges)
    depth = io.read(path)
    import voxelize as vx

    edges = vx.ild().layer_edges
    want = np.clip(np.searchsorted(edges, local[:, 2] - 10.0, side="right") - 1, 0, None)
    np.testing.assert_array_equal(np.asarray(depth.points[0].layer), want)
    with_origin = read_edm4hep(path, origin=0.0)
    np.testing.assert_allclose(np.asarray(with_origin.points[0].z), local[:, 2], atol=1e-3)


def test_missing_collections_are_named(tmp_path, capsys):
    local = np.array([[0.0, 0.0, 1.0]])
    path = _synthetic(tmp_path / "s.edm4hep.root", [0, 0, 1], [0, 0, 0], local, 10.0)
    assert main(["convert", str(path), str(tmp_path / "o.h5"), "--collections", "Nope"]) == 2
    err = capsys.readouterr().err
    assert "Nope" in err and str(path) in err
