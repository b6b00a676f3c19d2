"""Design study of a two-level point model: coarse blocks of sub-cells, re-expanded with patterns.

A two-level point model would generate coarse points, one per ``B x B`` block of sub-cells of
a layer (their energy sum), and re-expand each into sub-cells with a pattern (which sub-cells
are lit, their energy shares) drawn from the training showers' blocks of the same ring of
distance from the axis, layer group and energy bin. This script gives that design its best
case: the validation showers' own blocks are re-expanded with library patterns, so every
difference from the originals is the re-expansion's. ``--orient`` reflects the patterns so
they face the shower axis as the block they replace does (the library stores them in
"outward" coordinates).

Three steps:

    # best case: the validation showers' own blocks re-expanded with library patterns
    python scripts/block_model.py oracle runs/split/train.h5 runs/split/val.h5 --block 3 \\
        --orient --out runs/blocks/oracle_b3.h5
    # training data of a block-level model: one point per block (block centre, energy sum)
    python scripts/block_model.py coarsen runs/split/train.h5 --block 3 --out runs/blocks/train.h5
    # a block-level model's showers (sampled from it) re-expanded into sub-cells
    python scripts/block_model.py expand runs/split/train.h5 gen_blocks.h5 --block 3 --orient \\
        --out gen.h5
"""

from __future__ import annotations

import argparse

import awkward as ak
import numpy as np

RING_EDGES = np.array([0, 1.5, 3, 6, 12, 24, 48, np.inf])  # mm from the axis
LOG_E_EDGES = np.array([-np.inf, -1.5, -1, -0.5, 0, 0.5, 1, 1.5, np.inf])  # log10 MeV


def _flat(showers: ak.Array):
    pts = showers.points
    counts = ak.to_numpy(ak.num(pts.x, axis=1))
    f = ak.flatten(pts)
    cols = {k: ak.to_numpy(f[k]).astype(np.float64) for k in ("E", "x", "y", "layer")}
    owner = np.repeat(np.arange(len(counts)), counts)
    w = np.bincount(owner, cols["E"], len(counts))
    cx = np.bincount(owner, cols["E"] * cols["x"], len(counts)) / w
    cy = np.bincount(owner, cols["E"] * cols["y"], len(counts)) / w
    return cols, owner, cx, cy


