"""Seen versus held-out segmentations: the geometry-aware model beside point models projected
onto the same grids (issue: geometry-aware generation, item 4).

For each segmentation (``--seen`` of those the geometry-aware model trained on, and all it
held out), the geometry-aware model samples on that grid at the incident energies of
``--reference`` (the test split for the closing table), each point model samples once and is
projected, and ``pointcalo compare`` scores everything on that grid (per-layer classifier,
5-fold, centred alignment only: the geometry-aware model's cells are the grid's; grid
observables' W1 / floor). Beside it the paper's physics checks on that grid: per layer the
energy-weighted centre and width in x and y, and the correlation of the layers' centres.

    python scripts/geometry_study.py --arm runs/geometry_arm/checkpoint.pt \
        --points cc=runs/transfer/scratch_1125/checkpoint.pt \
                 library=runs/library_calogan/checkpoint.pt \
        --reference runs/split_calogan/test.h5 --out runs/geometry_study

Writes ``OUT/table.json``, ``OUT/table.md`` and ``OUT/auc_by_segmentation.png``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

#: Grid observables of ``pointcalo compare`` (the point-level ones say nothing about a grid
#: model, whose points stand for its cells).
POINT_ONLY = {"n_points", "point_energy", "nn_distance", "pair_distance"}
#: Seen segmentations in the table: coarse and fine inner layers, each middle layer.
SEEN = (
    "calogan-48x12-12x12-24x24",
    "calogan-4x48-48x24-24x24",
    "calogan-192x48-48x48-24x24",
    "calogan-12x192-48x48-24x24",
)

#: Held out besides the model's own list: two segmentations with the transition region.
ALSO = ("calogan-48x12-36x48t-24x24", "calogan-192x48-36x48t-24x24")


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def grid_file(name: str, out: Path) -> str:
    """A preset's name, or a YAML file written for a family segmentation."""
    from voxelize.gridfiles import write_grid_yaml
    from voxelize.segmentations import calogan_family

    family = {g.name: g for g in calogan_family(transition=True)}
    if name not in family:
        return name
    path = out / "grids" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_grid_yaml(family[name], path)
    return str(path)


def physics(path: str, grid_name: str) -> dict:
    """The paper's checks on a grid: per layer the mean energy-weighted centre and width (mm)
    in x and y (from cell centres: on the transition-region layer the centre's offset from the
    axis is the paper's check), the mean layer share, and the correlation of the x centres of
    layers 0 and 1 over showers."""
    import awkward as ak

    import voxelize as vx
    from pointcalo import io

    grid = vx.load_grid(grid_name)
    s = io.read(path)
    flat = {k: np.asarray(ak.flatten(s["points", k])) for k in ("E", "x", "y", "layer")}
    ptr = np.concatenate([[0], np.cumsum(ak.num(s["points"]))])
    vox = vx.project({**flat, "ptr": ptr}, grid).voxels.astype(np.float64)
    x, y, layer = grid.cell_centres()
    out, centres = {}, []
    total = np.maximum(vox.sum(1), 1e-12)
    for lay in range(grid.n_layers):
        m = layer == lay
        e = vox[:, m]
        el = np.maximum(e.sum(1), 1e-12)
        cx, cy = (e * x[m]).sum(1) / el, (e * y[m]).sum(1) / el
        wx = np.sqrt((e * (x[m] - cx[:, None]) ** 2).sum(1) / el)
        wy = np.sqrt((e * (y[m] - cy[:, None]) ** 2).sum(1) / el)
        out[f"layer{lay}"] = {
            "share": float(np.mean(e.sum(1) / total)),
            "centre_x": float(cx.mean()), "centre_y": float(cy.mean()),
            "width_x": float(wx.mean()), "width_y": float(wy.mean()),
            "width_x_err": float(wx.std() / np.sqrt(len(wx))),
            "width_y_err": float(wy.std() / np.sqrt(len(wy))),
        }  # fmt: skip
        centres.append(cx)
    out["centre_corr_01"] = float(np.corrcoef(centres[0], centres[1])[0, 1])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arm", required=True, help="geometry_arm checkpoint")
    p.add_argument(
        "--points", nargs="*", default=[],
        help="LABEL=CHECKPOINT of point models (or LABEL=FILE.h5: its showers, sampled at the "
        "reference's incident energies)",
    )  # fmt: skip
    p.add_argument("--reference", default="runs/split_calogan/val.h5")
    p.add_argument("--seen", default=",".join(SEEN), help="seen segmentations in the table")
    p.add_argument(
        "--also", default=",".join(ALSO),
        help="further segmentations the model did not train on (e.g. transition-region ones)",
    )  # fmt: skip
    p.add_argument("--out", default="runs/geometry_study")
    args = p.parse_args(argv)
    from pointcalo.checkpoint import load_checkpoint

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    meta = load_checkpoint(args.arm)["meta"]
    seen = [s for s in args.seen.split(",") if s in meta["segmentations"]]
    held = [s for s in meta["held_out"] if s not in meta["segmentations"]]
    held += [s for s in args.also.split(",") if s and s not in held + meta["segmentations"]]
    rows = [(s, "seen") for s in seen] + [(s, "held out") for s in held]
    ref = args.reference
    points = dict(item.split("=", 1) for item in args.points)
    for label, ck in points.items():
        gen = out / f"{label}.h5"
        if ck.endswith((".h5", ".hdf5", ".root")):  # showers already sampled at ref's energies
            gen.unlink(missing_ok=True)
            gen.symlink_to(Path(ck).resolve())
        elif not gen.exists():
            run(["pointcalo", "sample", ck, "--energies-from", ref, "-o", str(gen), "--seed", "1",
                 "--batch-size", "64", "-q"])  # fmt: skip
    table = {"reference": ref, "arm": args.arm, "points": points, "segmentations": []}
    for name, kind in rows:
        grid = grid_file(name, out)
        arm = out / f"arm_{name}.h5"
        if not arm.exists():
            run(["pointcalo", "sample", args.arm, "--energies-from", ref, "--grid", grid, "-o",
                 str(arm), "--seed", "1", "--batch-size", "256", "-q"])  # fmt: skip
        labels = ["geometry-arm", *points]
        files = [str(arm), *(str(out / f"{k}.h5") for k in points)]
        cmp_dir = out / f"compare_{name}"
        if not (cmp_dir / "compare.json").exists():
            run(["pointcalo", "compare", "--reference", ref, "--generated", *files,
                 "--labels", ",".join(labels), "--grid", grid, "--alignments", "centred",
                 "--extra-grids", "none", "--out", str(cmp_dir), "-q"])  # fmt: skip
        result = json.loads((cmp_dir / "compare.json").read_text())
        view = next(iter(result["by_view"].values()))
        row = {"segmentation": name, "kind": kind,
               "floor_auc": view["floor"]["classifier_auc"], "models": {}}  # fmt: skip
        for label, path in zip(labels, files, strict=True):
            sample = view["samples"][label]
            w1 = {k: v for k, v in sample["w1_over_floor"].items() if k not in POINT_ONLY}
            worst = max(w1, key=lambda k: w1[k])
            row["models"][label] = {
                "auc": sample["classifier_auc"],
                "worst_w1_over_floor": [worst, w1[worst]],
                "physics": physics(path, grid),
            }
        row["geant4"] = physics(ref, grid)
        table["segmentations"].append(row)
        print(name, kind, {k: round(v["auc"][0], 3) for k, v in row["models"].items()}, flush=True)
    (out / "table.json").write_text(json.dumps(table, indent=1))
    (out / "table.md").write_text(markdown(table))
    plot(table, out / "auc_by_segmentation.png")
    print((out / "table.md").read_text())
    return 0


