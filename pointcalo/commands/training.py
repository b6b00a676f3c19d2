"""Commands that train: a model from a config, a consistency student from its teacher. Each
command's options and its thin call into the library (``register`` adds them to the parser)."""

from __future__ import annotations

import argparse

from pointcalo.commands.common import COUNT, quiet
from pointcalo.errors import PointcaloError


def cmd_train(args: argparse.Namespace) -> int:
    from pointcalo.config import load_config
    from pointcalo.train.engine import train

    cfg = load_config(args.config)
    overrides: dict[str, dict] = {"data": {}, "train": {}}
    if args.data is not None:
        overrides["data"]["path"] = args.data
    if args.steps is not None:
        overrides["train"]["steps"] = args.steps
    if args.out is not None:
        overrides["train"]["out"] = args.out
    if args.device is not None:
        overrides["train"]["device"] = args.device
    if args.init_from is not None:
        overrides["train"]["init_from"] = args.init_from
    for name in ("init_mode", "freeze"):
        if getattr(args, name) is not None:
            overrides["train"][name] = getattr(args, name)
    cfg = cfg.with_overrides(**overrides)
    path = train(cfg, resume=args.resume, progress=not args.quiet)
    if int(__import__("os").environ.get("RANK", "0")) == 0 and not args.quiet:
        print(f"checkpoint: {path}")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from pointcalo.config import load_config
    from pointcalo.train.engine import train

    cfg = load_config(args.config)
    if cfg.model.name != "consistency":
        raise PointcaloError(f"{args.config}: model.name must be consistency for distill")
    train_over = {k: v for k, v in (("steps", args.steps), ("out", args.out)) if v is not None}
    cfg = cfg.with_overrides(
        model={"teacher": args.teacher},
        data={"path": args.data} if args.data else {},
        train=train_over,
    )
    path = train(cfg, resume=args.resume, progress=not args.quiet)
    if not args.quiet:
        print(f"checkpoint: {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config (configs/*.yaml)")
    p.add_argument("config", help="YAML run config, or a preset's name ('pointcalo configs')")
    p.add_argument("--data", default=None, help="training file (overrides data.path)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--steps", type=COUNT, default=None, help="override train.steps")
    p.add_argument("--out", default=None, help="override train.out")
    p.add_argument(
        "--device", default=None, choices=["auto", "cpu", "cuda"], help="override train.device"
    )
    p.add_argument(
        "--init-from",
        default=None,
        help="start from the weights of this checkpoint or shipped model (train.init_from)",
    )
    p.add_argument(
        "--init-mode",
        default=None,
        choices=["finetune", "transfer"],
        help="with --init-from: 'transfer' for a new detector (its own normalisation; "
        "tensors of other shapes start afresh) (train.init_mode)",
    )
    p.add_argument(
        "--freeze",
        default=None,
        choices=["none", "bitfit"],
        help="with --init-from: 'bitfit' trains only the loaded biases and gains, and what "
        "was not loaded (train.freeze)",
    )
    quiet(p)
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("distill", help="consistency-distil a CaloClouds teacher")
    p.add_argument("teacher", help="teacher checkpoint (caloclouds)")
    p.add_argument("config", help="e.g. configs/consistency.yaml")
    p.add_argument("--data", default=None, help="training file (the teacher's data)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--steps", type=COUNT, default=None, help="override train.steps")
    p.add_argument("--out", default=None, help="override train.out")
    quiet(p)
    p.set_defaults(func=cmd_distill)
