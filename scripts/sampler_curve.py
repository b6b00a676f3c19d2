"""Fidelity against speed of a diffusion model's samplers, on the validation split.

For each sampler and step count, generate showers at the incident energies of validation
showers, evaluate them against those showers (classifier AUC, worst W1 / floor) and time the
generation on this machine; writes JSON and a PNG, so the default sampler is chosen from a
measured curve, not a guess.

    python scripts/sampler_curve.py CHECKPOINT --val runs/split/val.h5 --n 500 --out DIR
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

DEFAULT = ("heun:6", "heun:13", "heun:18", "heun:30", "euler:30", "ode:1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--val", required=True)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--samplers", nargs="+", default=list(DEFAULT), help="name:steps")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()

    from pointcalo import io
    from pointcalo.generation import generate, load_model
    from pointcalo.io.atomic import write_json
    from pointcalo.metrics.observables import compute
    from pointcalo.metrics.report import evaluate
    from pointcalo.showers import make_showers

    m = load_model(args.checkpoint)
    val = io.read(args.val)[: args.n]
    ref = compute(val)
    energy = np.asarray(val.incident_energy, np.float64)
    points = []
    for spec in args.samplers:
        name, steps = spec.split(":")
        t0 = time.perf_counter()
        c = generate(m.model, m.net, m.normalizer, energy, m.cfg, seed=1, sampler=name,
                     steps=int(steps))  # fmt: skip
        seconds = time.perf_counter() - t0
        gen = make_showers(energy.astype(np.float32), c.points, offsets=c.offsets)
        metrics = evaluate(ref, gen, k=5, seed=0)
        ratios = {
            k: v["generated"][0] / max(v["floor"][0], 1e-12) for k, v in metrics["w1x100"].items()
        }
        point = {
            "sampler": name,
            "steps": int(steps),
            "showers_per_s": len(energy) / seconds,
            "auc": metrics["classifier_auc"]["generated"],
            "worst_w1_over_floor": max(ratios.values()),
            "w1_over_floor": ratios,
        }
        points.append(point)
        print(
            f"{spec}: {point['showers_per_s']:.1f} showers/s, AUC {point['auc'][0]:.3f}, "
            f"worst W1/floor {point['worst_w1_over_floor']:.2f}",
            flush=True,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    write_json({"checkpoint": args.checkpoint, "n": len(energy), "points": points},
               args.out / "sampler_curve.json")  # fmt: skip

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for p in points:
        ax.errorbar(p["showers_per_s"], p["auc"][0], p["auc"][1], marker="o")
        ax.annotate(f"{p['sampler']} {p['steps']}", (p["showers_per_s"], p["auc"][0]), fontsize=8)
    ax.set(xscale="log", xlabel="showers/s (one core)", ylabel="classifier AUC (validation)")
    fig.tight_layout()
    fig.savefig(args.out / "sampler_curve.png", dpi=110)
    print(f"wrote {args.out / 'sampler_curve.json'}")


if __name__ == "__main__":
    main()
