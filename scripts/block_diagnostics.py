"""Diagnostics of generated showers against Geant4 on the points, no grid (docs/fidelity.md,
session 13): which classifier features separate a sample, where its energy sits in radius,
whether its halo blocks touch, how its energy is shared over the layers.

    # single-feature ROC AUC of the per-layer classifier's features (one view)
    python scripts/block_diagnostics.py features runs/split/val.h5 gen.h5 [--alignment centred]
    # energy-weighted share per ring from the shower axis (and a PNG with --plot)
    python scripts/block_diagnostics.py radial runs/split/val.h5 gen1.h5 gen2.h5 --plot out.png
    # blocks of 3 x 3 sub-cells per ring: how many, share with no lit block around them
    python scripts/block_diagnostics.py isolation runs/split/val.h5 gen.h5
    # per-layer energy share against the first file's, E_vis / E_inc and depth
    python scripts/block_diagnostics.py depth runs/split/val.h5 gen.h5
"""

from __future__ import annotations

import argparse
import itertools

import awkward as ak
import numpy as np

#: Ring edges (mm) of the radial profile: the 6 x 6 window reaches 7.6 mm, the 10 x 10 12.7 mm.
RING_EDGES = np.array([0, 1, 2, 4, 7.6, 10, 15, 20, 30, 50, 100, 400])
#: Ring edges (mm) of the isolation table.
HALO_RINGS = ((12, 30), (30, 60), (60, 400))


def _label(path: str) -> str:
    return path.rsplit("/", 1)[-1].removesuffix(".h5")


def _columns(showers: ak.Array) -> tuple[np.ndarray, ...]:
    """``(owner, E, x, y, layer)`` of every point."""
    pts = showers.points
    owner = np.repeat(np.arange(len(showers)), ak.to_numpy(ak.num(pts, axis=1)))
    cols = (ak.to_numpy(ak.flatten(pts[k])) for k in ("E", "x", "y", "layer"))
    e, x, y, layer = cols
    return owner, e.astype(np.float64), x.astype(np.float64), y.astype(np.float64), layer


def features(ref_path: str, gen_path: str, alignment: str, top: int) -> None:
    from sklearn.metrics import roc_auc_score

    import voxelize as vx
    from pointcalo.metrics.alignment import file_lattice
    from pointcalo.metrics.report import load_observables

    grid = vx.load_grid("ild")
    lattice = file_lattice(ref_path, grid)
    obs = [
        load_observables(
            p, grid, 0.1, None, alignment=alignment, lattice=lattice, point_structure=False
        )
        for p in (ref_path, gen_path)
    ]
    (xr, names), (xg, _) = obs[0].feature_matrix("per_layer"), obs[1].feature_matrix("per_layer")
    y = np.r_[np.zeros(len(xr)), np.ones(len(xg))]
    rows = []
    for i, name in enumerate(names):
        a = roc_auc_score(y, np.r_[xr[:, i], xg[:, i]])
        rows.append((max(a, 1 - a), name, xr[:, i].mean(), xg[:, i].mean()))
    print(f"single-feature AUC, {alignment} view ({len(xr)} vs {len(xg)} showers)")
    for a, name, mr, mg in sorted(rows, reverse=True)[:top]:
        print(f"{a:.3f} {name:24s} reference {mr:10.4g} generated {mg:10.4g}")


