"""Generation speed of a trained model on one CPU core, against Geant4 and the simulator.

Usage: python benchmarks/sampling_bench.py CHECKPOINT [--n 1000] [--batch-size 256]

Prints showers per second for 10-90 GeV photons (each with its own random stream, points
decoded to physical units), the ratio to the Geant4 CPU time per shower of the shared sample
(0.42 s on average for 10-90 GeV, ../shared/data/README.md) and, measured in the same run, the
ratio to the built-in parametrised simulator.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import time

import numpy as np
import torch

from pointcalo.models.generate import generate_clouds, load_generator, sample_conditions
from pointcalo.simulate import ShowerSimulator

GEANT4_S_PER_SHOWER = 0.42  # uniform 10-90 GeV, one thread


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(1)
    generator, count, normalizer, cfg = load_generator(args.checkpoint)
    cond = sample_conditions(args.n, 10e3, 90e3, seed=0)
    generate_clouds(generator, count, normalizer, cond[:16], cfg.model, seed=1)  # warm-up
    t0 = time.perf_counter()
    clouds = generate_clouds(
        generator, count, normalizer, cond, cfg.model, seed=0, batch_size=args.batch_size
    )
    t_model = time.perf_counter() - t0
    t0 = time.perf_counter()
    ShowerSimulator().simulate(args.n, (10e3, 90e3), seed=0)
    t_sim = time.perf_counter() - t0
    rate = args.n / t_model
    points = float(np.diff(clouds.offsets).mean())
    print(
        f"{args.checkpoint}: {rate:.0f} showers/s on one core ({1e3 / rate:.2f} ms each, "
        f"{points:.0f} points on average), batch {args.batch_size}"
    )
    print(f"  vs Geant4 ({GEANT4_S_PER_SHOWER} s each): x{GEANT4_S_PER_SHOWER * rate:,.0f}")
    print(
        f"  vs pointcalo simulate in the same run ({args.n / t_sim:.0f} showers/s): "
        f"x{t_sim / t_model:.2f}"
    )


if __name__ == "__main__":
    main()
