"""Read throughput of the native HDF5 format against bare h5py, and chunked-read peak memory.

Usage: python benchmarks/io_bench.py [FILE] [--repeat 3] [--chunk 512]

FILE defaults to ../shared/data/g4_ild_photons.h5 (native layout, written by the data's
producers); the benchmark also rewrites it with pointcalo's writer and measures that copy.
Baseline, in the same run: reading the same datasets with bare h5py (``ds[:]``), which builds no
awkward array and validates nothing. Peak memory is traced with tracemalloc (numpy and h5py
buffers are traced) for a full read and for a chunked read of ``--chunk`` showers at a time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import h5py

from pointcalo import io
from pointcalo.data import example_path

DEFAULT = Path(__file__).resolve().parents[2] / "shared/data/g4_ild_photons.h5"


def bare_h5py(path: Path) -> int:
    """Read every dataset with plain h5py; returns the bytes read."""
    n = 0
    with h5py.File(path) as f:
        for name in ("incident_energy", "offsets"):
            n += f[name][:].nbytes
        for name in f["points"]:
            n += f["points"][name][:].nbytes
    return n


def best_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def peak_mb(fn) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def bench_file(path: Path, label: str, repeat: int, chunk: int) -> None:
    with io.open_reader(path) as r:
        n_showers = r.n_showers
    nbytes = bare_h5py(path)
    t_bare = best_time(lambda: bare_h5py(path), repeat)
    t_ours = best_time(lambda: io.read(path), repeat)

    def chunked() -> None:
        for c in io.iter_showers(path, chunk_size=chunk):
            del c

    t_chunk = best_time(chunked, 1)
    mem_full = peak_mb(lambda: io.read(path))
    mem_chunk = peak_mb(chunked)
    print(
        f"\n[{label}] {path.name}: {n_showers} showers, {nbytes / 1e6:.1f} MB uncompressed, "
        f"{path.stat().st_size / 1e6:.1f} MB on disk"
    )
    print(
        f"  bare h5py      : {nbytes / 1e6 / t_bare:8.1f} MB/s {n_showers / t_bare:10.0f} showers/s"
    )
    print(
        f"  pointcalo.read : {nbytes / 1e6 / t_ours:8.1f} MB/s {n_showers / t_ours:10.0f} showers/s"
        f"   ratio to bare h5py = {t_bare / t_ours:.2f}"
    )
    print(
        f"  chunked ({chunk:>4}) : {nbytes / 1e6 / t_chunk:8.1f} MB/s {n_showers / t_chunk:10.0f} "
        f"showers/s   ratio to bare h5py = {t_bare / t_chunk:.2f}"
    )
    print(
        f"  peak memory    : full read {mem_full:7.1f} MB, chunked read {mem_chunk:6.1f} MB "
        f"(file/chunk = {n_showers / chunk:.0f}x, memory ratio = {mem_full / mem_chunk:.1f}x)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", type=Path, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=512)
    args = ap.parse_args()
    path = args.file or (DEFAULT if DEFAULT.exists() else example_path())
    if path == example_path():
        print("note: shared Geant4 sample not found; using the small shipped example")
        args.chunk = min(args.chunk, 16)
    bench_file(path, "as given", args.repeat, args.chunk)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "pointcalo_written.h5"
        t0 = time.perf_counter()
        n = io.convert(path, copy, chunk_size=args.chunk)
        t_write = time.perf_counter() - t0
        print(
            f"\nconvert (read + validate + gzip write) of {n} showers: {n / t_write:.0f} showers/s"
        )
        bench_file(copy, "written by pointcalo", args.repeat, args.chunk)


if __name__ == "__main__":
    main()
