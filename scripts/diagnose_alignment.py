"""Diagnostic plots of the evaluation protocol: what changes when the readout grid moves, and
what the points show without any grid.

Four panels for Geant4 and each sample: (a) the distance from each point to the nearest point
of its layer, (b) the energy-weighted two-point correlation within a layer, (c) the mean number
of hit cells per layer on the ILD grid centred on the axis and moved by half a cell, (d) the
cell-energy spectrum on both alignments.

    python scripts/diagnose_alignment.py runs/split/val.h5 A.h5 B.h5 --labels a,b --n 400 \\
        --out docs/img/alignment.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reference")
    ap.add_argument("samples", nargs="+")
    ap.add_argument("--labels", default=None)
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--out", type=Path, default=Path("docs/img/alignment.png"))
    args = ap.parse_args()

    import voxelize as vx
    from pointcalo import io
    from pointcalo.metrics.alignment import file_lattice
    from pointcalo.metrics.observables import compute
    from pointcalo.metrics.point_structure import PAIR_CENTRES_LOG10
    from pointcalo.plots import pyplot, save_png

    labels = args.labels.split(",") if args.labels else [Path(p).stem for p in args.samples]
    lattice = file_lattice(args.reference, vx.ild())  # compute's default grid
    files = [("Geant4", args.reference), *zip(labels, args.samples, strict=True)]
    plt = pyplot()
    fig, ax = plt.subplots(2, 3, figsize=(15, 8))
    nn_edges = np.linspace(0, 6, 61)
    for i, (label, path) in enumerate(files):
        showers = io.read(path, 0, args.n)
        style = {"color": "k" if i == 0 else f"C{i - 1}", "lw": 2 if i == 0 else 1.2}
        obs = {
            a: compute(showers, alignment=a, lattice=lattice, point_structure=a == "centred")
            for a in ("centred", "half-cell")
        }
        c = obs["centred"]
        nn = c.pooled["nn_distance"]
        ax[0, 0].hist(nn.values, nn_edges, weights=nn.weights, density=True, histtype="step",
                      label=label, **style)  # fmt: skip
        ax[0, 1].plot(PAIR_CENTRES_LOG10, c.profiles["pair_correlation"].mean(0), "o-", ms=3,
                      label=label, **style)  # fmt: skip
        for j, a in enumerate(("centred", "half-cell")):
            hits = obs[a].profiles["layer_hits"].mean(0)
            ax[1, j].plot(np.arange(len(hits)), hits, label=label, **style)
            cell = obs[a].pooled["cell_energy"]
            ax[0, 2].hist(cell.values, np.geomspace(0.1, 300, 50), weights=cell.weights,
                          histtype="step", ls="-" if a == "centred" else "--",
                          label=f"{label}, {a}", **style)  # fmt: skip
        ratio = obs["half-cell"].scalars["n_hits"].mean() / c.scalars["n_hits"].mean()
        ax[1, 2].bar(i, ratio, color=style["color"])
    ax[0, 0].set(xlabel="distance to the nearest point of the layer [mm]", ylabel="density")
    ax[0, 1].set(xlabel="log10 distance between two points of a layer [mm]",
                 ylabel="share of sum E_i E_j", yscale="log", ylim=(1e-4, 0.3))  # fmt: skip
    ax[0, 2].set(xlabel="cell energy [MeV] (solid: centred, dashed: half-cell)", xscale="log",
                 yscale="log", ylabel="cells (weighted)")  # fmt: skip
    for j, a in enumerate(("centred", "half-cell")):
        ax[1, j].set(xlabel="layer", ylabel=f"mean hit cells, grid {a}")
    ax[1, 2].set_xticks(range(len(files)), [f[0] for f in files], rotation=20)
    ax[1, 2].set(ylabel="hits on half-cell grid / hits on centred grid")
    ax[1, 2].axhline(1, color="0.5", lw=0.8)
    ax[0, 0].legend(fontsize=8)
    ax[0, 2].legend(fontsize=6)
    fig.suptitle(f"{args.n} showers each; ILD 5.088 mm grid, 0.1 MeV threshold")
    fig.tight_layout()
    save_png(fig, args.out, dpi=90)
    print(args.out)


if __name__ == "__main__":
    main()
