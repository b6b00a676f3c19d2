"""How many CPU threads should pointcalo use on a shared machine? Sampling speed of the
shipped one-step model with 1 and 2 threads, on the machine as it is and with a background
load this benchmark starts (two busy processes, as other jobs on a batch or login node), all
in one run; the figure is each setting's wall time as a ratio to one thread under the same load.

    python benchmarks/threads_bench.py [--n 200] [--repeat 3]

The CLI's default (``--threads``, else ``OMP_NUM_THREADS``, else 1) follows from it.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _spin(stop) -> None:
    while not stop.is_set():
        sum(i * i for i in range(10_000))


def _sample(threads: int, n: int, out: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    cmd = [sys.executable, "-m", "pointcalo.cli", "--threads", str(threads), "sample",
           "ild-photon-cm", "--n", str(n), "-o", out, "-q"]  # fmt: skip
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "g.h5")
        for load in ("as it is", "with 2 busy processes"):
            stop, busy = mp.Event(), []
            if load != "as it is":
                busy = [mp.Process(target=_spin, args=(stop,)) for _ in range(2)]
                for p in busy:
                    p.start()
            try:
                times = {
                    t: min(_sample(t, args.n, out) for _ in range(args.repeat)) for t in (1, 2)
                }
            finally:
                stop.set()
                for p in busy:
                    p.join()
            base = times[1]
            for t, s in times.items():
                print(f"machine {load:22s} threads {t}: {args.n / s:6.1f} showers/s "
                      f"(wall {s:5.1f} s, x{s / base:.2f} the time of 1 thread)")  # fmt: skip


if __name__ == "__main__":
    main()
