"""Sample millions of showers on a GPU, streamed to file in chunks (bounded memory).

Usage:
  python scripts/sample_gpu.py CHECKPOINT -o gen.h5 --n 1000000 [--energy 10:90]
      [--batch-size 1000] [--chunk 20000] [--bf16] [--compile] [--sampler consistency]

Every shower has its own random stream from ``(seed, index)``, so the output does not depend on
the batch or chunk size. ``--bf16`` runs the network under ``torch.autocast`` (bfloat16);
``--compile`` wraps it with ``torch.compile``. Prints showers per second at the end.
"""

from __future__ import annotations

import argparse
import time

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from pointcalo import io
from pointcalo.cli import parse_energy
from pointcalo.models.generate import generate_to_file, load_model


class _Autocast(torch.nn.Module):
    """Run a module under bf16 autocast, returning float32."""

    def __init__(self, net: torch.nn.Module, device: torch.device) -> None:
        super().__init__()
        self.net, self.device = net, device

    def forward(self, *args):
        with torch.autocast(self.device.type, dtype=torch.bfloat16):
            return self.net(*args).float()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--energy", default="10:90", help="GeV: '50' or 'low:high'")
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--chunk", type=int, default=20_000, help="showers per written chunk")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sampler", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--compile", action="store_true")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    loaded = load_model(args.checkpoint, device)
    net = loaded.net
    if args.bf16:
        net = _Autocast(net, device)
    if args.compile:
        net = torch.compile(net)
    energy = parse_energy(args.energy)
    lo, hi = (energy, energy) if isinstance(energy, float) else energy
    t0 = time.perf_counter()
    columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns) as bar, io.open_writer(args.output) as writer, torch.no_grad():
        task = bar.add_task("sampling", total=args.n)
        generate_to_file(
            loaded,
            writer,
            args.n,
            lo,
            hi,
            seed=args.seed,
            device=device,
            batch_size=args.batch_size,
            chunk=args.chunk,
            sampler=args.sampler,
            steps=args.steps,
            net=net,
            progress=lambda done: bar.update(task, completed=done),
        )
    dt = time.perf_counter() - t0
    print(
        f"{args.n} showers in {dt:.1f} s: {args.n / dt:.0f} showers/s on {device} "
        f"(batch {args.batch_size}, bf16={args.bf16}, compile={args.compile})"
    )


if __name__ == "__main__":
    main()
