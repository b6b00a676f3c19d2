"""Blocks of sub-cells and their re-expansion (pointcalo.blocks): energy kept per block, layer
and shower, points on the sub-cell lattice inside their block, patterns that keep facing the
shower axis, and the library's bins."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

from pointcalo.blocks import PatternLibrary, coarsen, find_blocks, find_blocks_flat
from pointcalo.showers import make_showers

PITCH = 5.088 / 6


def _showers(e, x, y, layer, counts):
    pts = {
        "E": np.asarray(e, np.float32),
        "x": np.asarray(x, np.float32),
        "y": np.asarray(y, np.float32),
        "layer": np.asarray(layer, np.int32),
    }
    return make_showers(np.full(len(counts), 5e4, np.float32), pts, counts=np.asarray(counts))


def _lattice_showers(n, seed):
    """Showers on the sub-cell lattice: a dense core and a sparse halo in five layers."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(80, 160, n)
    p = int(counts.sum())
    r = np.where(rng.random(p) < 0.5, rng.exponential(2.0, p), rng.exponential(20.0, p))
    phi = rng.uniform(0, 2 * np.pi, p)
    x = (np.floor(r * np.cos(phi) / PITCH) + 0.5) * PITCH
    y = (np.floor(r * np.sin(phi) / PITCH) + 0.5) * PITCH
    layer = rng.integers(0, 5, p)
    s = _showers(rng.exponential(1.0, p), x, y, layer, counts)
    return s


def _per(showers, key_fn):
    flat = ak.flatten(showers.points)
    owner = np.repeat(np.arange(len(showers)), ak.to_numpy(ak.num(showers.points, axis=1)))
    keys = key_fn(owner, flat)
    uk, inv = np.unique(keys, axis=0, return_inverse=True)
    return uk, np.bincount(inv.ravel(), ak.to_numpy(flat.E).astype(np.float64))


def _layer_key(owner, flat):
    return np.stack([owner, ak.to_numpy(flat.layer)], 1)


def test_coarsen_keeps_energy_per_layer_with_one_point_per_block_at_its_centre():
    s = _lattice_showers(20, 0)
    c = coarsen(s, PITCH, 3)
    k0, e0 = _per(s, _layer_key)
    k1, e1 = _per(c, _layer_key)
    np.testing.assert_array_equal(k0, k1)
    np.testing.assert_allclose(e1, e0, rtol=1e-5)
    flat = ak.flatten(c.points)
    x, y = ak.to_numpy(flat.x), ak.to_numpy(flat.y)
    np.testing.assert_allclose((x / (3 * PITCH)) % 1, 0.5, atol=1e-4)  # block centres
    np.testing.assert_allclose((y / (3 * PITCH)) % 1, 0.5, atol=1e-4)
    assert ak.sum(ak.num(c.points, axis=1)) < ak.sum(ak.num(s.points, axis=1))
    b = find_blocks(s, PITCH, 3)
    np.testing.assert_allclose(b.pattern.sum(1), 1.0)
    assert len(b.energy) == ak.sum(ak.num(c.points, axis=1))  # one point per block


def test_expand_keeps_every_block_energy_and_lands_on_the_lattice_inside_it():
    train, s = _lattice_showers(50, 1), _lattice_showers(10, 2)
    lib = PatternLibrary.from_showers(train, PITCH, 3)
    out = lib.expand(coarsen(s, PITCH, 3), seed=4)

    def block_key(owner, flat):
        bx = np.floor(ak.to_numpy(flat.x) / PITCH) // 3
        by = np.floor(ak.to_numpy(flat.y) / PITCH) // 3
        return np.stack([owner, ak.to_numpy(flat.layer), bx, by], 1)

    k0, e0 = _per(s, block_key)
    k1, e1 = _per(out, block_key)
    np.testing.assert_array_equal(k0, k1)  # the same blocks, no point leaves its block
    np.testing.assert_allclose(e1, e0, rtol=1e-5)
    flat = ak.flatten(out.points)
    frac = (ak.to_numpy(flat.x) / PITCH) % 1
    np.testing.assert_allclose(frac, 0.5, atol=1e-3)  # sub-cell centres
    key = np.stack([np.repeat(np.arange(len(out)), ak.num(out.points, axis=1)),
                    ak.to_numpy(flat.layer), np.floor(ak.to_numpy(flat.x) / PITCH),
                    np.floor(ak.to_numpy(flat.y) / PITCH)], 1)  # fmt: skip
    assert len(np.unique(key, axis=0)) == len(key)  # one point per sub-cell
    assert (ak.to_numpy(flat.E) > 0).all()
    # the same seed, the same showers; another seed, other patterns
    again = lib.expand(coarsen(s, PITCH, 3), seed=4)
    assert ak.all(again.points.x == out.points.x)
    other = lib.expand(coarsen(s, PITCH, 3), seed=5)
    assert ak.sum(ak.num(other.points, axis=1)) != ak.sum(ak.num(out.points, axis=1))


