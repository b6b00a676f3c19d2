"""Commands that show what pointcalo ships and run its main job. Each command's options and its
thin call into the library (``register`` adds them to the parser)."""

from __future__ import annotations

import argparse

from pointcalo.commands.common import COUNT, SEED


def cmd_configs(args: argparse.Namespace) -> int:
    from pointcalo.config import PRESETS_DIR, presets

    for name in presets():
        first = (PRESETS_DIR / f"{name}.yaml").read_text().splitlines()[:1]
        about = first[0].lstrip("# ").strip() if first and first[0].startswith("#") else ""
        print(f"{name:24s} {about}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from pointcalo import pretrained
    from pointcalo.console import print_models
    from pointcalo.models import registry

    if args.json:
        import json

        cards = {n: pretrained.card(n) for n in pretrained.available()}
        print(json.dumps({"families": registry.names(), "pretrained": cards}, indent=2))
    else:
        print_models()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pointcalo.demo import run_demo

    run_demo(
        args.out, data=args.data, n_showers=args.n, seed=args.seed,
        train_steps=args.train_steps, n_reference=args.reference_showers,
        all_models=args.all_models,
    )  # fmt: skip
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "configs", help="list the preset configs ('pointcalo train NAME' trains one)"
    )
    p.set_defaults(func=cmd_configs)
    p = sub.add_parser("models", help="list the shipped pretrained models and model families")
    p.add_argument("--json", action="store_true", help="model cards as JSON")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser(
        "demo",
        help="run the main job on the built-in default data",
        description="Run the main job: simulate showers, convert and voxelize them, then "
        "sample the shipped pretrained models, a frozen-shower library and the simulator at "
        "the energies of Geant4 test showers no model saw, score them under the evaluation "
        "protocol, and write a report with a verdict for each.",
    )
    p.add_argument("--out", default="runs/demo", help="output directory")
    p.add_argument("--data", default=None, help="shower file (default: simulate showers)")
    p.add_argument("--n", type=COUNT, default=1000, help="showers to simulate without --data")
    p.add_argument("--seed", type=SEED, default=1, help="seed of the simulation")
    p.add_argument(
        "--train-steps",
        type=SEED,
        default=0,
        help="also train a small EPiC-GAN for this many steps and evaluate it (default: 0, skip)",
    )
    p.add_argument(
        "--reference-showers",
        type=COUNT,
        default=900,
        help="Geant4 test showers to score against (default: 900, enough to resolve 0.05 in AUC)",
    )
    p.add_argument(
        "--all-models",
        action="store_true",
        help="also sample the shipped models that are slow on a CPU (the diffusion teacher)",
    )
    p.set_defaults(func=cmd_demo)
