from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import voxelize as vx
from voxelize import accumulate
from voxelize.calochallenge_files import read_calochallenge, write_calochallenge
from voxelize.gridfiles import grid_from_xml
from voxelize.grids import GridError
from voxelize.placement import frame, global_to_local, local_to_global

REPO = Path(__file__).resolve().parents[1]
GRIDS = [
    "ild",
    "ild-cylindrical",
    "calogan",
    "calochallenge-1-photons",
    "calochallenge-1-pions",
    "calochallenge-2",
    "calochallenge-3",
]


def cloud(grid: vx.Grid, n_showers: int = 20, seed: int = 0, spread: float | None = None):
    """Random showers whose points fall mostly inside ``grid`` (some outside)."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 300, n_showers)
    p = int(counts.sum())
    if spread is None:
        cx, cy, _ = grid.cell_centres()
        spread = 0.6 * float(np.max(np.abs(np.concatenate([cx, cy])))) + 1.0
    return {
        "E": rng.exponential(1.0, p),
        "x": rng.normal(0, spread, p),
        "y": rng.normal(0, spread, p),
        "layer": rng.integers(0, grid.n_layers, p),
        "ptr": np.concatenate([[0], np.cumsum(counts)]),
    }


def totals(c) -> np.ndarray:
    return np.add.reduceat(np.append(c["E"], 0.0), c["ptr"][:-1])[: len(c["ptr"]) - 1] * (
        np.diff(c["ptr"]) > 0
    )


@pytest.mark.parametrize("name", GRIDS)
def test_energy_is_conserved(name):
    grid = vx.load_grid(name)
    c = cloud(grid)
    proj = vx.project(c, grid, dtype=np.float64)
    assert proj.voxels.shape == (20, grid.n_voxels)
    np.testing.assert_allclose(proj.voxels.sum(1) + proj.outside, totals(c), rtol=1e-12)
    assert proj.outside.sum() > 0  # the cloud is wider than the grid, so some energy is outside
    assert proj.voxels.sum() > 0


def test_xml_voxel_counts_shipped_and_shared(shared_dir):
    expected = {"1_photons": 368, "1_pions": 533, "2": 6480, "3": 40500}
    for key, n in expected.items():
        for folder in (shared_dir / "calochallenge", REPO / "voxelize" / "binning"):
            assert grid_from_xml(folder / f"binning_dataset_{key}.xml").n_voxels == n
    g2 = vx.calochallenge("2")
    assert (g2.n_layers, int(g2.n_alpha[0]), int(g2.n_r[0])) == (45, 16, 9)


@pytest.mark.parametrize("name", ["ild", "calogan"])
def test_matches_histogramdd_per_layer(name):
    grid = vx.load_grid(name)
    c = cloud(grid, n_showers=1, seed=4)
    proj = vx.project(c, grid, dtype=np.float64)
    for layer in range(grid.n_layers):
        sel = c["layer"] == layer
        xe = grid.x_min[layer] + grid.dx[layer] * np.arange(grid.nx[layer] + 1)
        ye = grid.y_min[layer] + grid.dy[layer] * np.arange(grid.ny[layer] + 1)
        hist, _ = np.histogramdd(
            np.stack([c["y"][sel], c["x"][sel]], 1), bins=[ye, xe], weights=c["E"][sel]
        )
        np.testing.assert_allclose(proj.layer(layer)[0], hist, rtol=1e-12, atol=1e-12)


def test_cylindrical_matches_histogram_in_r_alpha():
    grid = vx.calochallenge("2")
    c = cloud(grid, n_showers=1, seed=5)
    proj = vx.project(c, grid, dtype=np.float64)
    r = np.hypot(c["x"], c["y"])
    a = np.arctan2(c["y"], c["x"])
    for layer in (0, 17, 44):
        sel = c["layer"] == layer
        a_edges = np.linspace(-math.pi, math.pi, int(grid.n_alpha[layer]) + 1)
        hist, _, _ = np.histogram2d(
            a[sel], r[sel], bins=[a_edges, grid.r_edges[layer]], weights=c["E"][sel]
        )
        np.testing.assert_allclose(proj.layer(layer)[0], hist, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["ild", "calogan", "calochallenge-2", "calochallenge-1-pions"])
def test_numpy_and_torch_agree(name):
    torch = pytest.importorskip("torch")
    grid = vx.load_grid(name)
    c = cloud(grid, seed=7)
    a = vx.project(c, grid)
    tc = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in c.items()}
    b = vx.project(tc, grid)
    assert isinstance(b.voxels, torch.Tensor)
    np.testing.assert_array_equal(b.voxels.numpy(), a.voxels)
    np.testing.assert_allclose(b.outside.numpy(), a.outside, rtol=1e-6)
    s1, s2 = vx.project(c, grid, sparse=True), vx.project(tc, grid, sparse=True)
    for u, v in zip(s1.sparse, s2.sparse, strict=True):
        np.testing.assert_array_equal(u, v.numpy())


@pytest.mark.gpu
def test_torch_gpu_matches_numpy():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    grid = vx.ild()
    c = cloud(grid, seed=8)
    gpu = vx.project({k: torch.from_numpy(v).cuda() for k, v in c.items()}, grid, dtype=np.float64)
    cpu = vx.project(c, grid, dtype=np.float64)
    np.testing.assert_allclose(gpu.voxels.cpu().numpy(), cpu.voxels, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", GRIDS)
@pytest.mark.parametrize("compiled", [True, False])
def test_sparse_equals_dense(name, compiled, monkeypatch):
    if compiled:
        pytest.importorskip("numba")
    else:
        monkeypatch.setattr(accumulate, "_compiled", lambda: None)
    grid = vx.load_grid(name)
    c = cloud(grid, seed=9)
    # some showers without points, some points outside, repeated cells
    c["ptr"] = np.concatenate([[0, 0], c["ptr"][1:5], c["ptr"][4:]])
    proj = vx.project(c, grid, dtype=np.float64)
    sp = vx.project(c, grid, sparse=True, dtype=np.float64, chunk_points=97)
    s, v, e = sp.sparse
    order = np.lexsort((v, s))
    np.testing.assert_array_equal(order, np.arange(len(s)))  # sorted by shower, then voxel
    assert np.all(e != 0)
    rebuilt = np.zeros_like(proj.voxels)
    rebuilt[s, v] = e
    np.testing.assert_array_equal(rebuilt, proj.voxels)  # same float64 sums, bit for bit
    np.testing.assert_array_equal(sp.outside, proj.outside)


def test_compiled_and_numpy_sparse_sums_agree():
    pytest.importorskip("numba")
    rng = np.random.default_rng(3)
    ptr = np.concatenate([[0], np.cumsum(rng.integers(0, 400, 30))]).astype(np.int64)
    for n_slots in (7, 300, 70_000):  # one, two and three radix passes
        slot = rng.integers(0, n_slots, ptr[-1]).astype(np.int64)
        energy = rng.exponential(1.0, ptr[-1])
        assert accumulate.using_numba()
        fast = accumulate.sparse_sums(slot, energy, ptr, n_slots)
        slow = accumulate._numpy_sums(slot, energy, ptr, n_slots)
        for a, b in zip(fast, slow, strict=True):
            np.testing.assert_array_equal(a, b)
        assert len(fast[0]) == len(set(zip(fast[0].tolist(), fast[1].tolist(), strict=True)))


@pytest.mark.parametrize("name", GRIDS)
@pytest.mark.parametrize("mode", ["centre", "uniform"])
def test_to_points_then_project_returns_voxels(name, mode):
    grid = vx.load_grid(name)
    rng = np.random.default_rng(1)
    voxels = rng.exponential(1.0, (3, grid.n_voxels)) * (rng.random((3, grid.n_voxels)) < 0.3)
    pts = vx.to_points(voxels, grid, mode=mode, points_per_voxel=3 if mode == "uniform" else 1)
    cols = {"E": pts.E, "x": pts.x, "y": pts.y, "layer": pts.layer, "ptr": pts.ptr}
    back = vx.project(cols, grid, dtype=np.float64)
    np.testing.assert_allclose(back.voxels, voxels, rtol=1e-5, atol=1e-6)
    assert back.outside.max() == 0


def test_cell_edges_go_to_the_upper_cell():
    grid = vx.ild()
    x0, d = float(grid.x_min[0]), float(grid.dx[0])
    # on the edge between cells 3 and 4 (x) and exactly on the lower grid edge (y)
    c = {
        "E": np.array([1.0, 2.0, 4.0]),
        "x": np.array([x0 + 4 * d, x0 + 30 * d, x0]),
        "y": np.array([x0, x0, x0 - 1e-6 * d]),
        "layer": np.array([0, 0, 0]),
    }
    p = vx.project(c, grid, dtype=np.float64)
    img = p.layer(0)[0]
    assert img[0, 4] == 1.0 and img[0, 3] == 0.0
    assert p.outside[0] == 6.0  # the outermost upper edge and just below the lower edge


def test_cylindrical_edges():
    grid = vx.calochallenge("2")
    r_edge = float(grid.r_edges[0][1])  # 4.65
    pts = {  # r on an edge -> outer bin; alpha on an edge -> upper bin; alpha = pi -> bin 0
        "x": np.array([r_edge, 0.0, -2.0, 41.85]),
        "y": np.array([0.0, -2.0, 0.0, 0.0]),
        "E": np.array([1.0, 2.0, 4.0, 8.0]),
        "layer": np.zeros(4, np.int64),
    }
    cell, inside = grid.cell_in_layer(pts["x"], pts["y"], pts["layer"])
    # alpha(x = 4.65, y = 0) = 0 -> angular bin 8; r bin 1
    assert cell[0] == 8 * 9 + 1
    # alpha = -pi/2 is the edge between angular bins 3 and 4 (exact in floating point)
    assert cell[1] == 4 * 9 + 0
    assert cell[2] == 0 * 9 + 0
    assert list(inside) == [True, True, True, False]


def test_layer_map_table_and_depth(g4_path):
    from pointcalo import io

    showers = io.read(g4_path, 0, 50)
    ild = vx.ild()
    coarse = vx.CartesianGrid.uniform(
        "ild-15",
        15,
        (30, 30),
        (5.088, 5.088),
        (-73.776, -73.776),
        layer_edges=ild.depth_edges()[::2],
    )
    by_table = vx.project(showers, coarse, layer_map=np.arange(30) // 2, dtype=np.float64)
    by_depth = vx.project(
        showers, coarse, layer_map="depth", source_depth=ild.layer_depth, dtype=np.float64
    )
    fine = vx.project(showers, ild, dtype=np.float64)
    np.testing.assert_allclose(by_table.voxels, by_depth.voxels)
    pairs = fine.voxels.reshape(50, 15, 2, 900).sum(2).reshape(50, -1)
    np.testing.assert_allclose(by_table.voxels, pairs, rtol=1e-10)
    dropped = vx.project(
        showers, coarse, layer_map=np.r_[np.arange(28) // 2, -1, -1], dtype=np.float64
    )
    np.testing.assert_allclose(
        dropped.outside - fine.outside, fine.layer(28).sum((1, 2)) + fine.layer(29).sum((1, 2))
    )


def test_geant4_sample_energy_on_ild_grid(g4_path):
    import awkward as ak

    from pointcalo import io

    showers = io.read(g4_path, 0, 400)
    proj = vx.project(showers, vx.ild(), dtype=np.float64)
    total = ak.to_numpy(ak.sum(ak.values_astype(showers.points.E, np.float64), axis=1))
    np.testing.assert_allclose(proj.voxels.sum(1) + proj.outside, total, rtol=1e-12)
    frac = proj.outside.sum() / total.sum()
    assert 0 < frac < 0.01  # the 30x30 grid holds > 99 % of a photon shower


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda c: c["x"].__setitem__(3, np.nan), "points/x: non-finite value at point 3"),
        (lambda c: c["layer"].__setitem__(0, 30), "layer 30 but grid 'ild' has layers 0-29"),
        (lambda c: c["layer"].__setitem__(0, -1), "negative layer"),
    ],
)
def test_bad_points(change, words):
    c = cloud(vx.ild(), n_showers=2)
    change(c)
    with pytest.raises(GridError, match=words):
        vx.project(c, "ild")


def test_bad_layer_maps():
    c = cloud(vx.ild(), n_showers=2)
    with pytest.raises(GridError, match="layer_map has 10 entries but points have layer 29"):
        vx.project(c, "ild", layer_map=np.arange(10))
    with pytest.raises(GridError, match=r"maps to layers 0\.\.40"):
        vx.project(c, "ild", layer_map=np.arange(41)[:30] + np.r_[np.zeros(29, int), 11])
    with pytest.raises(GridError, match="needs per-point z or source_depth"):
        vx.project(c, "ild", layer_map="depth")
    with pytest.raises(GridError, match="depths unknown"):
        vx.project(c, "calochallenge-1-photons", layer_map="depth", source_depth=np.arange(30.0))


def test_bad_grids(tmp_path):
    with pytest.raises(GridError, match="unknown grid 'nope'"):
        vx.load_grid("nope")
    bad = tmp_path / "g.yaml"
    bad.write_text("kind: cartesian\nn_layers: 3\ncells: [2, 2]\n")
    with pytest.raises(GridError, match="missing key 'cell_size'"):
        vx.load_grid(bad)
    bad.write_text("kind: hexagonal\n")
    with pytest.raises(GridError, match="kind must be"):
        vx.load_grid(bad)
    with pytest.raises(GridError, match="r_edges must be finite, >= 0 and increasing"):
        vx.CylindricalGrid(name="x", r_edges=(np.array([0.0, 2.0, 1.0]),), n_alpha=np.array([1]))
    # files that are no YAML grid at all: the grid's error naming the file, never YAML's own
    bad.write_text("kind: [cartesian\n")
    with pytest.raises(GridError, match=r"g\.yaml: not valid YAML"):
        vx.load_grid(bad)
    bad.write_text('!!python/object/apply:os.system ["echo owned"]\n')
    with pytest.raises(GridError, match=r"not valid YAML: could not determine a constructor"):
        vx.load_grid(bad)
    bad.write_bytes(bytes(range(128, 256)))
    with pytest.raises(GridError, match=r"g\.yaml: not a text"):
        vx.load_grid(bad)


def test_yaml_configs_equal_presets():
    folder = REPO / "voxelize" / "geometry"
    pairs = {
        "ild": "ild",
        "ild_cylindrical": "ild-cylindrical",
        "calogan": "calogan",
        "calochallenge_ds2": "calochallenge-2",
        "calochallenge_ds3": "calochallenge-3",
        "calochallenge_ds1_photons": "calochallenge-1-photons",
        "calochallenge_ds1_pions": "calochallenge-1-pions",
    }
    for file, preset in pairs.items():
        assert vx.load_grid(folder / f"{file}.yaml") == vx.load_grid(preset), file


def test_ild_grid_matches_geant4_geometry(g4_path):
    import h5py

    with h5py.File(g4_path) as f:
        np.testing.assert_allclose(vx.ild().layer_depth, f.attrs["layer_depth_mm"], atol=1e-9)
        x = f["points/x"][:100000]
    grid = vx.ild()
    # each 0.848 mm sub-cell centre lies strictly inside one 5.088 mm cell (never on an edge)
    frac = (x - grid.x_min[0]) / grid.dx[0]
    assert np.min(np.abs(frac - np.round(frac))) > 0.05


def test_calochallenge_file_round_trip(tmp_path):
    grid = vx.calochallenge("1-photons")
    rng = np.random.default_rng(3)
    showers = rng.exponential(1.0, (5, grid.n_voxels)).astype(np.float32)
    energy = np.array([256.0, 512.0, 1024.0, 2048.0, 4096.0])
    path = write_calochallenge(tmp_path / "cc.h5", energy, showers)
    e, s = read_calochallenge(path, grid)
    np.testing.assert_array_equal(s, showers)
    np.testing.assert_array_equal(e, energy)
    with pytest.raises(GridError, match="368 voxels, grid 'calochallenge-2' has 6480"):
        read_calochallenge(path, "calochallenge-2")


def test_placement_round_trip_and_geometry():
    rng = np.random.default_rng(0)
    x, y, z = rng.normal(size=(3, 100))
    impact = np.array([100.0, 1811.0, -40.0])
    for direction in ([0, 0, 1], [0.3, 0.9, 0.1], [0, 1, 0], [0, -1, 0]):
        rot = frame(direction)
        np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-12)
        assert np.linalg.det(rot) == pytest.approx(1.0)
        g = local_to_global(x, y, z, impact, direction)
        # depth along the axis is the projection on the direction
        d = np.asarray(direction, float) / np.linalg.norm(direction)
        np.testing.assert_allclose((g - impact) @ d, z, atol=1e-12)
        back = global_to_local(g, impact, direction)
        np.testing.assert_allclose(np.stack(back), np.stack([x, y, z]), atol=1e-10)
    np.testing.assert_allclose(local_to_global([1], [2], [3], [0, 0, 0], [0, 0, 1]), [[1, 2, 3]])
    with pytest.raises(GridError, match="non-zero 3-vector"):
        frame([0, 0, 0])


def test_edge_tolerance_is_documented_size():
    grid = vx.ild()
    x0, d = float(grid.x_min[0]), float(grid.dx[0])
    edge = x0 + 10 * d
    x = np.array([edge - 1e-12 * d, edge - 1e-7 * d])  # within / beyond EDGE_TOLERANCE
    cell, inside = grid.cell_in_layer(x, np.zeros(2), np.zeros(2, np.int64))
    assert list(cell % 30) == [10, 9] and inside.all()


def test_pointcalo_reads_and_writes_calochallenge_files(tmp_path):
    import awkward as ak

    from pointcalo.io.calochallenge import (
        read_calochallenge_showers,
        write_calochallenge_showers,
    )

    grid = vx.calochallenge("2")
    rng = np.random.default_rng(5)
    voxels = rng.exponential(1.0, (4, grid.n_voxels)) * (rng.random((4, grid.n_voxels)) < 0.1)
    path = write_calochallenge(tmp_path / "ds2.h5", [1e3, 1e4, 1e5, 1e6], voxels)
    showers = read_calochallenge_showers(path, "calochallenge-2", mode="uniform")
    assert "z" in showers.points.fields  # dataset 2 knows its layer depths
    np.testing.assert_allclose(
        ak.to_numpy(ak.sum(ak.values_astype(showers.points.E, np.float64), axis=1)),
        voxels.sum(1),
        rtol=1e-5,
    )
    out = write_calochallenge_showers(showers, tmp_path / "back.h5", "calochallenge-2")
    e, back = read_calochallenge(out, grid)
    np.testing.assert_allclose(back, voxels, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(e, [1e3, 1e4, 1e5, 1e6])


@pytest.mark.parametrize("field", ["cell_size", "origin"])
@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_non_finite_grid_geometry_is_refused(tmp_path, field, value):
    """A NaN passes every ``<= 0`` check: a grid with one would voxelise into nothing."""
    g = tmp_path / "g.yaml"
    size = f"[{value}, 5.0]" if field == "cell_size" else "[5.0, 5.0]"
    origin = f"\norigin: [{value}, 0.0]" if field == "origin" else "\norigin: [-10.0, -10.0]"
    g.write_text(f"kind: cartesian\nn_layers: 3\ncells: [4, 4]\ncell_size: {size}{origin}\n")
    with pytest.raises(GridError, match="must be finite"):
        vx.load_grid(g)
    with pytest.raises(GridError, match="r_edges must be finite"):
        vx.CylindricalGrid(name="x", r_edges=(np.array([0.0, np.nan]),), n_alpha=np.array([1]))


def test_voxelize_onto_a_grid_with_other_layers_maps_by_depth(g4_path, tmp_path, capsys):
    """A file whose layer depths are known (layer_depth_mm), projected onto a grid with
    another number of layers, goes there by depth and says so, instead of layer i onto
    layer i; the same as asking for it explicitly. Split parts keep the depths."""
    from pointcalo import io
    from pointcalo.cli import main
    from pointcalo.io.split import split_file

    part = split_file(g4_path, tmp_path / "split", fractions=(0.99, 0.005, 0.005))["val"]
    assert "layer_depth_mm" in io.open_reader(part).attrs
    auto, explicit = tmp_path / "auto.h5", tmp_path / "explicit.h5"
    assert main(["voxelize", str(part), str(auto), "--grid", "calochallenge-2"]) == 0
    assert "by depth" in capsys.readouterr().out
    args = ["--layer-map", "depth", "--source-depth", "ild", "-q"]
    assert main(["voxelize", str(part), str(explicit), "--grid", "calochallenge-2", *args]) == 0
    import h5py

    with h5py.File(auto) as a, h5py.File(explicit) as b:
        np.testing.assert_allclose(a["showers"][:], b["showers"][:], rtol=1e-6)