def test_patterns_keep_facing_the_shower_axis():
    """Training: a heavy point on the axis and a block at +x lit only in its column nearest
    the axis. Expanded onto a block at -x, the energy goes to that block's column nearest the
    axis, i.e. its highest x column."""
    c = 3 * PITCH
    xs = [0.5 * PITCH, 30 * c + 0.5 * PITCH, 30 * c + 0.5 * PITCH]  # block 30, column 0
    ys = [0.5 * PITCH, 0.5 * PITCH, 1.5 * PITCH]
    train = _showers([1e3, 0.2, 0.2], xs, ys, [0, 0, 0], [3])
    lib = PatternLibrary.from_showers(train, PITCH, 3)
    blocks = _showers([1e3, 0.4], [0.5 * PITCH, -29.5 * c], [0.5 * PITCH, 1.5 * PITCH], [0, 0], [2])
    out = lib.expand(blocks)
    x = ak.to_numpy(out.points.x[0])
    far = x < -10
    i = np.floor(x[far] / PITCH).astype(int)
    assert set(i - 3 * np.floor_divide(i, 3)) == {2}  # column 2 of 0..2: nearest the axis
    assert ak.to_numpy(out.points.E[0])[far].sum() == pytest.approx(0.4, rel=1e-5)


def test_a_bin_the_library_lacks_puts_the_energy_in_the_centre_and_the_library_round_trips(
    tmp_path,
):
    lib = PatternLibrary.from_showers(_lattice_showers(5, 3), PITCH, 3)
    missing = np.array([10**9])
    np.testing.assert_array_equal(lib.draw(missing, np.array([0.3]))[0], np.eye(9)[4])
    path = lib.save(tmp_path / "lib.npz")
    back = PatternLibrary.load(path)
    assert (back.pitch, back.block) == (lib.pitch, lib.block)
    np.testing.assert_array_equal(back.bins, lib.bins)
    np.testing.assert_array_equal(back.patterns, lib.patterns)
    assert np.all(np.diff(lib.bins) >= 0)


def test_spread_duplicates_moves_the_colder_points_to_the_nearest_free_cells():
    from pointcalo.blocks import spread_duplicates

    c = 3 * PITCH
    # cloud 0, layer 2: 1 and 5 MeV in cell (0, 0), 2 and 3 MeV in its neighbour (1, 0);
    # cloud 0, layer 3 and cloud 1: a point alone in cell (0, 0)
    x = np.array([0.2, 0.9, 1.4, 1.5, 0.1, 0.3]) * c
    y = np.array([0.5, 0.1, 0.7, 0.5, 0.5, 0.5]) * c
    e = np.array([1.0, 5.0, 2.0, 3.0, 4.0, 7.0])
    layer = np.array([2, 2, 2, 2, 3, 2])
    offsets = np.array([0, 5, 6])
    off, out = spread_duplicates(offsets, {"E": e, "x": x, "y": y, "layer": layer}, c, seed=1)
    np.testing.assert_array_equal(off, offsets)  # nothing merged: free cells were near
    np.testing.assert_allclose(out["E"].sum(), e.sum())
    cells = np.floor(out["x"] / c).astype(int), np.floor(out["y"] / c).astype(int)
    key = list(zip(np.repeat([0, 1], [5, 1]), out["layer"], *cells, strict=True))
    assert len(set(key)) == 6
    np.testing.assert_allclose((out["x"] / c) % 1, 0.5, atol=1e-5)
    hot = np.flatnonzero(out["E"] == 5.0)[0]
    assert (cells[0][hot], cells[1][hot]) == (0, 0)  # the hottest stays
    for moved, home, taken in ((1.0, (0, 0), (1, 0)), (2.0, (1, 0), (0, 0))):
        m = np.flatnonzero(out["E"] == moved)[0]
        at = (cells[0][m], cells[1][m])
        assert (at[0] - home[0]) ** 2 + (at[1] - home[1]) ** 2 == 1  # a side neighbour
        assert at != taken  # a free one
    # no room within the radius: merged instead
    full = {"E": np.ones(3), "x": np.full(3, 0.5 * c), "y": np.full(3, 0.5 * c),
            "layer": np.zeros(3, int)}  # fmt: skip
    off2, out2 = spread_duplicates(np.array([0, 3]), full, c, radius=0)
    np.testing.assert_array_equal(off2, [0, 1])
    np.testing.assert_allclose(out2["E"], [3.0])


