"""Peak memory of ``pointcalo evaluate`` against the size of the reference: it must not grow
with the number of reference showers (issue 25: it kept about 50 kB per reference shower).

    python benchmarks/evaluate_memory_bench.py [--sizes 3250,32500,100000,325000] [--points 256]

Reference files are Geant4 photon showers of the shared sample (the package's example
showers when it is absent) repeated up to each size, each shower cut to its ``--points`` most
energetic points so that a 325,000-shower file stays near a gigabyte (what is kept per shower
does not depend on its points: pooled cell and point energies are capped per file). Each run
is a fresh ``pointcalo evaluate`` process against the same 3,250 generated showers, default
options (``--max-showers 50000``); its peak resident memory comes from ``wait4``. Printed as
a ratio to the smallest reference, measured in the same run, with the uncapped evaluation
(``--max-showers 0``) of the second-largest size beside it for contrast.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "g4_ild_photons.h5"


def strongest(showers, points: int):
    """Each shower's ``points`` most energetic points."""
    import awkward as ak

    order = ak.argsort(showers.points.E, axis=1, ascending=False)[:, :points]
    return ak.with_field(showers, showers.points[order], "points")


def tiled(source, n: int, path: Path) -> Path:
    """A shower file of ``n`` showers: ``source`` repeated (streamed, never whole in memory)."""
    from pointcalo.io.hdf5 import HDF5ShowerWriter

    with HDF5ShowerWriter(path, compression="gzip") as writer:
        done = 0
        while done < n:
            part = source[: n - done]
            writer.write(part)
            done += len(part)
    return path


def peak_rss(args: list[str]) -> tuple[float, float]:
    """(peak resident MB, seconds) of one CLI process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pointcalo", *args])
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"pointcalo {' '.join(args)} failed")
    return usage.ru_maxrss / 1024, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="3250,32500,100000,325000")
    ap.add_argument("--points", type=int, default=256)
    ap.add_argument("--generated", type=int, default=3250)
    args = ap.parse_args()
    sizes = [int(v) for v in args.sizes.split(",")]

    from pointcalo import io
    from pointcalo.data import example_path

    src = SHARED if SHARED.exists() else example_path()
    with io.open_reader(src) as reader:
        base = strongest(reader.read(0, min(reader.n_showers, 3250)), args.points)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        gen = tiled(base[::-1], args.generated, tmp / "generated.h5")
        for n in sizes:
            ref = tiled(base, n, tmp / f"reference_{n}.h5")
            runs = [("50000 (default)", [])]
            if len(sizes) > 1 and n == sizes[-2]:
                runs.append(("0 (all)", ["--max-showers", "0"]))
            for label, extra in runs:
                out = tmp / f"out_{n}_{len(extra)}"
                cmd = ["evaluate", "--reference", str(ref), "--generated", str(gen)]
                mb, s = peak_rss([*cmd, "--out", str(out), "-q", *extra])
                rows.append((n, label, mb, s))
                print(f"{n:>8} reference showers, --max-showers {label:<15}: "
                      f"peak {mb:7.0f} MB, {s:6.0f} s", flush=True)  # fmt: skip
            ref.unlink()
    base_mb = rows[0][2]
    print(f"\nsource {src}, {args.points} points per shower, {args.generated} generated showers")
    print("| reference showers | --max-showers | peak RSS (MB) | ratio to the smallest | s |")
    print("|---|---|---|---|---|")
    for n, label, mb, s in rows:
        print(f"| {n:,} | {label} | {mb:.0f} | x{mb / base_mb:.2f} | {s:.0f} |")


if __name__ == "__main__":
    main()
