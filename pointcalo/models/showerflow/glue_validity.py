"""numpy copy of :func:`pointcalo.validity.make_valid_tensors` for the ONNX export's glue
(imports only numpy, so the export runs where pointcalo is not installed); tested against the
torch original in ``tests/test_validity.py``."""

from __future__ import annotations

import numpy as np


def make_valid(
    pts: dict[str, np.ndarray], counts: np.ndarray, bounds: dict
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``(points, counts)`` of clouds (``pts``: ``E, x, y`` float32, ``layer``; ``counts [B]``)
    made valid with ``bounds`` (:meth:`pointcalo.validity.PointLimits.bounds`): lattice snap,
    non-positive and outside points dropped, energies capped, points sharing a sub-cell
    merged, ordered by layer, y, x."""
    pitch, n_layers, e_max = float(bounds["pitch"]), int(bounds["n_layers"]), bounds["e_max"]
    cloud = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    e = np.asarray(pts["E"], np.float64)
    x = np.asarray(pts["x"], np.float64)
    y = np.asarray(pts["y"], np.float64)
    layer = np.asarray(pts["layer"], np.int64)
    if pitch > 0:
        x, y = (np.floor(x / pitch) + 0.5) * pitch, (np.floor(y / pitch) + 0.5) * pitch
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(e) & (e > 0) & np.isfinite(x) & np.isfinite(y)
        keep &= (layer >= 0) & (layer < n_layers)
        keep &= (x >= bounds["x_lo"]) & (x <= bounds["x_hi"])
        keep &= (y >= bounds["y_lo"]) & (y <= bounds["y_hi"])
    cloud, e, x, y, layer = cloud[keep], e[keep], x[keep], y[keep], layer[keep]
    e = np.minimum(e, e_max)
    if pitch > 0:
        ix, iy = np.floor(x / pitch).astype(np.int64), np.floor(y / pitch).astype(np.int64)
    else:
        ix, iy = np.unique(x, return_inverse=True)[1], np.unique(y, return_inverse=True)[1]
    order = np.lexsort((ix, iy, layer, cloud))
    cloud, e, x, y, layer, ix, iy = (a[order] for a in (cloud, e, x, y, layer, ix, iy))
    new = np.ones(len(cloud), bool)
    new[1:] = (
        (cloud[1:] != cloud[:-1])
        | (layer[1:] != layer[:-1])
        | (iy[1:] != iy[:-1])
        | (ix[1:] != ix[:-1])
    )
    first = np.flatnonzero(new)
    e_sum = np.minimum(np.add.reduceat(e, first), e_max) if len(first) else np.zeros(0)
    out = {
        "E": e_sum.astype(np.float32),
        "x": x[first].astype(np.float32),
        "y": y[first].astype(np.float32),
        "layer": layer[first],
    }
    return out, np.bincount(cloud[first], minlength=len(counts)).astype(np.int64)