def _block_run(tmp_path, sub_path, blocks: bool):
    """A tiny CaloClouds trained two steps on the blocks of ``sub_path``'s showers; with
    ``blocks`` a two-level model carrying at most 5 patterns per bin."""
    from pointcalo import io
    from pointcalo.clouds import from_showers
    from pointcalo.config import validate_config
    from pointcalo.train.engine import train
    from tests.conftest import TINY_CALOCLOUDS

    model = dict(TINY_CALOCLOUDS)
    if blocks:
        model.update(blocks=3, blocks_from=str(sub_path), block_patterns=5)
    cfg = validate_config(
        {
            "model": model,
            "train": {"steps": 2, "batch_size": 8, "device": "cpu", "checkpoint_every": 2,
                      "out": str(tmp_path / ("blocks" if blocks else "plain"))},
            "data": {"val_fraction": 0.0},
        }
    )  # fmt: skip
    data = from_showers(coarsen(io.read(sub_path), PITCH, 3))
    return train(cfg, data=data, progress=False, log=lambda m: None)


def test_a_block_model_samples_sub_cells_keeping_its_blocks_energy(tmp_path):
    import torch

    from pointcalo import io
    from pointcalo.blocks import attach_library, find_blocks_flat
    from pointcalo.checkpoint import load_checkpoint, save_checkpoint
    from pointcalo.generation import generate, load_model
    from pointcalo.models.consistency import build_from_teacher
    from pointcalo.models.registry import GenerationBatch

    sub = _lattice_showers(40, 1)
    sub_path = io.write(sub, tmp_path / "sub.h5")
    loaded = load_model(_block_run(tmp_path, sub_path, blocks=True))
    lib = loaded.model.blocks.library()
    assert lib.block == 3 and np.isclose(lib.pitch, PITCH)
    assert np.bincount(np.unique(lib.bins, return_inverse=True)[1]).max() <= 5
    assert loaded.limits.e_max == pytest.approx(float(ak.max(sub.points.E)))  # sub-cells' cap

    e_inc = np.linspace(20e3, 80e3, 6)
    batch = GenerationBatch({"incident_energy": e_inc}, 3, 0, torch.device("cpu"), None, None)
    fam, args = loaded.family, (loaded.model, loaded.net, loaded.normalizer, loaded.cfg)
    expanded = fam.generate(*args, batch)
    library, loaded.model.blocks = loaded.model.blocks, None
    raw = fam.generate(*args, batch)  # the same network output, not re-expanded
    loaded.model.blocks = library
    want = find_blocks_flat(raw.offsets, raw.points, PITCH, 3)
    got = find_blocks_flat(expanded.offsets, expanded.points, PITCH, 3)
    usable = np.isfinite(want.energy) & (want.energy > 0)
    for a, b in (("shower", "shower"), ("layer", "layer"), ("bx", "bx"), ("by", "by")):
        np.testing.assert_array_equal(getattr(got, a), getattr(want, b)[usable])
    np.testing.assert_allclose(got.energy, want.energy[usable], rtol=1e-5)
    cells = np.stack([np.repeat(np.arange(6), np.diff(expanded.offsets)),
                      expanded.points["layer"], np.floor(expanded.points["x"] / PITCH),
                      np.floor(expanded.points["y"] / PITCH)], 1)  # fmt: skip
    assert len(np.unique(cells, axis=0)) == len(cells)  # one point per sub-cell
    assert len(cells) > 1.5 * len(got.energy)  # blocks shared out over their sub-cells
    # each shower's patterns come from its own stream: the same showers in batches of two
    one = generate(*args[:3], e_inc, loaded.cfg, seed=3, batch_size=6)
    three = generate(*args[:3], e_inc, loaded.cfg, seed=3, batch_size=2)
    np.testing.assert_array_equal(one.offsets, three.offsets)
    for c in ("x", "y", "layer"):  # the same patterns; energies to float32 batch rounding
        np.testing.assert_array_equal(one.points[c], three.points[c])
    np.testing.assert_allclose(one.points["E"], three.points["E"], rtol=1e-4)

    # a student distilled from it carries the same library
    student, *_ = build_from_teacher(str(tmp_path / "blocks" / "checkpoint.pt"))
    torch.testing.assert_close(student.blocks.patterns, loaded.model.blocks.patterns)
    from pointcalo.errors import PointcaloError
    from pointcalo.models.consistency.export import _one_step_parts

    with pytest.raises(PointcaloError, match="block"):
        _one_step_parts(type("Loaded", (), {"model": student})())

    # a model trained on blocks before the family knew them becomes the same two-level model
    plain = load_checkpoint(_block_run(tmp_path, sub_path, blocks=False))
    save_checkpoint(tmp_path / "attached.pt", attach_library(plain, str(sub_path), 3, 5))
    attached = load_model(tmp_path / "attached.pt")
    assert attached.cfg.model.blocks == 3 and attached.limits == loaded.limits
    np.testing.assert_array_equal(attached.model.blocks.bins, loaded.model.blocks.bins)


