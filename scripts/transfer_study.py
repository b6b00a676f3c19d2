"""Transfer of a point model to a new detector: the ILD photon teacher (``ild-photon-cc``)
fine-tuned on 100 ... all CaloGAN-like training showers, fully and with BitFit, against the
same network trained from scratch on the same showers (issue: geometry-aware generation,
item 5; CaloTransfer, arXiv 2512.00187).

Every run has the same network (``configs/caloclouds_calogan.yaml``), steps and batch; only
the start and what trains differ. Runs resume (``--resume``) and a finished one is skipped.
Then each run samples at the energies of ``--reference`` (the validation split by default;
the test split for the closing table; no choice is made on either) and ``pointcalo
compare`` scores it on the CaloGAN segmentation (3x96 / 12x12 / 12x6) and on a 10 mm grid in
the fidelity protocol's three alignments:

    pointcalo split ../shared/data/g4_calogan_like.h5 --out runs/split_calogan
    OMP_NUM_THREADS=1 nice python scripts/transfer_study.py --steps 500 --sizes 100,1125
    python scripts/transfer_study.py --steps 500 --sizes 100,1125 --evaluate \
        --reference runs/split_calogan/test.h5

Writes ``runs/transfer/<mode>_<n>/`` (checkpoints) and ``runs/transfer/table.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

MODES = {
    "scratch": {},
    "finetune": {"init_from": "ild-photon-cc", "init_mode": "transfer"},
    "bitfit": {"init_from": "ild-photon-cc", "init_mode": "transfer", "freeze": "bitfit"},
}


def train_all(args) -> None:
    from pointcalo.checkpoint import load_checkpoint
    from pointcalo.config import load_config
    from pointcalo.train.engine import train

    base = load_config(args.config)
    for n in args.sizes:
        for mode in args.modes:
            out = Path(args.out) / f"{mode}_{n}"
            ck = out / "checkpoint.pt"
            if ck.exists() and load_checkpoint(ck).get("step", 0) >= args.steps:
                print(f"{out}: done", flush=True)
                continue
            cfg = base.with_overrides(
                data={"max_showers": n},
                train={"steps": args.steps, "out": str(out), "checkpoint_every": 100,
                       "log_every": 50, **MODES[mode]},
            )  # fmt: skip
            print(f"training {out} ({mode}, {n} showers, {args.steps} steps)", flush=True)
            train(cfg, resume=ck.exists(), progress=False)


def uniform_grid(out: Path) -> str:
    """A YAML grid of 10 mm cells in all three CaloGAN-like layers (so the grid can be shifted
    by half a cell or at random: the fidelity protocol's alignments)."""
    from voxelize.gridfiles import write_grid_yaml
    from voxelize.segmentations import segmentation

    path = out / "grids" / "calogan-10mm.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_grid_yaml(segmentation(((48, 48),) * 3, name="calogan-10mm"), path)
    return str(path)


def evaluate_all(args) -> None:
    """Sample every run at the reference's energies and score them with ``pointcalo
    compare``: on CaloGAN's segmentation (centred: its layers differ, so no shifted views) and
    on a 10 mm grid in three alignments (the headline is the worst); point-level W1s beside."""
    table = {}
    ref = args.reference
    out = Path(args.out)
    for n in args.sizes:
        for mode in args.modes:
            run = out / f"{mode}_{n}"
            gen = run / f"gen_{Path(ref).stem}.h5"
            if not gen.exists():
                subprocess.run(
                    ["pointcalo", "sample", str(run / "checkpoint.pt"), "--energies-from", ref,
                     "-o", str(gen), "--seed", "1", "--batch-size", "64", "-q"], check=True,
                )  # fmt: skip
            table[f"{mode}_{n}"] = {"mode": mode, "n_train": n, "generated": str(gen)}
    files = [t["generated"] for t in table.values()]
    labels = list(table)
    views = {"calogan": ("calogan", "centred"),
             "10mm": (uniform_grid(out), "centred,half-cell,random")}  # fmt: skip
    for key, (grid, alignments) in views.items():
        cmp_dir = out / f"compare_{Path(ref).stem}_{key}"
        if not (cmp_dir / "compare.json").exists():
            subprocess.run(
                ["pointcalo", "compare", "--reference", ref, "--generated", *files,
                 "--labels", ",".join(labels), "--grid", grid, "--alignments", alignments,
                 "--extra-grids", "none", "--out", str(cmp_dir), "-q"], check=True,
            )  # fmt: skip
        result = json.loads((cmp_dir / "compare.json").read_text())
        for label in labels:
            h = result["headline"][label]
            table[label][key] = {
                "auc_worst": h["classifier_auc_worst"], "worst_view": h["worst_view"],
                "worst_w1_over_floor": h["worst_w1_over_floor"],
                "point_w1_over_floor": h["point_w1_over_floor"],
            }  # fmt: skip
        table[f"floor_{key}"] = result["floor"]
    (out / f"table_{Path(ref).stem}.json").write_text(json.dumps(table, indent=1))
    for label, row in table.items():
        if not label.startswith("floor"):
            print(label, {k: round(row[k]["auc_worst"][0], 3) for k in views})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/caloclouds_calogan.yaml")
    p.add_argument("--sizes", default="100,1125", type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--modes", default="scratch,finetune,bitfit", type=lambda s: s.split(","))
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--out", default="runs/transfer")
    p.add_argument("--evaluate", action="store_true")
    p.add_argument("--reference", default="runs/split_calogan/val.h5")
    args = p.parse_args(argv)
    evaluate_all(args) if args.evaluate else train_all(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
