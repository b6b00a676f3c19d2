"""Generation speed of trained models on one CPU core (or a GPU), against Geant4 and the
built-in simulator, all measured in the same run.

Usage:
  python benchmarks/sampling_bench.py CHECKPOINT [--n 1000] [--batch-size 32]
  python benchmarks/sampling_bench.py STUDENT --teacher TEACHER [--teacher-sampler heun
      --teacher-steps 13]                    # consistency student vs its diffusion teacher
  python benchmarks/sampling_bench.py CHECKPOINT --device cuda --batch-size 1000
  python benchmarks/sampling_bench.py ild-photon-bcm --bf16   # also in bfloat16
  python benchmarks/sampling_bench.py ild-photon-cm --stages  # time per stage, post-processing
                                                              # in numpy vs torch

Prints showers per second for 10-90 GeV photons (each with its own random stream, decoded to
physical units and calibrated), the student/teacher ratio, the ratio to the Geant4 CPU time per
shower of the shared sample (0.42 s on average for 10-90 GeV, ../shared/data/README.md) and to
the built-in parametrised simulator.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import time

import numpy as np
import torch

from pointcalo.generation import generate, in_bfloat16, load_model, sample_conditions
from pointcalo.simulate import ShowerSimulator

GEANT4_S_PER_SHOWER = 0.42  # uniform 10-90 GeV, one thread


def rate(
    path: str,
    n: int,
    batch: int,
    device: torch.device,
    sampler=None,
    steps=None,
    bf16: bool = False,
    **options,
):
    """``(showers/s, mean points per shower)`` of one model (``bf16``: its network in
    bfloat16, as ``pointcalo sample --bf16``)."""
    loaded = load_model(path, device)
    cond = sample_conditions(n, 10e3, 90e3, seed=0)
    kw = {"device": device, "batch_size": batch, "sampler": sampler, "steps": steps, **options}
    net = in_bfloat16(loaded.net, device) if bf16 else loaded.net
    generate(loaded.model, net, loaded.normalizer, cond[:8], loaded.cfg, seed=1, **kw)
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    clouds = generate(loaded.model, net, loaded.normalizer, cond, loaded.cfg, seed=0, **kw)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0), float(np.diff(clouds.offsets).mean())


def stages(path: str, n: int, batch: int, device: torch.device) -> None:
    """Time per stage of a CaloClouds-family model with the numpy post-processing (before)
    and the torch one on the model's device (after)."""
    for post in ("numpy", "torch"):
        times: dict[str, float] = {}
        r, _ = rate(path, n, batch, device, postprocess=post, stage_times=times)
        total = sum(times.values())
        share = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in times.items())
        print(
            f"  post-processing in {post}: {r:.1f} showers/s; post {1e3 * times['post'] / n:.2f}"
            f" ms/shower = {100 * times['post'] / total:.0f}% of the time ({share})"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--teacher", default=None)
    ap.add_argument("--teacher-sampler", default="heun")
    ap.add_argument("--teacher-steps", type=int, default=13)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--bf16", action="store_true", help="also the model with its network in bfloat16"
    )
    ap.add_argument(
        "--stages", action="store_true", help="time per stage, numpy vs torch post-processing"
    )
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(1)
    where = "one core" if device.type == "cpu" else str(torch.cuda.get_device_name(device))
    r, pts = rate(args.checkpoint, args.n, args.batch_size, device)
    print(
        f"{args.checkpoint}: {r:.1f} showers/s on {where} ({1e3 / r:.1f} ms each, "
        f"{pts:.0f} points on average, batch {args.batch_size})"
    )
    print(f"  vs Geant4 ({GEANT4_S_PER_SHOWER} s each): x{GEANT4_S_PER_SHOWER * r:,.0f}")
    if args.bf16:
        rb, _ = rate(args.checkpoint, args.n, args.batch_size, device, bf16=True)
        print(
            f"  network in bfloat16 (pointcalo sample --bf16): {rb:.1f} showers/s, "
            f"x{rb / r:.2f} float32 -> vs Geant4 x{GEANT4_S_PER_SHOWER * rb:,.0f}"
        )
    if args.stages:
        stages(args.checkpoint, args.n, args.batch_size, device)
    if args.teacher:
        rt, _ = rate(
            args.teacher, args.n, args.batch_size, device, args.teacher_sampler, args.teacher_steps
        )
        print(
            f"teacher {args.teacher} ({args.teacher_sampler}, {args.teacher_steps} steps): "
            f"{rt:.1f} showers/s -> student / teacher = x{r / rt:.1f}; teacher vs Geant4 "
            f"x{GEANT4_S_PER_SHOWER * rt:,.0f}"
        )
    t0 = time.perf_counter()
    ShowerSimulator().simulate(args.n, (10e3, 90e3), seed=0)
    r_sim = args.n / (time.perf_counter() - t0)
    print(
        f"pointcalo simulate in the same run: {r_sim:.0f} showers/s -> model / simulator = "
        f"x{r / r_sim:.2f}"
    )


if __name__ == "__main__":
    main()