def test_a_core_window_gives_back_its_own_core_mirrored_and_falls_back_per_layer():
    from pointcalo.blocks import CoreLibrary
    from pointcalo.showers import flatten

    shower = coarsen(_lattice_showers(1, 4), PITCH, 1)  # one point per sub-cell
    flat = flatten(shower)
    pts = {k: np.asarray(v) for k, v in flat.points.items()}
    pts["x"] = pts["x"] - 3 * PITCH  # centre left of its nearest block corner: mirrored in x
    lib = CoreLibrary.from_showers(
        make_showers(np.asarray(shower.incident_energy), pts, offsets=flat.offsets), PITCH, 3, 4
    )
    assert lib.side == 12 and len(lib.bins) == len(np.unique(pts["layer"]))
    np.testing.assert_allclose(lib.patterns.sum(1), 1.0, rtol=1e-5)
    inside = lib.inside(flat.offsets, pts)
    assert 0 < inside.sum() < len(inside)
    e_inc = np.asarray(shower.incident_energy)
    off, got = lib.expand_flat(flat.offsets, pts, e_inc)  # its own points: the windows' energies
    want = {k: v[inside] for k, v in pts.items()}
    key = lambda p: np.lexsort((p["y"], p["x"], p["layer"]))  # noqa: E731
    np.testing.assert_array_equal(got["layer"][key(got)], want["layer"][key(want)])
    for c in ("x", "y"):  # the same sub-cells
        np.testing.assert_allclose(got[c][key(got)], want[c][key(want)], atol=1e-4)
    np.testing.assert_allclose(got["E"][key(got)], want["E"][key(want)], rtol=1e-5)
    assert off[-1] == inside.sum()

    # a layer no training core has: the energy on the four sub-cells at the corner
    far = {"E": np.array([8.0]), "x": np.array([0.4]), "y": np.array([0.4]), "layer": np.array([7])}
    _, corner = lib.expand_flat(np.array([0, 1]), far, e_inc)
    np.testing.assert_allclose(corner["E"], 2.0)
    np.testing.assert_allclose(sorted(set(np.abs(corner["x"]).tolist())), [PITCH / 2])


def test_a_block_model_with_core_windows_fills_each_sub_cell_once(tmp_path):
    from pointcalo import io
    from pointcalo.blocks import attach_library
    from pointcalo.checkpoint import load_checkpoint, save_checkpoint
    from pointcalo.generation import generate, load_model

    sub_path = io.write(_lattice_showers(40, 1), tmp_path / "sub.h5")
    plain = load_checkpoint(_block_run(tmp_path, sub_path, blocks=False))
    state = attach_library(plain, str(sub_path), 3, 5, core_width=2, core_cap=3)
    save_checkpoint(tmp_path / "core.pt", state)
    loaded = load_model(tmp_path / "core.pt")
    lib = loaded.model.blocks.library()
    assert lib.core is not None and lib.core.width == 2
    assert np.bincount(np.unique(lib.core.bins, return_inverse=True)[1]).max() <= 3
    out = generate(loaded.model, loaded.net, loaded.normalizer, np.full(8, 5e4), loaded.cfg)
    p = out.points
    cells = np.stack([np.repeat(np.arange(8), np.diff(out.offsets)), p["layer"],
                      np.floor(p["x"] / PITCH), np.floor(p["y"] / PITCH)], 1)  # fmt: skip
    assert len(cells) > 0 and len(np.unique(cells, axis=0)) == len(cells)

    # a new library replaces the one a checkpoint carries (here a wider core window)
    save_checkpoint(tmp_path / "wider.pt", attach_library(state, str(sub_path), 3, 5, 0, 4, 3))
    wider = load_model(tmp_path / "wider.pt").model.blocks.library()
    assert wider.core.width == 4 and wider.core.patterns.shape[1] == 12**2


