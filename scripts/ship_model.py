"""Ship a trained model inside the package: ``pointcalo/pretrained/<name>.pt`` + model card.

The shipped file keeps only what sampling (and further training with ``--resume``, with fresh
optimiser moments) needs: config, step, CPU time, weights, EMA weights, normalisation, meta;
optimiser and RNG states are dropped. The card (``<name>.json``) records the training data and
split, steps, CPU-hours, the test metrics of a ``pointcalo compare`` run beside the floor and
the baselines, and the measured speed.

    python scripts/ship_model.py runs/caloclouds_ild/checkpoint.pt ild-photon-cc \\
        --compare runs/test_compare/compare.json --label teacher --description "..."
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

KEEP = ("config", "step", "cpu_s", "model", "ema", "normalizer", "meta")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("name")
    ap.add_argument("--compare", help="compare.json with this model's test metrics")
    ap.add_argument("--label", help="the model's label in compare.json")
    ap.add_argument("--description", default="")
    ap.add_argument("--dataset", default="Geant4 ILD photons, train split")
    ap.add_argument(
        "--data",
        default="Geant4 ILD-like Si-W ECAL photons, 10-90 GeV (shared g4_ild_photons.h5), "
        "train split of configs/splits/g4_ild_photons.json (seed 0, 0.75/0.10/0.15)",
    )
    ap.add_argument(
        "--detector", default="ild", help="the detector it simulates (the demo scores 'ild' ones)"
    )
    ap.add_argument("--sampler", default=None, help="sampler the metrics were made with")
    ap.add_argument(
        "--compute", default=None, help="what it was trained on, e.g. '22 min on one H100'"
    )
    args = ap.parse_args()

    from pointcalo.checkpoint import load_checkpoint, save_checkpoint
    from pointcalo.io.atomic import write_json
    from pointcalo.pretrained import PRETRAINED_DIR

    state = load_checkpoint(args.checkpoint)
    slim = {k: state[k] for k in KEEP if k in state}
    out = save_checkpoint(PRETRAINED_DIR / f"{args.name}.pt", slim)
    cfg = state["config"]
    card = {
        "name": args.name,
        "family": cfg["model"]["name"],
        "description": args.description,
        "dataset": args.dataset,
        "detector": args.detector,
        "data": args.data,
        # the named conditions beside the incident energy and their training ranges
        "conditions": state["meta"].get("conditions"),
        "steps": int(state["step"]),
        # on a GPU the process's CPU seconds say nothing of the compute: --compute does
        "cpu_hours": None
        if cfg["train"]["device"] == "cuda"
        else float(state.get("cpu_s", 0.0)) / 3600,
        "compute": args.compute,
        "config": cfg,
        "meta": {k: v for k, v in state["meta"].items() if k != "teacher_config"},
        "size_bytes": out.stat().st_size,
        "sampler": args.sampler,
        # loading by name checks the file against this (pointcalo.generation.load_model)
        "checksum": load_checkpoint(out)["checksum"],
    }
    if args.compare:
        cmp = json.loads(Path(args.compare).read_text())
        row = cmp["samples"][args.label]
        card["metrics"] = {
            "reference": f"test split ({cmp['n_reference']} showers)",
            "classifier_auc": row["classifier_auc"],
            "w1_over_floor": row["w1_over_floor"],
            "memorisation_ratio": row["memorisation_ratio"],
            **{
                k: row[k]
                for k in ("point_classifier_auc", "voxel_classifier_auc", "separation_power")
                if k in row
            },
            "floor_auc": cmp["floor"]["classifier_auc"],
            "baselines": {
                k: {"classifier_auc": v["classifier_auc"], "w1_over_floor": v["w1_over_floor"]}
                for k, v in cmp["samples"].items()
                if k != args.label
            },
        }
        if row.get("showers_per_s"):
            card["speed"] = {"showers_per_s": row["showers_per_s"], "device": "1 CPU core"}
    write_json(card, PRETRAINED_DIR / f"{args.name}.json")
    print(f"shipped {out} ({out.stat().st_size / 1e6:.1f} MB) and its card")


if __name__ == "__main__":
    main()
