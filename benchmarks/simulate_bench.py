"""Speed of the built-in parametrised simulator on one core, against Geant4.

Usage: python benchmarks/simulate_bench.py [--n 2000] [--energy 50]

Baseline: the Geant4 CPU time per shower of the shared sample's simulation on this kind of
machine (../shared/data/README.md): 0.11 s at 10 GeV, 0.42 s at 50 GeV, 0.62 s at 90 GeV.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import time

import numpy as np

from pointcalo.simulate import ShowerSimulator

GEANT4_S_PER_SHOWER = {10: 0.11, 30: 0.31, 50: 0.42, 70: 0.56, 90: 0.62}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sim = ShowerSimulator()
    sim.simulate(64, 50e3, seed=0)  # warm-up (deposit moments, imports)
    print(f"one core, {args.n} photon showers per energy, best of {args.repeat}")
    for gev, g4 in GEANT4_S_PER_SHOWER.items():
        best = np.inf
        for r in range(args.repeat):
            t0 = time.perf_counter()
            showers = sim.simulate(args.n, gev * 1e3, seed=r)
            best = min(best, time.perf_counter() - t0)
        rate = args.n / best
        n_pts = float(np.mean(np.diff(showers.layout.content("points").offsets)))
        print(
            f"{gev:3d} GeV: {rate:7.0f} showers/s ({1e3 / rate:5.2f} ms each, {n_pts:5.0f} points)"
            f" | Geant4 {g4:.2f} s each | speed-up x{g4 * rate:,.0f}"
        )


if __name__ == "__main__":
    main()
