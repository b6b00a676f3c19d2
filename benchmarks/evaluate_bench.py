"""Evaluation throughput and memory: observables streamed from disk chunk by chunk
(``pointcalo evaluate``'s path) against reading the whole file first, on the same showers in
the same run.

    python benchmarks/evaluate_bench.py [FILE] [--n 4000] [--chunk 1024]

FILE defaults to the shared Geant4 sample. Prints showers/s and peak traced memory of both,
and their ratios.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "g4_ild_photons.h5"


def measure(fn) -> tuple[float, float]:
    tracemalloc.start()
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default=str(SHARED))
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--chunk", type=int, default=1024)
    args = ap.parse_args()

    import tempfile

    import voxelize as vx
    from pointcalo import io
    from pointcalo.metrics.observables import compute
    from pointcalo.metrics.report import load_observables

    grid = vx.ild()
    with tempfile.TemporaryDirectory() as tmp:
        path = io.write(io.read(args.file, 0, args.n), Path(tmp) / "sample.h5")
        n = args.n
        t_s, m_s = measure(lambda: load_observables(path, grid, 0.1, chunk_size=args.chunk))
        t_w, m_w = measure(lambda: compute(io.read(path), grid=grid, threshold=0.1))
    print(f"{n} showers from {args.file}, ILD grid, 0.1 MeV; chunk {args.chunk} showers")
    print(f"streamed (pointcalo evaluate): {n / t_s:8.0f} showers/s, peak {m_s:7.1f} MB")
    print(f"whole file in memory:          {n / t_w:8.0f} showers/s, peak {m_w:7.1f} MB")
    print(f"ratio streamed / whole: speed x{t_w / t_s:.2f}, peak memory x{m_s / m_w:.2f}")


if __name__ == "__main__":
    main()