def test_a_core_is_drawn_among_the_nearest_in_energy_of_its_layer_and_energy_group():
    from pointcalo.blocks import NEAREST, CoreLibrary

    # 100 cores of layer 3, incident-energy group 1 (edges 20 / 50 GeV), log10 E = 0.00 .. 0.99;
    # core k lights sub-cell k % 16 of a 4 x 4 window, so a drawn core names itself
    m = 100
    patterns = np.eye(16, dtype=np.float32)[np.arange(m) % 16]
    bins = np.full(m, 3 * 100 + 1)
    log_e = np.arange(m, dtype=np.float32) / 100
    lib = CoreLibrary(PITCH, 2, 2, bins, patterns, log_e, np.array([20e3, 50e3]))
    assert (lib.group(np.array([3, 3, 3]), np.array([10e3, 30e3, 80e3])) == [300, 301, 302]).all()
    q = np.array([0.5, 0.5, 0.0, 0.99, 0.995])
    for u in (0.0, 0.5, 0.999):
        got = lib.draw(np.full(len(q), 301), q, np.full(len(q), u)).argmax(1)
        idx = [np.flatnonzero(np.arange(m) % 16 == g) for g in got]
        near = [k[np.argmin(np.abs(k / 100 - e))] for k, e in zip(idx, q, strict=True)]
        dist = np.abs(np.array(near) / 100 - q)
        assert (dist[:2] <= NEAREST / 200 + 1e-6).all()  # inside: the 8 around it
        assert (dist <= NEAREST / 100).all()  # at the ends: the 8 at that end
    # a group without cores draws from its layer's; a layer without any: the corner sub-cells
    other = lib.draw(np.array([300, 700]), np.array([0.5, 0.5]), np.array([0.3, 0.3]))
    assert other[0].sum() == pytest.approx(1.0) and other[0].max() == 1.0
    assert np.count_nonzero(other[1]) == 4 and other[1].sum() == pytest.approx(1.0)


def test_a_model_carries_its_cores_sparse_and_still_reads_the_dense_table_of_older_checkpoints():
    import torch

    from pointcalo.blocks import CoreLibrary, PatternBuffers, library_meta

    showers = coarsen(_lattice_showers(12, 5), PITCH, 1)
    library = PatternLibrary.from_showers(showers, PITCH, 3, core_width=4)
    core = library.core
    assert isinstance(core, CoreLibrary) and 0 < np.mean(core.patterns > 0) < 1
    buffers = PatternBuffers.of(library)
    meta = library_meta(library)
    assert meta["core_lit"] == np.count_nonzero(core.patterns) == len(buffers.core_slots)
    state = buffers.state_dict()
    assert "core_patterns" not in state
    back = PatternBuffers(meta)
    back.load_state_dict(state)
    np.testing.assert_allclose(back.library().core.patterns, core.patterns, rtol=1e-6, atol=1e-9)

    old_meta = {k: v for k, v in meta.items() if k != "core_lit"}  # 2026-12-05's format
    old = {k: v for k, v in state.items() if not k.startswith(("core_counts", "core_slots"))}
    old.pop("core_shares")
    old["core_patterns"] = torch.as_tensor(core.patterns, dtype=torch.float16)
    dense = PatternBuffers(old_meta)
    dense.load_state_dict(old)
    np.testing.assert_allclose(dense.library().core.patterns, core.patterns, rtol=2e-3, atol=1e-6)