def markdown(table: dict) -> str:
    """The seen / held-out table and the physics checks, as Markdown."""
    labels = list(table["segmentations"][0]["models"])
    head = "| segmentation | | floor | " + " | ".join(labels) + " |"
    lines = [
        f"Reference: {table['reference']}; per-layer classifier AUC (5-fold, +- its spread) "
        "and the worst grid observable's W1 / floor, on each segmentation.",
        "",
        head,
        "|" + "---|" * (3 + len(labels)),
    ]
    for r in table["segmentations"]:
        cells = [f"{r['floor_auc'][0]:.3f}"]
        for k in labels:
            m = r["models"][k]
            w, v = m["worst_w1_over_floor"]
            cells.append(f"{m['auc'][0]:.3f} +- {m['auc'][1]:.3f} ({w} {v:.1f})")
        lines.append(f"| {r['segmentation']} | {r['kind']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Physics checks (means over showers; widths in mm, energy-weighted):",
        "",
        "| segmentation | sample | width x L0 | width y L0 | width x L1 | width y L1 | centre x L1 "
        "| share L0 | corr(centre x L0, L1) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table["segmentations"]:
        for label, ph in [("Geant4", r["geant4"])] + [
            (k, v["physics"]) for k, v in r["models"].items()
        ]:
            a, b = ph["layer0"], ph["layer1"]
            lines.append(
                f"| {r['segmentation']} | {label} | {a['width_x']:.2f} | {a['width_y']:.2f} | "
                f"{b['width_x']:.2f} | {b['width_y']:.2f} | {b['centre_x']:+.2f} | "
                f"{a['share']:.3f} | {ph['centre_corr_01']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def plot(table: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = table["segmentations"]
    labels = list(rows[0]["models"])
    fig, ax = plt.subplots(figsize=(9, 4))
    xs = np.arange(len(rows))
    for i, k in enumerate(labels):
        auc = np.array([r["models"][k]["auc"] for r in rows])
        ax.errorbar(xs + 0.1 * i, auc[:, 0], auc[:, 1], fmt="o", label=k)
    floor = np.array([r["floor_auc"] for r in rows])
    ax.errorbar(xs - 0.1, floor[:, 0], floor[:, 1], fmt="s", color="grey", label="floor")
    ax.set_xticks(xs, [f"{r['segmentation']}\n({r['kind']})" for r in rows], rotation=60,
                  ha="right", fontsize=7)  # fmt: skip
    ax.set_ylabel("per-layer classifier AUC")
    ax.axhline(0.5, color="k", lw=0.5)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