def blocks(showers: ak.Array, pitch: float, b: int, orient: bool):
    """``(key [K, 4] = shower, layer, bx, by; E [K]; pattern [K, b*b] energy shares; bin [K];
    flip [K, 2])`` of the blocks of ``showers``; patterns in outward coordinates when
    ``orient`` (``flip`` says which axes were reflected)."""
    cols, owner, cx, cy = _flat(showers)
    i = np.floor(cols["x"] / pitch).astype(np.int64)
    j = np.floor(cols["y"] / pitch).astype(np.int64)
    bi, bj = np.floor_divide(i, b), np.floor_divide(j, b)
    key = np.stack([owner, cols["layer"].astype(np.int64), bi, bj], 1)
    uk, inv = np.unique(key, axis=0, return_inverse=True)
    inv = inv.ravel()
    xc, yc = (uk[:, 2] * b + b / 2) * pitch, (uk[:, 3] * b + b / 2) * pitch
    flip = np.zeros((len(uk), 2), bool)
    if orient:
        flip = np.stack([xc < cx[uk[:, 0]], yc < cy[uk[:, 0]]], 1)
    si, sj = i - bi * b, j - bj * b
    si = np.where(flip[inv, 0], b - 1 - si, si)
    sj = np.where(flip[inv, 1], b - 1 - sj, sj)
    e = np.bincount(inv, cols["E"], len(uk))
    pattern = np.zeros((len(uk), b * b))
    np.add.at(pattern, (inv, si * b + sj), cols["E"])
    r = np.hypot(xc - cx[uk[:, 0]], yc - cy[uk[:, 0]])
    ring = np.digitize(r, RING_EDGES) - 1
    ebin = np.digitize(np.log10(e), LOG_E_EDGES) - 1
    return uk, e, pattern / e[:, None], ring * 100 + (uk[:, 1] // 10) * 10 + ebin, flip


def expand_blocks(key, e, where, flip, library, b: int, pitch: float, n: int, seed: int):
    """Points ``(counts [n], columns)`` of blocks ``key [K, 4]`` with energies ``e [K]``
    re-expanded with a pattern drawn from ``library = (patterns, bins)`` of the same bin."""
    lib_pat, lib_bin = library
    order = np.argsort(lib_bin, kind="stable")
    starts = np.searchsorted(lib_bin[order], where)
    stops = np.searchsorted(lib_bin[order], where, side="right")
    found = stops > starts
    rng = np.random.default_rng(seed)
    draw = np.minimum(starts + (rng.random(len(e)) * (stops - starts)).astype(int), len(order) - 1)
    new = lib_pat[order[draw]]
    if not found.all():  # an empty library bin: the block's energy in its centre sub-cell(s)
        centre = np.zeros(b * b)
        centre[(b // 2) * b + b // 2] = 1.0
        new[~found] = centre
    rows, slots = np.nonzero(new > 0)
    si, sj = slots // b, slots % b
    si = np.where(flip[rows, 0], b - 1 - si, si)
    sj = np.where(flip[rows, 1], b - 1 - sj, sj)
    owner = key[rows, 0]
    o = np.argsort(owner, kind="stable")
    pts = {
        "E": (e[rows] * new[rows, slots])[o].astype(np.float32),
        "x": (((key[rows, 2] * b + si) + 0.5) * pitch)[o].astype(np.float32),
        "y": (((key[rows, 3] * b + sj) + 0.5) * pitch)[o].astype(np.float32),
        "layer": key[rows, 1][o].astype(np.int32),
    }
    return np.bincount(owner, minlength=n), pts, float(found.mean())


def main() -> None:
    from pointcalo import io
    from pointcalo.showers import make_showers

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=["oracle", "coarsen", "expand"])
    ap.add_argument("files", nargs="+", help="coarsen: SHOWERS; oracle, expand: TRAIN SHOWERS")
    ap.add_argument("--block", type=int, default=3, help="block side in sub-cells")
    ap.add_argument("--pitch", type=float, default=0.848, help="sub-cell pitch (mm)")
    ap.add_argument("--orient", action="store_true", help="patterns face the axis")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    b, pitch = args.block, args.pitch
    showers = io.read(args.files[-1])
    energy = np.asarray(showers.incident_energy, np.float32)
    # blocks of points; of a block file (one point per block, at its centre), the blocks again
    key, e, _, where, flip = blocks(showers, pitch, b, args.orient)
    if args.step == "coarsen":
        o = np.argsort(key[:, 0], kind="stable")
        pts = {
            "E": e[o].astype(np.float32),
            "x": ((key[o, 2] + 0.5) * b * pitch).astype(np.float32),
            "y": ((key[o, 3] + 0.5) * b * pitch).astype(np.float32),
            "layer": key[o, 1].astype(np.int32),
        }
        counts = np.bincount(key[:, 0], minlength=len(showers))
        io.write(make_showers(energy, pts, counts=counts), args.out)
        print(f"{len(showers)} showers: {len(e) / len(showers):.0f} blocks of {b}x{b} per shower")
        return
    _, _, lib_pat, lib_bin, _ = blocks(io.read(args.files[0]), pitch, b, args.orient)
    counts, pts, found = expand_blocks(
        key, e, where, flip, (lib_pat, lib_bin), b, pitch, len(showers), args.seed
    )
    io.write(make_showers(energy, pts, counts=counts), args.out)
    print(
        f"{len(showers)} showers: {counts.sum() / len(showers):.0f} points from "
        f"{len(e) / len(showers):.0f} blocks of {b}x{b} per shower; {100 * (1 - found):.2f} % "
        "of blocks from an empty library bin"
    )


if __name__ == "__main__":
    main()
