"""Reconstruction against generation for the two-stage latent models: for each representation
(cylindrical grid, ILD grid, points) the test showers encoded and decoded by stage 1 alone,
showers sampled from stage 1's independent-code prior and from the GPT over the tokens, all at
the test showers' energies, scored by ``pointcalo compare`` against the test showers; the point
version beside the shipped CaloClouds models on the full protocol (three grid alignments, the
cylindrical grid, point-level W1s), the grid versions on their own grid with the observables of
the voxels (every sample and the reference voxelised onto it: a grid model's points stand for
voxels, so point observables and other alignments do not apply).

    python scripts/latent_study.py --reference runs/split/test.h5 \
        --cylindrical runs/vqvae_cylindrical/checkpoint.pt runs/gpt_cylindrical/checkpoint.pt \
        --ild runs/vqvae_ild/checkpoint.pt runs/gpt_ild/checkpoint.pt \
        --points runs/vqvae_points/checkpoint.pt runs/gpt_points/checkpoint.pt \
        --baselines ild-photon-cc,ild-photon-cm --out runs/latent_study

Writes ``<out>/<representation>/compare.{json,md,png}``, ``<out>/latent_study.{json,md}``
(the combined table) and prints the table; samples and reports already there are reused
(delete them to redo). Nothing is chosen on the reference showers.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

GRIDS = {"cylindrical": "ild-cylindrical", "ild": "ild"}
STAGES = ("reconstruction (stage 1 alone)", "independent-code prior", "GPT + stage-1 decoder")


def run(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def samples(name: str, vq: str, gpt: str, ref: str, out: Path, n_max: int) -> dict[str, str]:
    """Reconstruction, prior and GPT shower files of one representation (made once)."""
    files = {}
    for stage, ckpt in zip(STAGES, (vq, vq, gpt), strict=True):
        path = out / f"{name}_{stage.split()[0].lower()}.h5"
        files[stage] = str(path)
        if path.exists():
            continue
        if stage.startswith("reconstruction"):
            run([sys.executable, "scripts/vq_reconstruct.py", ckpt, ref, "-o", str(path)])
        else:
            run(["pointcalo", "sample", ckpt, "--energies-from", ref, "-o", str(path), "-q",
                 "--batch-size", str(n_max)])  # fmt: skip
    return files


def voxelised(path: str, grid: str, out: Path) -> str:
    """``path`` projected onto ``grid`` (a CaloChallenge-layout voxel file, made once)."""
    vox = out / f"vox_{grid}_{Path(path).stem}.h5"
    if not vox.exists():
        run(["pointcalo", "voxelize", path, str(vox), "--grid", grid, "-q"])
    return str(vox)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", default="runs/split/test.h5")
    for name in ("cylindrical", "ild", "points"):
        p.add_argument(f"--{name}", nargs=2, metavar=("VQVAE", "GPT"), help="checkpoints")
    p.add_argument(
        "--baselines",
        default="ild-photon-cc,ild-photon-cm",
        help="point models sampled beside the point version (names or files)",
    )
    p.add_argument("--batch-size", type=int, default=200, help="generation batch")
    p.add_argument("--out", default="runs/latent_study")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table: dict[str, dict] = {}
    for name in ("cylindrical", "ild", "points"):
        ckpts = getattr(args, name)
        if not ckpts:
            continue
        files = samples(name, *ckpts, args.reference, out, args.batch_size)
        labels = list(files)
        if name == "points":
            for base in filter(None, args.baselines.split(",")):
                path = out / f"baseline_{Path(base).stem}.h5"
                if not path.exists():
                    run(["pointcalo", "sample", base, "--energies-from", args.reference,
                         "-o", str(path), "-q"])  # fmt: skip
                files[base] = str(path)
                labels.append(base)
            grid_args: list[str] = []
            reference = args.reference
        else:  # voxel observables on the model's grid: every sample and the reference voxelised
            grid_args = ["--grid", GRIDS[name]]
            reference = voxelised(args.reference, GRIDS[name], out)
            files = {k: voxelised(v, GRIDS[name], out) for k, v in files.items()}
        report = out / name
        if not (report / "compare.json").exists():  # an earlier report is kept: delete to redo
            run(["pointcalo", "compare", "--reference", reference, "--generated",
                 *files.values(), "--labels", ",".join(labels), "--out", str(report), "-q",
                 *grid_args])  # fmt: skip
        res = json.loads((report / "compare.json").read_text())
        table[name] = {"floor": res["floor"], "headline": res["headline"]}
    (out / "latent_study.json").write_text(json.dumps(table, indent=1))
    md = markdown(table)
    (out / "latent_study.md").write_text(md)
    print(md)
    return 0


def _auc(v) -> str:
    return "–" if v is None else f"{v[0]:.3f} ± {v[1]:.3f}"


def markdown(table: dict) -> str:
    """One row per representation and stage: worst-view per-layer AUC (view), its floor, the
    worst W1 / floor (observable) and, for points, the point-level W1 / floor."""
    rows = [
        "| representation | sample | AUC, worst view | floor | worst W1 / floor | "
        "nearest-neighbour W1 / floor | pair-correlation W1 / floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, res in table.items():
        for label, h in res["headline"].items():
            view = h["worst_view"]
            floor = res["floor"][view]["classifier_auc"]
            w = h["worst_w1_over_floor"]
            pw = h.get("point_w1_over_floor") or {}
            nn = pw.get("nn_distance")
            pair = pw.get("pair_distance")
            rows.append(
                f"| {name} | {label} | {_auc(h['classifier_auc_worst'])} ({view}) | "
                f"{_auc(floor)} | {w['value']:.1f} ({w['observable']}) | "
                f"{'–' if nn is None else f'{nn:.1f}'} | "
                f"{'–' if pair is None else f'{pair:.1f}'} |"
            )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
