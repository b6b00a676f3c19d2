"""Families of segmentations of one calorimeter, as data for geometry-aware models.

The geometry-aware autoregressive model (Liu, Ghosh, Smith, Baldi, Whiteson, "Geometry-aware
Autoregressive Models for Calorimeter Shower Simulations"; successors arXiv 2305.11531,
2411.05996) trains one model on Geant4 showers of a CaloGAN-like calorimeter binned into many
segmentations, each cell's size an input, and generates for segmentations it did not see.
Points recorded on a fine lattice (``g4_calogan_like.h5``: 1.25 mm) can be binned into any of
them with :func:`voxelize.project`.

:func:`calogan_family` is that family for the three readout layers: the inner layer's
``(12, 12)`` cells scaled by 4 or 16 in one direction and by 1/3, 1, 2 or 4 in the other,
the middle layer ``(12, 12)``, ``(48, 24)`` or ``(48, 48)``, the outer ``(24, 24)``, over a
square of ``span`` mm centred on the shower axis. With ``transition=True`` it also has the
paper's middle layer with a transition region, :data:`TRANSITION` (``36 x 48`` cells: 12
columns on the left half, 24 on the right, 48 rows), whose cells of two sizes make those
grids :class:`voxelize.RectilinearGrid`.
"""

from __future__ import annotations

import itertools

import numpy as np

from voxelize.grids import CartesianGrid, RectilinearGrid

#: CaloGAN-like readout layers (mm): thickness and centre depth (``g4_calogan_like.h5``).
CALOGAN_LIKE_THICKNESS_MM = (90.0, 347.0, 43.0)
#: The transverse square the CaloGAN images span (mm), centred on the axis.
CALOGAN_SPAN_MM = 480.0


def _inner_cells() -> list[tuple[int, int]]:
    """``(nx, ny)`` of the inner layer: ``12 * (a, b)`` and ``12 * (b, a)`` for a in 4, 16 and
    b in 1/3, 1, 2, 4 (distinct shapes, in a fixed order)."""
    shapes = []
    for a, b in itertools.product((4, 16), (1 / 3, 1, 2, 4)):
        for nx, ny in ((12 * a, round(12 * b)), (round(12 * b), 12 * a)):
            if (nx, ny) not in shapes:
                shapes.append((nx, ny))
    return shapes


MIDDLE_CELLS = ((12, 12), (48, 24), (48, 48))
OUTER_CELLS = ((24, 24),)
#: The middle layer with a transition region: 12 columns on the left half, 24 on the right.
TRANSITION = "36x48t"


def _layer_edges(cells: tuple[int, int] | str, span: float) -> tuple[np.ndarray, np.ndarray]:
    """x and y cell edges (mm) of one layer: ``(nx, ny)`` even cells, or :data:`TRANSITION`."""
    if cells == TRANSITION:
        x = np.concatenate([np.linspace(-span / 2, 0.0, 13)[:-1], np.linspace(0.0, span / 2, 25)])
        return x, np.linspace(-span / 2, span / 2, 49)
    nx, ny = cells
    return np.linspace(-span / 2, span / 2, nx + 1), np.linspace(-span / 2, span / 2, ny + 1)


def _label(cells: tuple[int, int] | str) -> str:
    return cells if isinstance(cells, str) else f"{cells[0]}x{cells[1]}"


def segmentation(
    cells: tuple[tuple[int, int] | str, ...],
    span: float = CALOGAN_SPAN_MM,
    name: str | None = None,
) -> CartesianGrid | RectilinearGrid:
    """A CaloGAN-like grid with ``cells[l] = (nx, ny)`` uniform cells (or :data:`TRANSITION`)
    over ``span`` x ``span`` mm in layer ``l``; named ``calogan-<nx>x<ny>-...`` unless ``name``
    is given."""
    thick = np.asarray(CALOGAN_LIKE_THICKNESS_MM)
    edges = np.concatenate([[0.0], np.cumsum(thick)])
    name = name or "calogan-" + "-".join(_label(c) for c in cells)
    if TRANSITION in cells:
        xy = [_layer_edges(c, span) for c in cells]
        return RectilinearGrid(
            name=name,
            x_edges=tuple(x for x, _ in xy),
            y_edges=tuple(y for _, y in xy),
            layer_depth=0.5 * (edges[1:] + edges[:-1]),
            layer_edges=edges,
        )
    nx = np.array([c[0] for c in cells], np.int64)
    ny = np.array([c[1] for c in cells], np.int64)
    return CartesianGrid(
        name=name,
        nx=nx,
        ny=ny,
        dx=span / nx,
        dy=span / ny,
        x_min=np.full(len(cells), -span / 2),
        y_min=np.full(len(cells), -span / 2),
        layer_depth=0.5 * (edges[1:] + edges[:-1]),
        layer_edges=edges,
    )


def calogan_family(
    span: float = CALOGAN_SPAN_MM, transition: bool = False
) -> list[CartesianGrid | RectilinearGrid]:
    """Every segmentation of the family (module docstring): 15 inner x 3 middle x 1 outer =
    45 grids, in a fixed order; with ``transition`` 15 more whose middle layer is
    :data:`TRANSITION`."""
    grids = [
        segmentation((inner, middle, outer), span)
        for inner, middle, outer in itertools.product(_inner_cells(), MIDDLE_CELLS, OUTER_CELLS)
    ]
    if transition:
        grids += [
            segmentation((inner, TRANSITION, outer), span)
            for inner, outer in itertools.product(_inner_cells(), OUTER_CELLS)
        ]
    return grids
