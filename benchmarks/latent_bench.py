"""Sampling speed of the two-stage latent model (grid VQ-VAE + GPT) beside its stage-1 prior
and the shipped one-step point model, at batch 1, 100 and 1,000 on one CPU thread, in one run.

    python benchmarks/latent_bench.py [--gpt runs/grid_gpt/checkpoint.pt]
        [--vqvae runs/grid_vqvae/checkpoint.pt] [--point ild-photon-cm]

Each figure is the best of ``--reps`` passes over ``n`` showers at energies uniform in 10-90
GeV; printed as ms per shower and as a ratio to the point model at the same batch size.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpt", default="runs/grid_gpt/checkpoint.pt")
    ap.add_argument("--vqvae", default="runs/grid_vqvae/checkpoint.pt")
    ap.add_argument("--point", default="ild-photon-cm")
    ap.add_argument("--reps", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from pointcalo.generation import generate, load_model

    models = {
        "GPT + VQ-VAE decoder": load_model(args.gpt),
        "VQ-VAE, independent-code prior": load_model(args.vqvae),
        f"{args.point} (one-step points)": load_model(args.point),
    }
    energy = np.random.default_rng(0).uniform(10e3, 90e3, 1000)
    rows = {}
    for batch, n in ((1, 20), (100, 200), (1000, 1000)):
        for label, m in models.items():

            def run(m=m, batch=batch, n=n):
                generate(m.model, m.net, m.normalizer, energy[:n], m.cfg, seed=0,
                         batch_size=batch, limits=m.limits)  # fmt: skip

            run()
            best = np.inf
            for _ in range(args.reps):
                t0 = time.perf_counter()
                run()
                best = min(best, time.perf_counter() - t0)
            rows[(label, batch)] = 1e3 * best / n
    point = f"{args.point} (one-step points)"
    print("| model | batch 1 (ms/shower) | batch 100 | batch 1,000 | x point model at 1,000 |")
    print("|---|---|---|---|---|")
    for label in models:
        cells = [f"{rows[(label, b)]:.2f}" for b in (1, 100, 1000)]
        ratio = rows[(point, 1000)] / rows[(label, 1000)]
        print(f"| {label} | " + " | ".join(cells) + f" | {ratio:.2f} |")


if __name__ == "__main__":
    main()
