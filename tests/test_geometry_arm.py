"""The geometry-aware autoregressive model: its geometry tables, its training estimate, and
that one model learns showers on some segmentations and generates them on others."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import torch

import voxelize as vx
from pointcalo.cli import main
from pointcalo.models.geometry_arm import pick_cells
from pointcalo.models.geometry_arm.cells import layer_cells, overlap, segmentation_of
from pointcalo.models.geometry_arm.model import from_u, to_u
from pointcalo.showers import make_showers
from voxelize.segmentations import segmentation

SMALL = segmentation(((6, 4), (4, 4), (2, 2)), span=60.0)


def test_spiral_starts_at_the_axis_and_neighbours_come_before():
    cells = layer_cells(SMALL, 0, 3)
    x, y = cells.static[:, 0], cells.static[:, 1]
    r = np.hypot(x, y)
    assert np.isclose(r[0], r.min())  # the first cells are the innermost
    assert np.all(np.diff(np.maximum(np.abs(x), np.abs(y))) >= -1e-6)  # rings outwards
    n = len(cells)
    for t in range(n):
        nb = cells.nb[t][cells.nb[t] < n]
        assert np.all(nb < t)  # causal
        assert len(nb) == min(t, 3)
        if len(nb) and t > len(nb):  # and the nearest of the earlier cells
            d = np.hypot(x[:t] - x[t], y[:t] - y[t])
            others = np.setdiff1d(np.arange(t), nb)
            assert d[nb].max() <= d[others].min() + 1e-6


def test_layer_maps_carry_energy_between_segmentations():
    seg = segmentation_of(SMALL, 2, 3)
    rng = np.random.default_rng(0)
    img = rng.exponential(1.0, (2, 4, 6)).astype(np.float32)  # layer 0: ny=4, nx=6
    oy, ox, oy3, ox3 = seg.proj[(0, 1)]
    under = oy @ img @ ox.T
    assert under.shape == (2, 4, 4)
    np.testing.assert_allclose(under.sum((1, 2)), img.sum((1, 2)), rtol=1e-5)
    assert np.all(oy3 @ img @ ox3.T >= under - 1e-6)  # the window holds the cell
    edges = np.linspace(0, 1, 5)
    np.testing.assert_allclose(overlap(edges, edges), np.eye(4), atol=1e-7)


def test_cell_subsampling_is_unbiased():
    r = np.linspace(0, 200, 3000)
    rng = np.random.default_rng(1)
    totals = []
    for _ in range(200):
        sel, w = pick_cells(r, 40.0, 1500, rng)
        assert set(np.flatnonzero(r < 40)) <= set(sel.tolist())
        totals.append(w.sum())
    assert abs(np.mean(totals) / len(r) - 1) < 0.02  # the weights estimate the cell count


def test_square_root_units_round_trip():
    e = torch.tensor([[0.0, 1.0, 250.0], [4.0, 9.0, 16.0]])
    inc = torch.tensor([1e4, 5e4])
    torch.testing.assert_close(from_u(to_u(e, inc), inc), e)


def _blobs(n, seed, e_range=(10e3, 90e3)):
    """Showers of Gaussian blobs on a 1.25 mm lattice: layer widths 4, 10, 20 mm, layer
    shares 0.2, 0.75, 0.05 of E_vis = 0.19 E_inc, centres jittered by 2 mm per shower."""
    rng = np.random.default_rng(seed)
    inc = rng.uniform(*e_range, n)
    cols = {k: [] for k in ("E", "x", "y", "layer")}
    counts = []
    for i in range(n):
        c = rng.normal(0, 2.0, 2)
        k = 0
        for layer, (width, share) in enumerate(((4, 0.2), (10, 0.75), (20, 0.05))):
            m = 300
            xy = c + rng.normal(0, width, (m, 2))
            xy = (np.floor(xy / 1.25) + 0.5) * 1.25
            e = rng.dirichlet(np.ones(m)) * share * 0.19 * inc[i]
            for key, v in (("E", e), ("x", xy[:, 0]), ("y", xy[:, 1])):
                cols[key].append(v.astype(np.float32))
            cols["layer"].append(np.full(m, layer, np.int32))
            k += m
        counts.append(k)
    points = {k: np.concatenate(v) for k, v in cols.items()}
    return make_showers(inc.astype(np.float32), points, counts=np.array(counts))


def _layer_stats(voxels, grid):
    """Per layer: mean energy share and energy-weighted x width (mm) over showers."""
    x, _, layer = grid.cell_centres()
    total = voxels.sum(1)
    shares, widths = [], []
    for lay in range(grid.n_layers):
        m = layer == lay
        e = voxels[:, m]
        el = np.maximum(e.sum(1), 1e-9)
        mx = (e * x[m]).sum(1) / el
        shares.append(np.mean(e.sum(1) / total))
        widths.append(np.mean(np.sqrt((e * (x[m] - mx[:, None]) ** 2).sum(1) / el)))
    return np.array(shares), np.array(widths)


ARM_CONFIG = (
    "model:\n  name: geometry_arm\n  hidden: 48\n  depth: 2\n  neighbours: 4\n  bins: 32\n"
    "  cells_per_layer: 256\n  core_mm: 25.0\n"
    "train:\n  steps: {steps}\n  batch_size: 16\n  lr: 3.0e-3\n  warmup_steps: 10\n"
    "  ema: 0.9\n  device: cpu\n  checkpoint_every: 1000\n  log_every: 1000\n"
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small model after 1 step and after 600 (about 15 s on one core)."""
    from pointcalo import io

    d = tmp_path_factory.mktemp("arm")
    io.write(_blobs(64, 0), d / "train.h5")
    for steps in (1, 600):
        (d / "c.yaml").write_text(ARM_CONFIG.format(steps=steps))
        code = main(["train", str(d / "c.yaml"), "--data", str(d / "train.h5"), "--out",
                     str(d / f"run{steps}"), "-q"])  # fmt: skip
        assert code == 0
    (d / "run").symlink_to(d / "run600")
    return d


