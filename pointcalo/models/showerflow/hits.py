"""Hit counting for the shower flow's optional hit-count feature (``model.hits``).

The flow can learn each shower's number of hit cells (cells of pitch ``cell`` mm above
``threshold`` MeV on a grid centred on the shower axis). Earlier versions then merged small
cells of generated showers into neighbouring hit cells until that count was met; the merging
tuned the output to one grid and one alignment of it and was removed (``docs/fidelity.md``).
The feature stays so that checkpoints trained with it load; generation no longer uses it.
"""

from __future__ import annotations

import numpy as np

_SPAN = 1 << 12  # cell index range per axis (cells are offset by half of it)


def _cell_keys(x, y, layer, shower, cell):
    ix = np.floor(x / cell + 0.5).astype(np.int64) + _SPAN // 2
    iy = np.floor(y / cell + 0.5).astype(np.int64) + _SPAN // 2
    np.clip(ix, 0, _SPAN - 1, out=ix)
    np.clip(iy, 0, _SPAN - 1, out=iy)
    return ((shower * 64 + layer.astype(np.int64)) * _SPAN + ix) * _SPAN + iy, ix, iy


def count_hits(
    x: np.ndarray,
    y: np.ndarray,
    layer: np.ndarray,
    e: np.ndarray,
    counts: np.ndarray,
    cell: float,
    threshold: float,
) -> np.ndarray:
    """``[B]`` cells (pitch ``cell`` mm, centred on 0) above ``threshold`` MeV per shower."""
    shower = np.repeat(np.arange(len(counts)), counts)
    keys, _, _ = _cell_keys(x, y, layer, shower, cell)
    uniq, inv = np.unique(keys, return_inverse=True)
    hit = np.bincount(inv, e, len(uniq)) > threshold
    return np.bincount((uniq // (64 * _SPAN * _SPAN))[hit], minlength=len(counts))
