"""Study: the shower core of each layer drawn whole from Geant4's training cores.

Blocks placed independently collide in the core, where Geant4 lights every block (docs/
fidelity.md, session 11). Here the W x W blocks around the block corner nearest the shower's
energy-weighted centre form one *window* per layer: the generated blocks inside it only give
its energy, which a Geant4 training window of the same layer and energy bin shares out over
its sub-cells (mirrored so that the shower centre sits on the same side of the corner); blocks
outside are re-expanded as before (pointcalo.blocks.PatternLibrary).

    python scripts/core_window.py oracle TRAIN SHOWERS --out OUT    (Geant4's own blocks)
    python scripts/core_window.py expand TRAIN BLOCKS --out OUT     (a model's raw blocks)
"""

from __future__ import annotations

import argparse

import numpy as np

from pointcalo import io
from pointcalo.blocks import LOG_E_EDGES, PatternLibrary, coarsen
from pointcalo.showers import flatten, make_showers


def _windows(offsets, pts, pitch, block, width):
    """Per point: shower, whether it lies in its shower's core window, its window sub-cell
    (mirrored); per shower the mirror flags."""
    counts = np.diff(offsets)
    owner = np.repeat(np.arange(len(counts)), counts)
    e = pts["E"].astype(np.float64)
    w = np.maximum(np.bincount(owner, e, len(counts)), 1e-300)
    cx = np.bincount(owner, e * pts["x"], len(counts)) / w
    cy = np.bincount(owner, e * pts["y"], len(counts)) / w
    bp = pitch * block
    gx, gy = np.round(cx / bp), np.round(cy / bp)  # nearest block corner (in blocks)
    half = width * block // 2  # sub-cells from the corner to the window's edge
    i = np.floor(pts["x"] / pitch).astype(np.int64) - (gx[owner] * block).astype(np.int64)
    j = np.floor(pts["y"] / pitch).astype(np.int64) - (gy[owner] * block).astype(np.int64)
    fx, fy = cx < gx * bp, cy < gy * bp
    i = np.where(fx[owner], -1 - i, i) + half  # 0 .. 2 half - 1 inside
    j = np.where(fy[owner], -1 - j, j) + half
    inside = (i >= 0) & (i < 2 * half) & (j >= 0) & (j < 2 * half)
    return owner, inside, i, j, gx, gy, fx, fy, half


def core_library(showers, pitch, block, width):
    """Geant4 windows: ``bins [M]`` (layer * 100 + energy bin), ``patterns [M, S*S]``."""
    flat = flatten(showers)
    pts = {k: np.asarray(v) for k, v in flat.points.items()}
    owner, inside, i, j, *_, half = _windows(flat.offsets, pts, pitch, block, width)
    side = 2 * half
    key = owner[inside] * 100 + pts["layer"][inside].astype(np.int64)
    uk, inv = np.unique(key, return_inverse=True)
    e = pts["E"][inside].astype(np.float64)
    energy = np.bincount(inv, e, len(uk))
    pat = np.zeros((len(uk), side * side), np.float32)
    np.add.at(pat, (inv, i[inside] * side + j[inside]), e)
    pat /= energy[:, None]
    bins = (uk % 100) * 100 + np.digitize(np.log10(energy), LOG_E_EDGES)
    order = np.argsort(bins, kind="stable")
    return bins[order], pat[order], side


