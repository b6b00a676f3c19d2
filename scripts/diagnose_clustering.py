"""Diagnostic: how much of the hit count comes from the clustering of Geant4's points?

Every point of every shower is rotated about the shower axis (x = y = 0) by its own random
angle. Radii, energies, layers and so the radial profile, the energy spectra and (nearly) the
widths stay as they are; only the angular correlations between points, such as track-like
clusters of sub-cells, are destroyed. The change in the number of hit cells (ILD grid, 0.1 MeV)
and in the cell-energy spectrum is then what an exact per-point marginal model without
point-to-point correlations would get wrong.

    python scripts/diagnose_clustering.py runs/split/val.h5 --n 500 --out docs/img
"""

from __future__ import annotations

import argparse
from pathlib import Path

import awkward as ak
import numpy as np


def rotate_points(showers: ak.Array, seed: int = 0) -> ak.Array:
    """The showers with each point rotated about the axis by a uniform random angle."""
    from pointcalo.showers import flatten, make_showers

    flat = flatten(showers)
    rng = np.random.default_rng(seed)
    x, y = flat.points["x"].astype(np.float64), flat.points["y"].astype(np.float64)
    phi = rng.uniform(0, 2 * np.pi, len(x))
    c, s = np.cos(phi), np.sin(phi)
    pts = dict(flat.points)
    pts["x"], pts["y"] = (c * x - s * y).astype(np.float32), (s * x + c * y).astype(np.float32)
    return make_showers(flat.fields["incident_energy"], pts, offsets=flat.offsets)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--out", type=Path, default=Path("docs/img"))
    args = ap.parse_args()

    from pointcalo import io
    from pointcalo.metrics.observables import compute

    showers = io.read(args.file)[: args.n]
    real, rotated = compute(showers), compute(rotate_points(showers))
    for name in ("n_hits", "width", "e_vis"):
        a, b = real.scalars[name], rotated.scalars[name]
        print(
            f"{name}: Geant4 {a.mean():.4g}, points rotated at random {b.mean():.4g} "
            f"({100 * (b.mean() / a.mean() - 1):+.1f} %)"
        )
    ca, cb = real.pooled["cell_energy"].values, rotated.pooled["cell_energy"].values
    print(f"median cell energy: Geant4 {np.median(ca):.3f} MeV, rotated {np.median(cb):.3f} MeV")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    edges = np.linspace(0, max(real.scalars["n_hits"].max(), rotated.scalars["n_hits"].max()), 40)
    a1.hist(real.scalars["n_hits"], edges, histtype="step", color="k", label="Geant4")
    a1.hist(
        rotated.scalars["n_hits"],
        edges,
        histtype="step",
        color="C1",
        label="points rotated at random (no clustering)",
    )
    a1.set(xlabel="hit cells (ILD 5 mm, > 0.1 MeV)", ylabel="showers")
    a1.legend(fontsize=8)
    bins = np.logspace(-1, 3, 50)
    a2.hist(ca, bins, histtype="step", color="k", density=True, label="Geant4")
    a2.hist(cb, bins, histtype="step", color="C1", density=True, label="rotated")
    a2.set(xscale="log", yscale="log", xlabel="cell energy [MeV]", ylabel="density")
    a2.legend(fontsize=8)
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "clustering.png", dpi=110)
    print(f"wrote {args.out / 'clustering.png'}")


if __name__ == "__main__":
    main()
