"""Segmentation families for geometry-aware models (voxelize.segmentations)."""

from __future__ import annotations

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
