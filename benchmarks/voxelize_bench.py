"""Projection speed: points per second onto the ILD grid and the CaloChallenge dataset-2 grid.

Usage: python benchmarks/voxelize_bench.py [FILE] [--showers N] [--baseline-showers M]

FILE defaults to ../shared/data/g4_ild_photons.h5 (falls back to the shipped example). One
core: numpy is single-threaded and torch is limited to one thread. Baseline in the same run:
a loop over showers calling ``numpy.histogramdd`` on each shower's points with the same bin
edges (on the first M showers, since it is slow). The dataset-2 grid takes the ILD layers by
depth (``layer_map="depth"``); the baseline does the same mapping before its histogram.
Sparse output (``sparse=True``) is reported against dense output in the same run, with the
implementation it ran (the numba loop of the ``fast`` extra, or numpy).
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import math
import time
from pathlib import Path

import awkward as ak
import numpy as np

import voxelize as vx
from pointcalo import io
from pointcalo.data import example_path
from voxelize.accumulate import using_numba
from voxelize.grids import EDGE_TOLERANCE

DEFAULT = Path(__file__).resolve().parents[2] / "shared/data/g4_ild_photons.h5"


def columns(showers: ak.Array) -> dict[str, np.ndarray]:
    flat = ak.flatten(showers.points)
    counts = ak.to_numpy(ak.num(showers.points))
    return {
        "E": ak.to_numpy(flat.E),
        "x": ak.to_numpy(flat.x),
        "y": ak.to_numpy(flat.y),
        "layer": ak.to_numpy(flat.layer),
        "ptr": np.concatenate([[0], np.cumsum(counts)]),
    }


def histogramdd_loop(c: dict[str, np.ndarray], grid: vx.Grid, src_depth: np.ndarray) -> np.ndarray:
    """The naive baseline: one numpy.histogramdd call per shower."""
    n = len(c["ptr"]) - 1
    out = np.zeros((n, grid.n_voxels))
    if isinstance(grid, vx.CartesianGrid):
        edges = [
            np.arange(grid.n_layers + 1) - 0.5,
            grid.y_min[0] + grid.dy[0] * np.arange(grid.ny[0] + 1),
            grid.x_min[0] + grid.dx[0] * np.arange(grid.nx[0] + 1),
        ]
    else:  # the angle as a bin coordinate, with voxelize's documented edge convention
        n_alpha = int(grid.n_alpha[0])
        edges = [np.arange(grid.n_layers + 1) - 0.5, np.arange(n_alpha + 1), grid.r_edges[0]]
    for i in range(n):
        s = slice(c["ptr"][i], c["ptr"][i + 1])
        x, y, e = c["x"][s], c["y"][s], c["E"][s]
        if isinstance(grid, vx.CartesianGrid):
            sample = np.stack([c["layer"][s], y, x], 1)
        else:
            layer = np.searchsorted(grid.depth_edges(), src_depth[c["layer"][s]], "right") - 1
            u = (np.arctan2(y, x) + math.pi) * (n_alpha / (2 * math.pi)) + EDGE_TOLERANCE
            u = np.where(u >= n_alpha, u - n_alpha, u)  # alpha = pi wraps to bin 0
            sample = np.stack([layer, u, np.hypot(x, y)], 1)
        out[i] = np.histogramdd(sample, bins=edges, weights=e)[0].reshape(-1)
    return out


def rate(fn, n_points: int, repeat: int = 2) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return n_points / best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", type=Path, default=None)
    ap.add_argument("--showers", type=int, default=4000)
    ap.add_argument("--baseline-showers", type=int, default=300)
    ap.add_argument("--chunk", type=int, default=500, help="showers per project() call")
    args = ap.parse_args()
    path = args.file or (DEFAULT if DEFAULT.exists() else example_path())
    showers = io.read(path, 0, args.showers)
    c = columns(showers)
    n_pts = len(c["E"])
    ild = vx.ild()
    src_depth = np.asarray(ild.layer_depth)
    print(f"{path.name}: {len(showers)} showers, {n_pts / 1e6:.2f} M points (one core)")

    try:
        import torch

        torch.set_num_threads(1)
        tcols = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in c.items()}
    except ImportError:
        torch = None

    def chunked(grid: vx.Grid, cols: dict, **kw) -> float:
        total = 0.0
        ptr = cols["ptr"]
        for s0 in range(0, len(ptr) - 1, args.chunk):
            s1 = min(s0 + args.chunk, len(ptr) - 1)
            p0, p1 = int(ptr[s0]), int(ptr[s1])
            sub = {k: v[p0:p1] for k, v in cols.items() if k != "ptr"}
            sub["ptr"] = ptr[s0 : s1 + 1] - ptr[s0]
            proj = vx.project(sub, grid, **kw)
            total += float(proj.outside.sum())  # touch the result, not a pass over all voxels
        return total

    nb = min(args.baseline_showers, len(showers))
    cb = {k: v[: c["ptr"][nb]] for k, v in c.items() if k != "ptr"}
    cb["ptr"] = c["ptr"][: nb + 1]
    for grid, kw in [
        (ild, {}),
        (vx.calochallenge("2"), {"layer_map": "depth", "source_depth": src_depth}),
    ]:
        base_rate, base = rate(lambda g=grid: histogramdd_loop(cb, g, src_depth), len(cb["E"]), 3)
        ours = vx.project(cb, grid, dtype=np.float64, **kw).voxels
        agree = np.allclose(ours, base, rtol=1e-9, atol=1e-9)
        np_rate, _ = rate(lambda g=grid, k=kw: chunked(g, c, **k), n_pts, 3)
        line = (
            f"{grid.name:16s} numpy {np_rate / 1e6:6.1f} M points/s "
            f"({np_rate / base_rate:5.1f}x histogramdd loop)"
        )
        sparse = vx.project(cb, grid, dtype=np.float64, sparse=True, **kw)  # warm-up (numba)
        rebuilt = np.zeros_like(ours)
        rebuilt[sparse.sparse[0], sparse.sparse[1]] = sparse.sparse[2]
        agree &= bool(np.array_equal(rebuilt, ours))
        sp_rate, _ = rate(lambda g=grid, k=kw: chunked(g, c, sparse=True, **k), n_pts, 3)
        line += (
            f" | numpy sparse {sp_rate / 1e6:6.1f} M points/s ({sp_rate / base_rate:5.1f}x; "
            f"{sp_rate / np_rate:4.2f}x dense, {'numba' if using_numba() else 'numpy'})"
        )
        if torch is not None:
            t_rate, _ = rate(lambda g=grid, k=kw: chunked(g, tcols, **k), n_pts)
            line += f" | torch {t_rate / 1e6:6.1f} M points/s ({t_rate / base_rate:5.1f}x)"
        print(
            line + f" | histogramdd loop {base_rate / 1e6:5.2f} M points/s on {nb} showers"
            f" | same voxels: {agree}"
        )


if __name__ == "__main__":
    main()
