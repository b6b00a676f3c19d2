"""Sampling speed of the two-stage latent models (grid and point VQ-VAE + GPT) beside their
stage-1 priors and the shipped point models, at batch 1, 100 and 10,000 on one CPU thread,
in one run.

    python benchmarks/latent_bench.py \
        --model "GPT cylindrical=runs/gpt_cylindrical/checkpoint.pt" \
        --model "GPT points=runs/gpt_points/checkpoint.pt" \
        --baseline ild-photon-cm [--batches 1,100,10000] [--showers 4,200,10000]

Each figure is the best of ``--reps`` passes over ``showers`` showers at energies uniform in
10-90 GeV (a first pass over four showers warms up), printed as ms per shower, as a ratio to
the baseline at the same batch size (above 1: faster) and to Geant4 (0.42 s per shower, the
shared sample's mean, ``../shared/data/README.md``). A model whose generation at a batch size
would need more than ``--max-gb`` of key-value cache or voxels is run at the largest batch
that fits, and the table says so.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import time

import numpy as np
import torch

GEANT4_S = 0.42


def memory_gb(m, batch: int) -> float:
    """Rough peak memory of one generation batch (GB): a GPT's key-value cache, a grid
    model's float64 shares, a point model's activations."""
    name = m.cfg.model.name
    if name in ("grid_gpt", "point_gpt"):
        g = m.model.gpt
        per = 2 * len(g.blocks) * g.pos.shape[0] * g.pos.shape[1] * 4
        extra = 0
        if name == "grid_gpt":
            extra = 8 * int(np.prod(m.model.stage1.shape))
        return batch * (per + extra) / 1e9
    if name == "grid_vqvae":
        return batch * 8 * int(np.prod(m.model.shape)) / 1e9
    if name == "library":
        return batch * 1e-4
    # point models: ~2 MB per ILD photon shower (the one-step CaloClouds model ran out of
    # 24 GB at batch 10,000)
    return batch * 2e-3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=[], help="LABEL=checkpoint")
    ap.add_argument("--baseline", default="ild-photon-cm")
    ap.add_argument("--batches", default="1,100,10000")
    ap.add_argument("--showers", default="4,200,10000", help="showers timed per batch size")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--max-gb", type=float, default=6.0)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from pointcalo.generation import generate, load_model

    models = {f"{args.baseline} (baseline)": load_model(args.baseline)}
    for item in args.model:
        label, _, path = item.partition("=")
        models[label] = load_model(path)
    batches = [int(b) for b in args.batches.split(",")]
    counts = [int(n) for n in args.showers.split(",")]
    energy = np.random.default_rng(0).uniform(10e3, 90e3, max(counts))
    rows: dict[tuple[str, int], tuple[float, int]] = {}
    for batch, n in zip(batches, counts, strict=True):
        for label, m in models.items():
            used = batch
            while used > 1 and memory_gb(m, used) > args.max_gb:
                used //= 10
            k = min(n, max(used, counts[0]))

            def run(m=m, used=used, k=k):
                generate(m.model, m.net, m.normalizer, energy[:k], m.cfg, seed=0,
                         batch_size=used, limits=m.limits)  # fmt: skip

            run(k=min(k, 4))  # first-call overheads
            best = np.inf
            for _ in range(args.reps):
                t0 = time.perf_counter()
                run()
                best = min(best, time.perf_counter() - t0)
            rows[(label, batch)] = (1e3 * best / k, used)
            print(f"{label} batch {batch} (run at {used}, {k} showers): "
                  f"{1e3 * best / k:.3f} ms/shower", flush=True)  # fmt: skip
    base = f"{args.baseline} (baseline)"
    head = " | ".join(f"batch {b:,}: ms/shower (x baseline, x Geant4)" for b in batches)
    print(f"\n| model | {head} |")
    print("|---|" + "---|" * len(batches))
    for label in models:
        cells = []
        for b in batches:
            ms, used = rows[(label, b)]
            note = "" if used == b else f", run at batch {used:,}"
            cells.append(
                f"{ms:.2f} (x{rows[(base, b)][0] / ms:.2f}, x{1e3 * GEANT4_S / ms:.0f}{note})"
            )
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
