"""Learning curve of a training run: fidelity on the validation split against CPU-hours.

For every weight snapshot of a run (``train.snapshot_every``; ``OUT/snapshots/step_*.pt``)
and its latest checkpoint, generate showers at the incident energies of the validation
showers, evaluate them against the validation showers (classifier AUC and the worst W1 over
its floor) and record them with the step and the CPU-hours the run had spent. Snapshots
already in the output JSON are skipped, so the curve grows as training goes on.

    python scripts/learning_curve.py runs/caloclouds_ild --val runs/split/val.h5 --n 600
    python scripts/learning_curve.py runs/caloclouds_ild_knn --val runs/split/val.h5 --n 300 \
        --start ild-photon-cc                           # a fine-tuning, from its start
    python scripts/learning_curve.py runs/grid_vae_cyl --val runs/split/val.h5 \
        --grid ild-cylindrical --voxel-observables      # grid models, on their grid
    python scripts/learning_curve.py runs/geometry_arm --val runs/split_calogan/val.h5 \
        --grid calogan --sample-grid calogan --voxel-observables   # geometry-aware models

Writes ``OUT/learning_curve.json`` and ``OUT/learning_curve.png``. Test showers are never
used here: tuning happens on validation.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def evaluate_snapshot(
    path: Path,
    val,
    n: int,
    sampler: str | None,
    steps: int | None,
    grid: str = "ild",
    voxel_observables: bool = False,
    sample_grid: str | None = None,
) -> dict:
    """One point of the curve, under the evaluation protocol (README, "The evaluation
    protocol"): the per-layer classifier's AUC on every alignment of ``grid`` (the worst is the
    headline; grid models: their grid only) and the worst W1 / floor over every view and
    observable, the grid-free point observables included."""
    import torch

    import voxelize as vx
    from pointcalo.generation import generate, load_model
    from pointcalo.metrics import compute
    from pointcalo.metrics.alignment import ALIGNMENTS, cell_pitch, infer_lattice
    from pointcalo.metrics.report import evaluate
    from pointcalo.showers import make_showers

    state = torch.load(path, map_location="cpu", weights_only=True) if Path(path).exists() else {}
    m = load_model(path)
    energy = np.asarray(val.incident_energy, np.float64)[:n]
    t0 = time.perf_counter()
    clouds = generate(
        m.model, m.net, m.normalizer, energy, m.cfg, seed=1, sampler=sampler, steps=steps,
        limits=m.limits, **({"grid": sample_grid} if sample_grid else {}),
    )  # fmt: skip
    sample_s = time.perf_counter() - t0
    gen = make_showers(energy.astype(np.float32), clouds.points, offsets=clouds.offsets)
    g = vx.load_grid(grid)
    if voxel_observables:  # observables of the voxels only (grid models: no point features)
        views = {
            "centred": tuple(
                compute(voxels=vx.project(x, g).voxels, incident_energy=energy, grid=g)
                for x in (val, gen)
            )
        }
    else:
        alignments = ALIGNMENTS if isinstance(g, vx.CartesianGrid) else ("centred",)
        lattice = infer_lattice(val, cell_pitch(g)[0]) if len(alignments) > 1 else None
        views = {
            a: tuple(
                compute(x, grid=g, alignment=a, lattice=lattice, point_structure=a == "centred")
                for x in (val, gen)
            )
            for a in alignments
        }
    aucs, floors, ratios = {}, {}, {}
    for view, (r, x) in views.items():
        metrics = evaluate(r, x, grid=g, k=5, seed=0)
        aucs[view] = metrics["classifier_auc"]["generated"]
        floors[view] = metrics["classifier_auc"]["floor"]
        for k, v in metrics["w1x100"].items():
            ratios[f"{k} ({view})"] = v["generated"][0] / max(v["floor"][0], 1e-12)
    worst_view = max(aucs, key=lambda v: aucs[v][0])
    worst = max(ratios, key=ratios.get)
    return {
        "snapshot": Path(path).name,
        "step": int(state.get("step", m.meta.get("step", 0) or 0)),
        "cpu_hours": float(state.get("cpu_s", 0.0)) / 3600,
        "auc": aucs[worst_view],
        "auc_view": worst_view,
        "auc_by_view": aucs,
        "auc_floor": floors[worst_view],
        "worst_w1_over_floor": ratios[worst],
        "worst_observable": worst,
        "w1_over_floor": ratios,
        "showers_per_s": n / sample_s,
        "sampler": sampler or m.cfg.model.sampler if hasattr(m.cfg.model, "sampler") else None,
    }


def plot(points: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = sorted(points, key=lambda p: p["cpu_hours"])
    h = [p["cpu_hours"] for p in pts]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.errorbar(h, [p["auc"][0] for p in pts], [p["auc"][1] for p in pts], marker="o")
    a1.axhline(pts[-1]["auc_floor"][0], color="k", ls="--", label="floor (Geant4 vs Geant4)")
    a1.set(
        xlabel="CPU-hours", ylabel="classifier AUC, worst alignment (validation)", ylim=(0.45, 1.02)
    )
    a1.legend()
    a2.plot(h, [p["worst_w1_over_floor"] for p in pts], marker="o")
    for p in pts:
        a2.annotate(p["worst_observable"], (p["cpu_hours"], p["worst_w1_over_floor"]), fontsize=7)
    a2.axhline(3, color="k", ls="--", label="target: 3x floor")
    a2.set(xlabel="CPU-hours", ylabel="worst W1 / floor (validation)", yscale="log")
    a2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="the training run's output folder")
    ap.add_argument("--val", required=True, help="validation showers (never the test split)")
    ap.add_argument("--n", type=int, default=600, help="validation showers to compare with")
    ap.add_argument("--sampler", default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None, help="default: RUN/learning_curve.json")
    ap.add_argument("--every", type=int, default=1, help="use every k-th snapshot")
    ap.add_argument(
        "--start", default=None, help="also the checkpoint the run started from (init_from)"
    )
    ap.add_argument("--grid", default="ild", help="grid of the observables")
    ap.add_argument(
        "--voxel-observables",
        action="store_true",
        help="compare the showers' voxels on --grid only (for grid models)",
    )
    ap.add_argument(
        "--sample-grid", default=None, help="geometry-aware models: the grid to generate on"
    )
    args = ap.parse_args()

    from pointcalo import io
    from pointcalo.io.atomic import write_json

    out = args.out or args.run / "learning_curve.json"
    done = json.loads(out.read_text())["points"] if out.exists() else []
    seen = {p["snapshot"] for p in done}
    val = io.read(args.val)[: args.n]
    snaps = sorted((args.run / "snapshots").glob("step_*.pt"))[:: args.every]
    if args.start:
        snaps = [args.start, *snaps]
    for path in snaps:
        if Path(path).name in seen or f"start ({path})" in seen:
            continue
        point = evaluate_snapshot(
            path,
            val,
            len(val),
            args.sampler,
            args.steps,
            args.grid,
            args.voxel_observables,
            args.sample_grid,
        )
        if path == args.start:  # the weights the run started from: no compute of this run
            point.update(step=0, cpu_hours=0.0, snapshot=f"start ({args.start})")
        print(
            f"{Path(path).name}: step {point['step']}, {point['cpu_hours']:.2f} CPU-h, AUC "
            f"{point['auc'][0]:.3f}, worst W1/floor {point['worst_w1_over_floor']:.1f} "
            f"({point['worst_observable']})",
            flush=True,
        )
        done.append(point)
        write_json({"run": str(args.run), "validation": args.val, "points": done}, out)
        plot(done, out.with_suffix(".png"), f"learning curve: {args.run.name}")


if __name__ == "__main__":
    main()