def _core_and_halo(n, seed, pairs):
    """Showers of one layer: a hot core of 5 x 5 sub-cells on the axis and a halo of blocks
    30-50 mm out, each halo block a single lit sub-cell; ``pairs``: each halo block comes with
    its right-hand neighbour block lit too (a track crossing a block edge)."""
    rng = np.random.default_rng(seed)
    e, x, y, counts = [], [], [], []
    for _ in range(n):
        cx, cy = np.meshgrid(np.arange(-2, 3), np.arange(-2, 3))
        xs, ys, es = list(cx.ravel()), list(cy.ravel()), [50.0] * 25
        taken = set()
        for _ in range(6):
            r, phi = rng.uniform(30, 50), rng.uniform(0, 2 * np.pi)
            bi, bj = (
                int(np.floor(r * np.cos(phi) / PITCH / 3)),
                int(np.floor(r * np.sin(phi) / PITCH / 3)),
            )
            near = [(bi + di, bj + dj) for di in range(-3, 5) for dj in range(-3, 4)]
            if any(b in taken for b in near):
                continue
            for d in (0, 1) if pairs else (0,):
                taken.add((bi + d, bj))
                xs.append(3 * (bi + d) + 1)
                ys.append(3 * bj + 1)
                es.append(rng.uniform(0.5, 1.5))
        e += es
        x += [(v + 0.5) * PITCH for v in xs]
        y += [(v + 0.5) * PITCH for v in ys]
        counts.append(len(es))
    return _showers(e, x, y, np.zeros(len(e), int), counts)


def _halo_blocks(offsets, pts, core):
    """Per shower: the lit blocks outside its window and how many of them have a lit block
    among the 8 around them."""
    from pointcalo.blocks import _select

    outside = _select(offsets, pts, ~core.inside(offsets, pts))
    b = find_blocks_flat(*outside, PITCH, 3)
    keys = set(zip(b.shower.tolist(), b.bx.tolist(), b.by.tolist(), strict=True))
    with_neighbour = sum(
        any((s, i + di, j + dj) in keys for di in (-1, 0, 1) for dj in (-1, 0, 1) if di or dj)
        for s, i, j in keys
    )
    return len(keys), with_neighbour


def test_halo_patches_turn_isolated_blocks_into_geant4_like_chains_keeping_counts_and_energy():
    """Training halo made of pairs of neighbouring blocks; a generator's isolated halo blocks
    come back as pairs, about as many lit blocks as it made (each kept with probability
    E[1/lit] = 1/2), one point per sub-cell, none in the core window, each layer's halo
    energy kept."""
    from pointcalo.blocks import HaloLibrary
    from pointcalo.showers import flatten

    train = _core_and_halo(60, 1, pairs=True)
    library = PatternLibrary.from_showers(train, PITCH, 3, core_width=4, halo=True)
    halo, core = library.halo, library.core
    assert isinstance(halo, HaloLibrary) and len(halo.bins) > 0
    assert np.all(halo.lit == 2)  # every training halo patch: its block and the neighbour
    np.testing.assert_allclose(halo.keep_probability(halo.bins[:3]), 0.5)

    gen = flatten(_core_and_halo(80, 2, pairs=False))
    pts = {k: np.asarray(v) for k, v in gen.points.items()}
    n_in, with_in = _halo_blocks(gen.offsets, pts, core)
    assert with_in == 0 and n_in > 300
    rng = np.random.default_rng(0)
    e_inc = np.full(len(gen.offsets) - 1, 5e4)
    off, out = library.expand_flat(gen.offsets, pts, lambda k: rng.random(k.sum()), e_inc)
    n_out, with_out = _halo_blocks(off, out, core)
    assert abs(n_out - n_in) < 0.2 * n_in, (n_out, n_in)
    assert with_out == n_out  # all in pairs
    owner = np.repeat(np.arange(len(off) - 1), np.diff(off))
    cells = np.stack([owner, np.floor(out["x"] / PITCH), np.floor(out["y"] / PITCH)], 1)
    assert len(np.unique(cells, axis=0)) == len(cells)
    inside = core.inside(off, out)
    ins_gen = core.inside(gen.offsets, pts)
    o_gen = np.repeat(np.arange(len(gen.offsets) - 1), np.diff(gen.offsets))
    want = np.bincount(o_gen[~ins_gen], pts["E"][~ins_gen], len(off) - 1)
    got = np.bincount(owner[~inside], out["E"][~inside], len(off) - 1)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(out["E"].sum(), pts["E"].sum(), rtol=1e-5)
