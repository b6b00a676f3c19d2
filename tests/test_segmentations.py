"""Segmentation families for geometry-aware models (voxelize.segmentations)."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest

import voxelize as vx
from voxelize.segmentations import calogan_family, segmentation


def test_the_calogan_family_has_the_papers_cell_counts():
    family = calogan_family()
    assert len(family) == 45 and len({g.name for g in family}) == 45
    inner = {(int(g.nx[0]), int(g.ny[0])) for g in family}
    assert (48, 4) in inner and (4, 48) in inner and (192, 48) in inner and (48, 48) in inner
    assert {(int(g.nx[1]), int(g.ny[1])) for g in family} == {(12, 12), (48, 24), (48, 48)}
    for g in family:  # every layer spans the same 480 mm square
        np.testing.assert_allclose(g.nx * g.dx, 480.0)
        np.testing.assert_allclose(g.ny * g.dy, 480.0)
    # round trip through the grid-file form (so pointcalo voxelize --grid FILE.yaml takes it)
    g = family[7]
    assert vx.load_grid(g.to_dict() | {"name": g.name}) == g


def test_every_segmentation_keeps_the_energy_inside_it():
    """The same showers binned into every segmentation: the energy inside the 480 mm square is
    the same for all (only the cells differ), and each layer's voxels hold that layer's energy."""
    rng = np.random.default_rng(0)
    n = 200
    layer = rng.integers(0, 3, n)
    x, y = rng.normal(0, 60, n), rng.normal(0, 60, n)
    e = rng.exponential(1.0, n)
    inside = (np.abs(x) < 240) & (np.abs(y) < 240)
    points = {"E": e, "x": x, "y": y, "layer": layer, "ptr": np.array([0, n])}
    for g in calogan_family()[::4]:
        vox = vx.project(points, g).voxels[0]
        assert vox.sum() == pytest.approx(e[inside].sum(), rel=1e-5)
        start = np.concatenate([[0], np.cumsum(g.nx * g.ny)])
        for lay in range(3):
            want = e[inside & (layer == lay)].sum()
            assert vox[start[lay] : start[lay + 1]].sum() == pytest.approx(want, rel=1e-5)


def test_a_segmentation_is_refused_without_cells():
    with pytest.raises(vx.GridError, match="at least one cell"):
        segmentation(((0, 12), (12, 12), (24, 24)))


def test_the_transition_region_layer_has_cells_of_two_sizes():
    family = calogan_family(transition=True)
    assert len(family) == 60 and family[:45] == calogan_family()
    g = family[45]
    assert isinstance(g, vx.RectilinearGrid) and g.name.split("-")[2] == "36x48t"
    assert g.layer_shape(1) == (48, 36)
    widths = np.diff(g.x_edges[1])
    np.testing.assert_allclose(widths[:12], 20.0)  # left half: 12 cells
    np.testing.assert_allclose(widths[12:], 10.0)  # right half: 24 cells
    assert vx.load_grid(g.to_dict()) == g  # the YAML form round-trips


def test_rectilinear_binning_agrees_with_the_even_grid_it_can_express():
    """Cells on explicit edges bin exactly as the evenly spaced grid with the same edges,
    edges included (a point on an inner edge goes to the cell above, on the outer edge out)."""
    even = segmentation(((48, 12), (12, 12), (24, 24)))
    rect = vx.RectilinearGrid(
        name="same",
        x_edges=tuple(even.x_min[i] + even.dx[i] * np.arange(even.nx[i] + 1) for i in range(3)),
        y_edges=tuple(even.y_min[i] + even.dy[i] * np.arange(even.ny[i] + 1) for i in range(3)),
    )
    rng = np.random.default_rng(3)
    n = 2000
    x = np.concatenate([rng.uniform(-260, 260, n), [-240.0, 0.0, 10.0, 240.0]])
    y = np.concatenate([rng.uniform(-260, 260, n), [0.0, -240.0, 40.0, 0.0]])
    layer = np.concatenate([rng.integers(0, 3, n), [0, 1, 1, 2]])
    e = rng.exponential(1.0, n + 4)
    points = {"E": e, "x": x, "y": y, "layer": layer, "ptr": np.array([0, n + 4])}
    np.testing.assert_array_equal(vx.project(points, rect).voxels, vx.project(points, even).voxels)
    cx_r, cy_r, l_r = rect.cell_centres()
    cx_e, cy_e, _ = even.cell_centres()
    np.testing.assert_allclose(cx_r, cx_e)
    np.testing.assert_allclose(cy_r, cy_e)
    voxel = rng.integers(0, rect.n_voxels, 500)
    px, py = rect.sample_in_cells(voxel, rng)
    back = vx.project(
        {"E": np.ones(500), "x": px, "y": py, "layer": l_r[voxel], "ptr": np.array([0, 500])}, rect
    ).voxels[0]
    np.testing.assert_array_equal(back, np.bincount(voxel, minlength=rect.n_voxels))


def test_rectilinear_edges_must_increase():
    with pytest.raises(vx.GridError, match="increasing edges"):
        vx.RectilinearGrid(name="bad", x_edges=(np.array([0.0, 1.0, 1.0]),),
                           y_edges=(np.array([0.0, 1.0]),))  # fmt: skip


def test_a_transition_region_grid_is_evaluated_like_any_grid():
    """The metrics' observables (per-layer classifier features, radial profile) on a grid with
    cells of two sizes in one layer: the layer energies are the showers' own."""
    from pointcalo.metrics import compute
    from tests.conftest import random_showers

    grid = calogan_family(transition=True)[45]
    showers = random_showers(12)
    showers = ak.with_field(showers, showers["points", "layer"] % 3, ["points", "layer"])
    obs = compute(showers, grid=grid, threshold=0.0)
    features, names = obs.feature_matrix("per_layer")
    assert features.shape == (12, len(names)) and np.all(np.isfinite(features))
    vox = vx.project(showers, grid).voxels
    offset = grid.layer_offset
    per_layer = np.stack([vox[:, offset[i] : offset[i + 1]].sum(1) for i in range(3)], 1)
    np.testing.assert_allclose(obs.profiles["layer_energy"][:, :3], per_layer, rtol=1e-5)
