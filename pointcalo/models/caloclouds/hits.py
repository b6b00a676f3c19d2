"""Hit-count calibration: give generated showers the clustering of real ones.

In Geant4 the sub-cell deposits of a shower cluster along the particles' tracks, so they share
readout cells; points drawn independently of each other (as a per-point denoiser with global
context does) scatter over more cells with less energy each. Rotating every Geant4 point about
the shower axis at random, which keeps every per-point distribution, raises the number of hit
5 mm cells by 22 % and softens the cells as much as the learned models do
(``scripts/diagnose_clustering.py``, ``docs/fidelity.md``).

The shower flow therefore also learns each shower's number of hit cells (cells of pitch
``cell`` mm above ``threshold`` MeV); after generation, while a shower has more hits than the
flow asked for, small hit cells (at most ``MAX_MOVED`` points) are moved as a whole across the
cell edge into the nearest neighbouring hit cell of the same layer (the smallest move that
merges them with a cluster: their points land just inside its edge, next to where they were),
each move removing one hit. Vectorised over the batch: a few rounds of sorting cell keys, only
over showers still above their target, no loop over showers.
"""

from __future__ import annotations

import numpy as np

#: Moves per round, as a fraction of a shower's excess hits: every move merges a hit cell into
#: another hit cell, so it removes exactly one hit (two cells swapped in one round remove none
#: and are retried in the next).
STEP = 1.0
#: Largest cells (in points) that are merged as a whole into a neighbouring cluster.
MAX_MOVED = 3
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


def calibrate_hits(
    pts: dict[str, np.ndarray],
    counts: np.ndarray,
    target: np.ndarray,
    cell: float,
    threshold: float,
    u: np.ndarray,
    rounds: int = 12,
    max_points: int = MAX_MOVED,
) -> None:
    """Merge small hit cells (at most ``max_points`` points) of ``pts`` (``E, x, y, layer``)
    into neighbouring hit cells until each shower has at most ``target [B]`` hit cells (or no
    small cell has a hit neighbour); in place.

    ``u [P]``: uniform random numbers, one per point from its shower's own stream, which decide
    which cells move (so a shower does not depend on the batch it is in)."""
    B = len(counts)
    shower_all = np.repeat(np.arange(B), counts)
    x_all, y_all = pts["x"].astype(np.float64), pts["y"].astype(np.float64)
    offsets = np.array([[dx, dy] for dx in (-1, 0, 1) for dy in (-1, 0, 1) if dx or dy])
    golden = (np.sqrt(5) - 1) / 2
    per_shower = 64 * _SPAN * _SPAN
    sel = np.arange(len(shower_all))  # the points of showers still above their target
    for r in range(rounds):
        shower, layer = shower_all[sel], pts["layer"][sel]
        x, y, e = x_all[sel], y_all[sel], pts["E"][sel].astype(np.float64)
        keys, ix, iy = _cell_keys(x, y, layer, shower, cell)
        uniq, first, inv, n_in = np.unique(
            keys, return_index=True, return_inverse=True, return_counts=True
        )
        e_cell = np.bincount(inv, e, len(uniq))
        hit = e_cell > threshold
        cell_shower = uniq // per_shower
        hits = np.bincount(cell_shower[hit], minlength=B)
        quota = np.ceil(STEP * np.maximum(hits - target, 0)).astype(np.int64)
        small = np.nonzero(hit & (n_in <= max_points) & (quota[cell_shower] > 0))[0]
        if len(small) == 0:
            break
        # the hit neighbour of each small cell reached with the smallest move of its
        # energy-weighted centre (same shower and layer)
        w = np.maximum(e_cell[small], 1e-300)
        cx = np.bincount(inv, e * x, len(uniq))[small] / w
        cy = np.bincount(inv, e * y, len(uniq))[small] / w
        cix, ciy = ix[first[small]], iy[first[small]]
        nkeys = uniq[small, None] + offsets[:, 0] * _SPAN + offsets[:, 1]
        pos = np.clip(np.searchsorted(uniq, nkeys), 0, len(uniq) - 1)
        found = (uniq[pos] == nkeys) & hit[pos]  # into a hit cell: one hit fewer per move
        move = np.zeros(nkeys.shape)
        for c, index, d in ((cx, cix, offsets[:, 0]), (cy, ciy, offsets[:, 1])):
            centre = (index[:, None] + d - _SPAN // 2) * cell
            cc = c[:, None]
            move += (np.clip(cc, centre - 0.45 * cell, centre + 0.45 * cell) - cc) ** 2
        move = np.where(found, move, np.inf)
        best = np.argmin(move, 1)
        ok = np.isfinite(move[np.arange(len(small)), best])
        small, best = small[ok], best[ok]
        # a random choice of up to quota[shower] of them per shower
        rand = (u[sel[first[small]]] + r * golden) % 1.0  # its first point's number
        order = np.lexsort((rand, cell_shower[small]))
        small, best = small[order], best[order]
        owner = cell_shower[small]
        rank = np.arange(len(small)) - np.searchsorted(owner, owner, side="left")
        take = rank < quota[owner]
        small, best = small[take], best[take]
        if len(small) == 0:
            break
        # every point of a chosen cell into the neighbour, just inside its edge
        chosen = np.full(len(uniq), -1, np.int64)
        chosen[small] = best
        moving = np.nonzero(chosen[inv] >= 0)[0]
        d = offsets[chosen[inv[moving]]]
        for coord, index, k in ((x_all, ix, 0), (y_all, iy, 1)):
            centre = (index[moving] + d[:, k] - _SPAN // 2) * cell
            moved = sel[moving]
            coord[moved] = np.clip(coord[moved], centre - 0.45 * cell, centre + 0.45 * cell)
        # showers that took all their moves may be done; the rest go on
        busy = np.zeros(B, bool)
        busy[owner] = True
        sel = sel[busy[shower]]
    pts["x"][:] = x_all.astype(np.float32)
    pts["y"][:] = y_all.astype(np.float32)
