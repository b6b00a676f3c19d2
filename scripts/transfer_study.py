"""Transfer of a point model to a new detector: the ILD photon teacher (``ild-photon-cc``)
fine-tuned on 100 ... all CaloGAN-like training showers, fully and with BitFit, against the
same network trained from scratch on the same showers (issue: geometry-aware generation,
item 5; CaloTransfer, arXiv 2512.00187).

Every run has the same network (``configs/caloclouds_calogan.yaml``), steps and batch; only
the start and what trains differ. Runs resume (``--resume``) and a finished one is skipped.
Then each run samples at the conditions of ``--reference`` (the validation split by default;
the test split for the closing table) and ``pointcalo compare`` scores it on the CaloGAN
segmentation (3x96 / 12x12 / 12x6) and two more of the geometry-aware family:

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


def evaluate_all(args) -> None:
    table = {}
    ref = args.reference
    grids = args.grids.split(",")
    for n in args.sizes:
        for mode in args.modes:
            run = Path(args.out) / f"{mode}_{n}"
            gen = run / f"gen_{Path(ref).stem}.h5"
            if not gen.exists():
                subprocess.run(
                    ["pointcalo", "sample", str(run / "checkpoint.pt"), "--energies-from", ref,
                     "-o", str(gen), "--seed", "1", "-q"], check=True,
                )  # fmt: skip
            table[f"{mode}_{n}"] = {"mode": mode, "n_train": n, "generated": str(gen)}
    files = [t["generated"] for t in table.values()]
    for grid in grids:
        out = Path(args.out) / f"compare_{Path(ref).stem}_{Path(grid).stem}"
        subprocess.run(
            ["pointcalo", "compare", "--reference", ref, "--generated", *files,
             "--labels", ",".join(table), "--grid", grid, "--extra-grids", "none",
             "--out", str(out), "-q"], check=True,
        )  # fmt: skip
        result = json.loads((out / "compare.json").read_text())
        for label in table:
            table[label][grid] = result.get("models", result).get(label, {})
    (Path(args.out) / f"table_{Path(ref).stem}.json").write_text(json.dumps(table, indent=1))
    print(json.dumps({k: {g: v.get(g, {}).get("auc") for g in grids} for k, v in table.items()}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/caloclouds_calogan.yaml")
    p.add_argument("--sizes", default="100,1125", type=lambda s: [int(x) for x in s.split(",")])
    p.add_argument("--modes", default="scratch,finetune,bitfit", type=lambda s: s.split(","))
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--out", default="runs/transfer")
    p.add_argument("--evaluate", action="store_true")
    p.add_argument("--reference", default="runs/split_calogan/val.h5")
    p.add_argument("--grids", default="calogan")
    args = p.parse_args(argv)
    evaluate_all(args) if args.evaluate else train_all(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
