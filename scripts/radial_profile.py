"""Mean energy per radial bin (and per shower, hits above 0.1 MeV) of showers on a cylindrical
grid: a quick look at where a model puts its energy against the reference.

    python scripts/radial_profile.py runs/split/val.h5 RUN/checkpoint.pt gen.h5 ... \\
        [--grid ild-cylindrical] [--n 300]

The first file is the reference; every other argument is a shower file or a checkpoint (then
showers are generated at the reference's incident energies, seed 1).
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    import voxelize as vx
    from pointcalo import io
    from pointcalo.generation import generate, load_model
    from pointcalo.showers import make_showers

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reference")
    ap.add_argument("samples", nargs="+", help="shower files or checkpoints")
    ap.add_argument("--grid", default="ild-cylindrical")
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args()
    grid = vx.load_grid(args.grid)
    ref = io.read(args.reference)[: args.n]
    energy = np.asarray(ref.incident_energy, np.float64)
    n_alpha, n_r = grid.layer_shape(0)
    rows = [("reference", ref)]
    for spec in args.samples:
        if spec.endswith(".pt"):
            m = load_model(spec)
            c = generate(m.model, m.net, m.normalizer, energy, m.cfg, seed=1)
            rows.append(
                (spec, make_showers(energy.astype(np.float32), c.points, offsets=c.offsets))
            )
        else:
            rows.append((spec, io.read(spec)[: args.n]))
    print(f"mean energy per radial bin on {grid.name} (MeV), total, hits > 0.1 MeV")
    for label, showers in rows:
        v = vx.project(showers, grid).voxels.reshape(-1, grid.n_layers, n_alpha, n_r)
        radial = v.sum((1, 2)).mean(0)
        hits = (v > 0.1).sum((1, 2, 3)).mean()
        cells = " ".join(f"{x:7.1f}" for x in radial)
        print(f"{label[-40:]:>40s} {cells} | {v.sum((1, 2, 3)).mean():7.1f} | {hits:6.1f}")


if __name__ == "__main__":
    main()