def radial(paths: list[str], plot: str | None) -> None:
    rows = {}
    for path in paths:
        from pointcalo import io

        _, e, x, y, _ = _columns(io.read(path))
        r = np.hypot(x, y)
        h, _ = np.histogram(r, RING_EDGES, weights=e)
        rows[_label(path)] = (100 * h / h.sum(), float(np.sum(r * e) / e.sum()))
    head = " ".join(f"{a:g}-{b:g}" for a, b in itertools.pairwise(RING_EDGES))
    print(f"energy share (%) per ring (mm): {head} | mean radius (mm)")
    for label, (share, mean) in rows.items():
        print(f"{label:28s} " + " ".join(f"{v:5.1f}" for v in share) + f" | {mean:.2f}")
    if plot:
        import matplotlib.pyplot as plt

        fig, (ax, rx) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, height_ratios=(2, 1))
        centres = np.sqrt(np.maximum(RING_EDGES[:-1], 0.5) * RING_EDGES[1:])
        ref = next(iter(rows.values()))[0]
        for label, (share, mean) in rows.items():
            ax.step(centres, share, where="mid", label=f"{label} (mean {mean:.2f} mm)")
            rx.plot(centres, share / ref, marker="o", ms=3)
        for w, name, h in ((7.6, "6 x 6 window", 0.9), (12.7, "10 x 10 window", 0.75)):
            for a in (ax, rx):
                a.axvline(w, color="grey", ls=":", lw=1)
            ax.text(w * 1.05, ax.get_ylim()[1] * h, name, fontsize=7, color="grey")
        ax.set(xscale="log", ylabel="energy share (%)", title="energy per ring from the axis")
        rx.set(xlabel="distance from the shower axis (mm)", ylabel="/ first", ylim=(0.6, 1.6))
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(plot, dpi=120)
        print(f"wrote {plot}")


def isolation(paths: list[str], n: int, pitch: float, block: int) -> None:
    from pointcalo import io
    from pointcalo.blocks import _cell_keys, find_blocks

    print(f"blocks of {block} x {block} sub-cells per ring; isolated: no lit block among the 8")
    for path in paths:
        b = find_blocks(io.read(path)[:n], pitch, block)
        keys = _cell_keys(b.shower, b.layer, b.bx, b.by)  # one int64 per block
        neighbours = sum(
            np.isin(_cell_keys(b.shower, b.layer, b.bx + di, b.by + dj), keys).astype(np.int64)
            for di in (-1, 0, 1)
            for dj in (-1, 0, 1)
            if di or dj
        )
        r = np.hypot((b.bx + 0.5) * block * pitch, (b.by + 0.5) * block * pitch)
        parts = []
        for lo, hi in HALO_RINGS:
            m = (r >= lo) & (r < hi)
            iso = np.mean(neighbours[m] == 0) if m.any() else float("nan")
            parts.append(f"{lo}-{hi} mm: {m.sum() / n:6.1f} blocks, isolated {iso:.2f}")
        print(f"{_label(path):28s} " + "; ".join(parts))


def depth(paths: list[str]) -> None:
    from pointcalo import io

    rows = {}
    for path in paths:
        s = io.read(path)
        owner, e, _, _, layer = _columns(s)
        per = np.zeros((len(s), int(layer.max()) + 1))
        np.add.at(per, (owner, layer.astype(np.int64)), e)
        frac = per / per.sum(1, keepdims=True)
        z = (frac * np.arange(per.shape[1])).sum(1)
        ratio = per.sum(1) / ak.to_numpy(s.incident_energy)
        rows[_label(path)] = (frac.mean(0), ratio, z)
    ref = next(iter(rows.values()))[0]
    for label, (frac, ratio, z) in rows.items():
        share = frac[: len(ref)] / ref[: len(frac)]
        print(f"{label:28s} E_vis/E_inc {ratio.mean():.5f} (sd {ratio.std():.5f}), depth "
              f"{z.mean():.2f} (sd {z.std():.2f}) layers; share / first, layers 0-9: "
              + " ".join(f"{v:.2f}" for v in share[:10]))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=["features", "radial", "isolation", "depth"])
    ap.add_argument("files", nargs="+", help="the Geant4 reference first, then generated files")
    ap.add_argument("--alignment", default="centred", help="features: the grid view")
    ap.add_argument("--top", type=int, default=15, help="features: how many to print")
    ap.add_argument("--plot", default=None, help="radial: a PNG of the profiles")
    ap.add_argument("--n", type=int, default=400, help="isolation: showers per file")
    ap.add_argument("--pitch", type=float, default=0.848, help="sub-cell pitch (mm)")
    ap.add_argument("--block", type=int, default=3, help="block side in sub-cells")
    args = ap.parse_args()
    if args.step == "features":
        features(args.files[0], args.files[1], args.alignment, args.top)
    elif args.step == "radial":
        radial(args.files, args.plot)
    elif args.step == "isolation":
        isolation(args.files, args.n, args.pitch, args.block)
    else:
        depth(args.files)


if __name__ == "__main__":
    main()
