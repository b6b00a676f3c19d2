"""Fit the built-in simulator's Calibration constants to the shared Geant4 sample.

Usage: python scripts/calibrate_simulator.py [FILE] [--stages longitudinal radial crossings ...]

FILE defaults to ../shared/data/g4_ild_photons.h5; fits start from the current defaults.

Four stages, each a Nelder-Mead fit with fixed random numbers:
  1. longitudinal (sampling S, T shift, alpha scale, fluctuation scale): mean layer profiles,
     mean and relative spread of E_vis / E_inc in four energy bins, from expected visible
     energies per layer plus the Poisson sampling variance (fast, no points);
  2. radial (core and tail radius scales, core weight shift): the energy-weighted radial
     distribution of points, by full simulation;
  3. crossings (MIP MPV and width, partial fraction): points per shower in four bins and
     quantiles of the point-energy spectrum, by full simulation;
  4. shape (depth slope of the radii, axis offset): mean transverse width per layer and the
     spread of the centre of gravity in x and y on the ILD grid, by full simulation.
Prints the constants to paste into ``pointcalo.simulate.simulator.Calibration``.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path

import h5py
import numpy as np
from scipy.optimize import minimize

from pointcalo.simulate import Calibration, ShowerSimulator

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT.parent / "shared/data/g4_ild_photons.h5"
BINS = [(10e3, 30e3), (30e3, 50e3), (50e3, 70e3), (70e3, 90e3)]
R_EDGES = np.array([0, 1, 2, 3, 4, 6, 8, 12, 16, 25, 40, 80, 150.0])
E_QUANTILES = [0.1, 0.25, 0.5, 0.75, 0.9]


def targets(path: Path) -> dict:
    with h5py.File(path) as f:
        off = f["offsets"][:]
        inc = f["incident_energy"][:].astype(np.float64)
        E = f["points/E"][:].astype(np.float64)
        layer = f["points/layer"][:].astype(np.int64)
        r = np.hypot(f["points/x"][:], f["points/y"][:])
    shower = np.repeat(np.arange(len(inc)), np.diff(off))
    evis = np.bincount(shower, E, len(inc))
    per_layer = np.bincount(shower * 30 + layer, E, len(inc) * 30).reshape(-1, 30)
    out = {"bins": []}
    for lo, hi in BINS:
        sel = (inc >= lo) & (inc < hi)
        ratio = evis[sel] / inc[sel]
        pts = np.isin(shower, np.flatnonzero(sel))
        out["bins"].append(
            {
                "profile": per_layer[sel].sum(0) / per_layer[sel].sum(),
                "ratio_mean": ratio.mean(),
                "ratio_spread": ratio.std() / ratio.mean(),
                "points": np.diff(off)[sel].mean(),
                "radial": np.histogram(r[pts], R_EDGES, weights=E[pts])[0] / E[pts].sum(),
            }
        )
    out["e_quantiles"] = np.quantile(E, E_QUANTILES)
    return out


def stage_longitudinal(sim: ShowerSimulator, tgt: dict) -> Calibration:
    m, v = sim._deposit_moments
    second = v + m * m

    def loss(p: np.ndarray) -> float:
        cal = replace(
            sim.calibration,
            sampling=p[0],
            t_shift=p[1],
            alpha_scale=p[2],
            sigma_scale=abs(p[3]),
            leading_depth=abs(p[4]),
            t_slope=p[5],
        )
        s = ShowerSimulator(sim.geometry, cal)
        total = 0.0
        for b, (lo, hi) in zip(tgt["bins"], BINS, strict=True):
            rng = np.random.default_rng(7)
            e = rng.uniform(lo, hi, 3000)
            lon = s.longitudinal(e, "photon", rng)
            vis = lon["visible"] + lon["leading"] * m
            evis = vis.sum(1) + rng.standard_normal(len(e)) * np.sqrt(vis.sum(1) * second / m)
            ratio = evis / e
            prof = vis.sum(0) / vis.sum()
            big = b["profile"] > 0.01
            total += np.sum(((prof[big] - b["profile"][big]) / b["profile"][big]) ** 2)
            total += 30 * ((ratio.mean() - b["ratio_mean"]) / b["ratio_mean"]) ** 2
            total += 3 * ((ratio.std() / ratio.mean() - b["ratio_spread"]) / b["ratio_spread"]) ** 2
        return total

    c = sim.calibration
    res = minimize(
        loss,
        [c.sampling, c.t_shift, c.alpha_scale, c.sigma_scale, c.leading_depth, c.t_slope],
        method="Nelder-Mead",
        options={"maxiter": 800, "xatol": 1e-4, "fatol": 1e-6},
    )
    print(f"longitudinal loss {res.fun:.4f}")
    return replace(
        c,
        sampling=res.x[0],
        t_shift=res.x[1],
        alpha_scale=res.x[2],
        sigma_scale=abs(res.x[3]),
        leading_depth=abs(res.x[4]),
        t_slope=res.x[5],
    )


def _simulate_bins(sim: ShowerSimulator, n: int = 60):
    return [sim.simulate(n, (lo, hi), seed=11) for lo, hi in BINS]


def stage_radial(sim: ShowerSimulator, tgt: dict) -> Calibration:
    def loss(p: np.ndarray) -> float:
        s = sim.with_calibration(
            core_scale=abs(p[0]),
            tail_scale=abs(p[1]),
            core_weight_shift=p[2],
            narrow_fraction=float(np.clip(p[3], 0, 1)),
            narrow_scale=abs(p[4]),
        )
        total = 0.0
        for b, showers in zip(tgt["bins"], _simulate_bins(s), strict=True):
            import awkward as ak

            pts = ak.flatten(showers.points)
            r = np.hypot(ak.to_numpy(pts.x), ak.to_numpy(pts.y))
            e = ak.to_numpy(pts.E).astype(np.float64)
            h = np.histogram(r, R_EDGES, weights=e)[0] / e.sum()
            big = b["radial"] > 0.005
            # chi^2-like: weights rings by their energy, so the core counts most
            total += np.sum((h[big] - b["radial"][big]) ** 2 / b["radial"][big])
        return total

    c = sim.calibration
    x0 = [c.core_scale, c.tail_scale, c.core_weight_shift, c.narrow_fraction, c.narrow_scale]
    res = minimize(
        loss, x0, method="Nelder-Mead", options={"maxiter": 250, "xatol": 1e-3, "fatol": 1e-6}
    )
    print(f"radial loss {res.fun:.5f}")
    return replace(
        c,
        core_scale=abs(res.x[0]),
        tail_scale=abs(res.x[1]),
        core_weight_shift=res.x[2],
        narrow_fraction=float(np.clip(res.x[3], 0, 1)),
        narrow_scale=abs(res.x[4]),
    )


def stage_crossings(sim: ShowerSimulator, tgt: dict) -> Calibration:
    import awkward as ak

    def loss(p: np.ndarray) -> float:
        s = sim.with_calibration(
            mip_mpv=abs(p[0]), mip_width=abs(p[1]), partial_fraction=float(np.clip(p[2], 0, 0.95))
        )
        total, energies = 0.0, []
        for b, showers in zip(tgt["bins"], _simulate_bins(s), strict=True):
            n = ak.to_numpy(ak.num(showers.points)).mean()
            total += 5 * ((n - b["points"]) / b["points"]) ** 2
            energies.append(ak.to_numpy(ak.flatten(showers.points.E)))
        q = np.quantile(np.concatenate(energies), E_QUANTILES)
        total += np.sum(((q - tgt["e_quantiles"]) / tgt["e_quantiles"]) ** 2)
        return total

    c = sim.calibration
    res = minimize(
        loss,
        [c.mip_mpv, c.mip_width, c.partial_fraction],
        method="Nelder-Mead",
        options={"maxiter": 150, "xatol": 1e-4, "fatol": 1e-4},
    )
    print(f"crossings loss {res.fun:.4f}")
    return replace(
        c,
        mip_mpv=abs(res.x[0]),
        mip_width=abs(res.x[1]),
        partial_fraction=float(np.clip(res.x[2], 0, 0.95)),
    )


def shape_targets(path: Path, n: int = 2000) -> dict:
    from pointcalo import io
    from pointcalo.metrics import compute

    obs = compute(io.read(path, 0, n))
    return _shape(obs)


def _shape(obs) -> dict:
    return {
        "width": obs.profiles["layer_width"].mean(0),
        "cog": np.std(np.concatenate([obs.scalars["cog_x"], obs.scalars["cog_y"]])),
    }


def stage_shape(sim: ShowerSimulator, tgt: dict) -> Calibration:
    from pointcalo.metrics import compute

    shape = tgt["shape"]

    def loss(p: np.ndarray) -> float:
        s = sim.with_calibration(radial_slope=p[0], axis_sigma=abs(p[1]))
        got = _shape(compute(s.simulate(400, (10e3, 90e3), seed=13)))
        w = np.sum(((got["width"] - shape["width"]) / shape["width"]) ** 2)
        return w + 10 * ((got["cog"] - shape["cog"]) / shape["cog"]) ** 2

    c = sim.calibration
    start = np.array([c.radial_slope or -0.3, c.axis_sigma or 0.15])
    res = minimize(
        loss,
        start,
        method="Nelder-Mead",
        options={
            "maxiter": 60,
            "xatol": 1e-3,
            "fatol": 1e-4,
            "initial_simplex": [
                start,
                start + np.array([-0.3, 0.0]),
                start + np.array([0.0, 0.15]),
            ],
        },
    )
    print(f"shape loss {res.fun:.4f}")
    return replace(c, radial_slope=res.x[0], axis_sigma=abs(res.x[1]))


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", type=Path, default=SRC)
    ap.add_argument(
        "--stages",
        nargs="+",
        default=[
            "longitudinal",
            "radial",
            "crossings",
            "radial",
            "crossings",
            "longitudinal",
            "shape",
            "radial",
        ],
    )
    args = ap.parse_args()
    stages = {
        "longitudinal": stage_longitudinal,
        "radial": stage_radial,
        "crossings": stage_crossings,
        "shape": stage_shape,
    }
    tgt = targets(args.file)
    if "shape" in args.stages:
        tgt["shape"] = shape_targets(args.file)
    sim = ShowerSimulator()
    for stage in (stages[name] for name in args.stages):
        sim = ShowerSimulator(sim.geometry, stage(sim, tgt))
        print({k: round(v, 5) for k, v in asdict(sim.calibration).items()})
    print(
        "Calibration(" + ", ".join(f"{k}={v:.5g}" for k, v in asdict(sim.calibration).items()) + ")"
    )


if __name__ == "__main__":
    main()
