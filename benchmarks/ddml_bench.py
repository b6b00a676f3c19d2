"""Speed of a model exported for Key4hep DDML (``pointcalo export --format ddml``), the way DDML
runs it: one CPU thread, one particle per call (batch 1), and batched (32, 1,000), against
Geant4's CPU time for the same particles and pointcalo's own sampler in the same run.

    python benchmarks/ddml_bench.py [MODEL] [--particle 22] [--n 200] [--reps 3]

MODEL: a name from ``pointcalo models`` or a one-step checkpoint (default ``ild-photon-cm``).
Particles: energies uniform 10-90 GeV, theta uniform 0-45 degrees, phi uniform 0-360 degrees
(as ``g4_ild_angled.h5``). Geant4: the README of the shared data, the angled program (user CPU
per shower, one thread): 0.056 / 0.257 / 0.451 s at 10 / 50 / 90 GeV, interpolated linearly in
energy for each particle drawn here. Each figure is the best of ``--reps`` passes (the machine
is shared); the ratio to Geant4 is mean Geant4 seconds over mean pointcalo seconds per shower.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

#: Geant4 user CPU seconds per shower (photons, 0-45 degrees), shared data README.
GEANT4 = {"energy_gev": (10.0, 50.0, 90.0), "seconds": (0.056, 0.257, 0.451)}


def best(run, reps: int) -> float:
    run()  # warm-up (TorchScript profiles its first calls)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="ild-photon-cm")
    ap.add_argument("--particle", type=int, default=None)
    ap.add_argument("--n", type=int, default=200, help="particles of the batch-1 pass")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from pointcalo.export import export
    from pointcalo.generation import generate, load_model

    loaded = load_model(args.model)
    rng = np.random.default_rng(0)
    n_big = 1000
    energy = rng.uniform(10.0, 90.0, n_big)
    theta = rng.uniform(0.0, 45.0, n_big)
    phi = rng.uniform(0.0, 360.0, n_big)
    g4 = float(np.mean(np.interp(energy, GEANT4["energy_gev"], GEANT4["seconds"])))
    fixed = {"pdg": float(args.particle)} if args.particle is not None else None
    with tempfile.TemporaryDirectory() as tmp:
        path = export(loaded, Path(tmp) / "ddml.pt", "ddml", fixed=fixed)
        module = torch.jit.load(str(path))

    def t(values, lo, hi):
        return torch.tensor(values[lo:hi], dtype=torch.float32).view(-1, 1)

    def ddml(batch: int, n: int):
        def run():
            with torch.inference_mode():
                for lo in range(0, n, batch):
                    hi = min(lo + batch, n)
                    module(t(energy, lo, hi), t(theta, lo, hi), t(phi, lo, hi))

        return best(run, args.reps) / n

    names = loaded.normalizer.extra_names
    named = {
        "theta": np.radians(theta), "phi": np.radians(phi), "impact_x": np.zeros(n_big),
        "impact_y": np.zeros(n_big), "pdg": np.full(n_big, float(args.particle or 22)),
    }  # fmt: skip
    cond = {k: v for k, v in named.items() if k in names} or None

    def eager():
        generate(loaded.model, loaded.net, loaded.normalizer, energy[:256] * 1e3, loaded.cfg,
                 seed=0, batch_size=32, conditions=None if cond is None else
                 {k: v[:256] for k, v in cond.items()}, limits=loaded.limits)  # fmt: skip

    rows = [
        ("DDML export, batch 1 (DDML's call)", ddml(1, args.n)),
        ("DDML export, batch 32", ddml(32, 256)),
        ("DDML export, batch 1,000", ddml(1000, n_big)),
        ("pointcalo sampler (Python), batch 32", best(eager, args.reps) / 256),
    ]
    base = rows[-1][1]
    print(f"model {args.model}; conditions {', '.join(names) or 'energy only'}; one CPU thread")
    print(f"Geant4 (angled photons, README): {1e3 * g4:.0f} ms per shower for these particles")
    print("| run | ms per shower | showers/s | x Geant4 | x pointcalo sampler |")
    print("|---|---|---|---|---|")
    for name, s in rows:
        print(f"| {name} | {1e3 * s:.2f} | {1 / s:.0f} | {g4 / s:.0f} | {base / s:.2f} |")


if __name__ == "__main__":
    main()
