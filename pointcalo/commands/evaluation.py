"""Commands that measure fidelity: one generated file, or several side by side on every view. Each
command's options and its thin call into the library (``register`` adds them to the parser)."""

from __future__ import annotations

import argparse

from pointcalo.commands.common import (
    COUNT,
    SEED,
    THRESHOLD,
    PointcaloError,
    check_out_folder,
    quiet,
)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pointcalo.metrics.files import evaluate_files
    from pointcalo.metrics.report import markdown_table

    console = Console(stderr=True, quiet=args.quiet, log_path=False)
    check_out_folder(args.out)
    with console.status("computing observables") as status:

        def log(msg: str) -> None:
            status.update(msg)
            console.log(msg)

        metrics = evaluate_files(
            args.reference, args.generated, grid=args.grid, threshold=args.threshold,
            batches=args.batches, seed=args.seed, out=args.out, alignment=args.alignment,
            voxel_classifier=args.voxel_classifier, train=args.train, log=log,
            **_point_classifier_options(args),
        )  # fmt: skip
    if not args.quiet:
        print(markdown_table(metrics))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pointcalo.metrics.bins import bins_table, parse_by
    from pointcalo.metrics.compare import headline_table
    from pointcalo.metrics.files import compare_files

    check_out_folder(args.out)
    speed = {}
    for item in args.speed or []:
        label, _, value = item.partition("=")
        try:
            speed[label] = float(value)
        except ValueError:
            raise PointcaloError(f"--speed: expected LABEL=showers_per_s, got {item!r}") from None
    console = Console(stderr=True, quiet=args.quiet, log_path=False)
    result = compare_files(
        args.reference, args.generated, labels=args.labels.split(",") if args.labels else None,
        speed=speed, grid=args.grid, threshold=args.threshold, batches=args.batches,
        seed=args.seed, out=args.out, alignments=[a for a in args.alignments.split(",") if a],
        extra_grids=args.extra_grids, voxel_classifier=args.voxel_classifier, train=args.train,
        log=console.log, by=parse_by(args.by) if args.by else None,
        **_point_classifier_options(args),
    )  # fmt: skip
    if not args.quiet:
        print(headline_table(result))
        if "by" in result:
            print("\n" + bins_table(result["by"]))
        print("\n".join(["", *(f"- {v['text']}" for v in result["verdicts"].values())]))
    return 0


def _point_classifier_options(args: argparse.Namespace) -> dict:
    from pointcalo.metrics.files import PointClassifierInput

    if not args.point_classifier:
        return {}
    n, mode = args.point_classifier_points, args.point_classifier_mode
    return {"point_classifier": PointClassifierInput(n, mode)}


def _add_scoring_args(p: argparse.ArgumentParser, out: str) -> None:
    """The options evaluate and compare share: the grid and threshold of the observables,
    batches and seed, the output folder, and the optional classifiers."""
    p.add_argument("--grid", default="ild", help="grid of the observables (preset or file)")
    p.add_argument("--threshold", type=THRESHOLD, default=0.1, help="cell threshold in MeV")
    p.add_argument("--batches", type=COUNT, default=5, help="batches for uncertainties")
    p.add_argument("--seed", type=SEED, default=0, help="random seed of the classifier and views")
    p.add_argument("--out", default=out, help="output folder")
    p.add_argument(
        "--voxel-classifier",
        action="store_true",
        help="also train the classifier on the voxels (slow on large grids)",
    )
    p.add_argument(
        "--point-classifier",
        action="store_true",
        help="also train a graph network (EdgeConv) on the raw points of the showers",
    )
    p.add_argument(
        "--point-classifier-points",
        type=COUNT,
        default=256,
        help="points per shower for the point classifier",
    )
    p.add_argument(
        "--point-classifier-mode",
        choices=("core", "uniform"),
        default="core",
        help="which points: those nearest the shower axis (whole neighbourhoods) or uniform",
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="compare generated with reference showers: metrics.json, summary.md, plots",
    )
    p.add_argument("--reference", required=True, help="shower file or CaloChallenge voxel file")
    p.add_argument("--generated", required=True, help="shower file or CaloChallenge voxel file")
    _add_scoring_args(p, "runs/evaluate")
    p.add_argument(
        "--alignment",
        choices=("centred", "half-cell", "random"),
        default="centred",
        help="where the grid sits relative to the shower axis ('pointcalo compare' does all)",
    )
    p.add_argument(
        "--train",
        default=None,
        help="the model's training showers: adds the memorisation check (distances to the "
        "nearest training shower, generated vs reference)",
    )
    quiet(p)
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("compare", help="several generated files against one reference on one table")
    p.add_argument("--reference", required=True, help="shower file or CaloChallenge voxel file")
    p.add_argument("--generated", required=True, nargs="+", help="files to compare")
    p.add_argument("--labels", default=None, help="comma-separated labels of the files")
    p.add_argument("--train", default=None, help="training showers: memorisation ratio")
    p.add_argument("--speed", nargs="*", help="LABEL=showers_per_s to show beside")
    _add_scoring_args(p, "runs/compare")
    p.add_argument(
        "--alignments",
        default="centred,half-cell,random",
        help="grid alignments to the shower axis, comma-separated (the headline is the worst)",
    )
    p.add_argument(
        "--by",
        default=None,
        help="also compare per bin of a per-shower field, e.g. theta=0,0.26,0.52,0.79 (rad) "
        "or incident_energy=10000,50000,90000 (MeV)",
    )
    p.add_argument(
        "--extra-grids",
        default="auto",
        help="further grids (comma-separated presets or files; 'auto': ild-cylindrical beside "
        "ild; 'none')",
    )
    quiet(p)
    p.set_defaults(func=cmd_compare)