def expand_with_core(blocks, train, pitch, block, width, seed, cap=0):
    """Sub-cell showers from block showers: windows from Geant4 (at most ``cap`` per bin when
    ``cap > 0``), the rest by patterns."""
    rng = np.random.default_rng(seed)
    cbins, cpat, side = core_library(train, pitch, block, width)
    if cap > 0:
        keep = np.concatenate([
            idx if len(idx) <= cap else np.sort(rng.choice(idx, cap, replace=False))
            for idx in (np.flatnonzero(cbins == b) for b in np.unique(cbins))
        ])  # fmt: skip
        cbins, cpat = cbins[keep], cpat[keep]
        print(f"core library: {len(cbins)} windows in {len(np.unique(cbins))} bins")
    library = PatternLibrary.from_showers(train, pitch, block)
    flat = flatten(blocks)
    pts = {k: np.asarray(v) for k, v in flat.points.items()}
    ok = np.isfinite(pts["E"]) & (pts["E"] > 0)
    owner, inside, _, _, gx, gy, fx, fy, half = _windows(flat.offsets, pts, pitch, block, width)
    n = len(blocks)
    # outside the window: the block patterns as before
    out_off = np.concatenate([[0], np.cumsum(np.bincount(owner[ok & ~inside], minlength=n))])
    rest = {k: v[ok & ~inside] for k, v in pts.items()}
    r_off, r_pts = library.expand_flat(out_off, rest, lambda k: rng.random(k.sum()))
    # inside: one window per shower and layer, its energy shared by a Geant4 window
    sel = ok & inside
    key = owner[sel] * 100 + pts["layer"][sel].astype(np.int64)
    uk, inv = np.unique(key, return_inverse=True)
    energy = np.bincount(inv, pts["E"][sel].astype(np.float64), len(uk))
    bins = (uk % 100) * 100 + np.digitize(np.log10(energy), LOG_E_EDGES)
    start, stop = np.searchsorted(cbins, bins), np.searchsorted(cbins, bins, side="right")
    near = stop == start  # no Geant4 window of this bin: the nearest bin of the layer
    for k in np.flatnonzero(near):
        same = np.flatnonzero(cbins // 100 == bins[k] // 100)
        b = cbins[same[np.argmin(np.abs(cbins[same] - bins[k]))]] if len(same) else cbins[0]
        start[k], stop[k] = np.searchsorted(cbins, b), np.searchsorted(cbins, b, side="right")
    pick = start + (rng.random(len(uk)) * (stop - start)).astype(np.int64)
    pat = cpat[pick]
    rows, slots = np.nonzero(pat > 0)
    sh, lay = uk[rows] // 100, uk[rows] % 100
    li, lj = slots // side - half, slots % side - half
    ii = np.where(fx[sh], -1 - li, li) + (gx[sh] * block).astype(np.int64)
    jj = np.where(fy[sh], -1 - lj, lj) + (gy[sh] * block).astype(np.int64)
    c_pts = {
        "E": (energy[rows] * pat[rows, slots]).astype(np.float32),
        "x": ((ii + 0.5) * pitch).astype(np.float32),
        "y": ((jj + 0.5) * pitch).astype(np.float32),
        "layer": lay.astype(np.int32),
    }
    # join per shower
    r_owner = np.repeat(np.arange(n), np.diff(r_off))
    owners = np.concatenate([r_owner, sh])
    order = np.argsort(owners, kind="stable")
    joined = {k: np.concatenate([r_pts[k].astype(c_pts[k].dtype), c_pts[k]])[order] for k in c_pts}
    counts = np.bincount(owners, minlength=n)
    e_inc = np.asarray(blocks.incident_energy, np.float32)
    return make_showers(e_inc, joined, counts=counts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=["oracle", "expand"])
    ap.add_argument("train")
    ap.add_argument("showers")
    ap.add_argument("--block", type=int, default=3)
    ap.add_argument("--width", type=int, default=4, help="window side in blocks (even)")
    ap.add_argument("--pitch", type=float, default=0.848)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cap", type=int, default=0, help="windows per bin kept (0: all)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    train, showers = io.read(args.train), io.read(args.showers)
    if args.step == "oracle":
        showers = coarsen(showers, args.pitch, args.block)
    out = expand_with_core(showers, train, args.pitch, args.block, args.width, args.seed, args.cap)
    io.write(out, args.out)
    print(f"{len(out)} showers -> {args.out}")


if __name__ == "__main__":
    main()