@pytest.mark.parametrize("held_out", ["calogan", "calogan-48x12-36x48t-24x24"])
def test_one_model_generates_on_a_held_out_segmentation(trained, tmp_path, held_out):
    """Trained on the family minus the held-out ones, generated on CaloGAN's own grid (inner
    3 x 96 cells of 5 x 160 mm, outer 12 x 6: shapes it never saw) and on one with the
    transition-region middle layer (cells of 20 and 10 mm in one layer, never seen): the layer
    shares and the visible energy of the truth come back."""
    from pointcalo import io
    from voxelize.gridfiles import write_grid_yaml
    from voxelize.segmentations import calogan_family

    d = trained
    if held_out == "calogan":
        grid, spec = vx.load_grid("calogan"), "calogan"
    else:
        grid = next(g for g in calogan_family(transition=True) if g.name == held_out)
        spec = str(write_grid_yaml(grid, tmp_path / "t.yaml"))
    out = tmp_path / "gen.h5"
    assert main(["sample", str(d / "run" / "checkpoint.pt"), "--n", "48", "--grid", spec,
                 "--energy", "20:80", "-o", str(out), "-q"]) == 0  # fmt: skip
    gen = io.read(out)
    truth = _blobs(48, 5, (20e3, 80e3))
    as_vox = {}
    for name, s in (("gen", gen), ("truth", truth)):
        flat = {k: np.asarray(ak.flatten(s["points", k])) for k in ("E", "x", "y", "layer")}
        ptr = np.concatenate([[0], np.cumsum(ak.num(s["points"]))])
        as_vox[name] = vx.project({**flat, "ptr": ptr}, grid).voxels
    s_gen, _ = _layer_stats(as_vox["gen"], grid)
    s_true, _ = _layer_stats(as_vox["truth"], grid)
    np.testing.assert_allclose(s_gen, s_true, atol=0.03)
    e_gen = as_vox["gen"].sum(1) / np.asarray(gen["incident_energy"])
    assert abs(e_gen.mean() / 0.19 - 1) < 0.05


def test_it_learns_held_out_segmentations_from_seen_ones(trained):
    """The likelihood of showers binned onto segmentations never trained on improves with
    training as much as on seen ones (the network reads geometry, not cell indices)."""
    from pointcalo.clouds import from_showers
    from pointcalo.generation import load_model
    from pointcalo.models.geometry_arm import cell_nll

    data = from_showers(_blobs(24, 9))
    seen = segmentation(((48, 12), (12, 12), (24, 24)))
    nll = {}
    for steps in (1, 600):
        net = load_model(trained / f"run{steps}" / "checkpoint.pt").net
        nll[steps] = [cell_nll(net, data, g) for g in (seen, vx.load_grid("calogan"))]
    gain_seen, gain_held = (nll[1][i] / nll[600][i] for i in range(2))
    assert gain_seen > 3 and gain_held > 3
    assert gain_held > 0.5 * gain_seen


def test_same_showers_whatever_the_batch(trained):
    from pointcalo import io

    d = trained
    files = []
    for bs in (3, 5):
        f = d / f"b{bs}.h5"
        assert main(["sample", str(d / "run" / "checkpoint.pt"), "--n", "6", "--batch-size",
                     str(bs), "--grid", "calogan", "-o", str(f), "-q"]) == 0  # fmt: skip
        files.append(io.read(f))
    np.testing.assert_array_equal(
        np.asarray(files[0]["incident_energy"]), np.asarray(files[1]["incident_energy"])
    )
    for k in ("E", "layer"):
        np.testing.assert_allclose(
            np.asarray(ak.flatten(files[0]["points", k])),
            np.asarray(ak.flatten(files[1]["points", k])),
        )


@pytest.mark.parametrize(
    "grid, words",
    [("ild", "has 30 layers"), ("ild-cylindrical", "cartesian grids"), ("nonesuch.yaml", "--grid")],
)
def test_grids_it_cannot_generate_on_are_refused(trained, tmp_path, capsys, grid, words):
    out = tmp_path / "x.h5"
    code = main(["sample", str(trained / "run" / "checkpoint.pt"), "--n", "2", "--grid", grid,
                 "-o", str(out), "-q"])  # fmt: skip
    assert code == 2 and words in capsys.readouterr().err
    assert not out.exists()


def test_grid_is_refused_for_models_of_a_fixed_grid(tmp_path, capsys):
    out = tmp_path / "x.h5"
    assert main(["sample", "ild-photon-cm", "--n", "2", "--grid", "calogan", "-o", str(out),
                 "-q"]) == 2  # fmt: skip
    assert "does not generate on a grid" in capsys.readouterr().err
    assert not out.exists()


def test_held_out_segmentations_never_reach_training():
    from pointcalo.models.geometry_arm import GeometryARMConfig, held_out_names, training_grids

    m = GeometryARMConfig()
    names = {g.name for g in training_grids(m)}
    held = held_out_names(m)
    assert len(names) == 41 and not names & set(held)
    assert sum("36x48t" in h for h in held) == 15 and "calogan" in held  # patterns and presets
    with pytest.raises(Exception, match="every segmentation"):
        training_grids(GeometryARMConfig(held_out=["calogan-*"]))
