"""Speed of an exported one-step model on one CPU core: pointcalo (eager), TorchScript and
ONNX Runtime (networks) with the numpy glue, as ratios measured in the same run, and against
Geant4's CPU time per shower.

Usage:
  python benchmarks/export_bench.py [ild-photon-cm] [--n 256] [--batch-size 32]

All three make the same showers from the same random numbers (tests/test_export.py); the
inputs are drawn once, outside the timed region, for the exported runs.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from pointcalo.export import export
from pointcalo.generation import generate, load_model, sample_conditions
from pointcalo.models.consistency.export import stream_inputs

GEANT4_S_PER_SHOWER = 0.42  # uniform 10-90 GeV, one thread (../shared/data/README.md)
N_MAX = 6000


def timed(run, batches) -> float:
    run(batches[0])  # warm-up
    t0 = time.perf_counter()
    for b in batches:
        run(b)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="ild-photon-cm")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    torch.set_num_threads(1)
    loaded = load_model(args.model)
    energies = sample_conditions(args.n, 10e3, 90e3, seed=0)
    starts = range(0, args.n, args.batch_size)
    slices = [slice(s, min(s + args.batch_size, args.n)) for s in starts]
    inputs = [
        stream_inputs(loaded, energies[s], N_MAX, seed=0, first_index=s.start) for s in slices
    ]
    rates = {}

    def eager(s):
        generate(loaded.model, loaded.net, loaded.normalizer, energies[s], loaded.cfg,
                 seed=0, first_index=s.start, batch_size=args.batch_size)  # fmt: skip

    rates["pointcalo (eager, draws its noise)"] = args.n / timed(eager, slices)
    with tempfile.TemporaryDirectory() as tmp:
        ts = torch.jit.load(str(export(loaded, Path(tmp) / "m.pt", "torchscript")))
        keys = ("energy", "base", "noise", "u")
        feeds = [[torch.as_tensor(i[k]) for k in keys] for i in inputs]
        with torch.no_grad():
            rates["TorchScript"] = args.n / timed(lambda f: ts(*f), feeds)
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            print("onnxruntime is not installed (pip install pointcalo[export]): ONNX skipped")
        else:
            folder = export(loaded, Path(tmp) / "onnx", "onnx")
            sys.path.insert(0, str(folder))
            from glue import OnnxSampler

            sampler = OnnxSampler(folder, threads=1)
            arrays = [[i[k] for k in keys] for i in inputs]
            rates["ONNX Runtime + numpy glue"] = args.n / timed(lambda a: sampler(*a), arrays)
    base = next(iter(rates.values()))
    print(f"{args.model}, {args.n} showers of 10-90 GeV, batch {args.batch_size}, one core:")
    for name, r in rates.items():
        print(
            f"  {name:36s} {r:7.1f} showers/s  x{r / base:.2f} vs eager  "
            f"x{GEANT4_S_PER_SHOWER * r:,.0f} vs Geant4 ({GEANT4_S_PER_SHOWER} s/shower)"
        )


if __name__ == "__main__":
    main()
