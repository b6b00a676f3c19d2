"""Commands that measure fidelity: one generated file, or several side by side on every view. Each
command's options and its thin call into the library (``register`` adds them to the parser)."""

from __future__ import annotations

import argparse

from pointcalo.commands.common import (
    COUNT,
    SEED,
    THRESHOLD,
    quiet,
)
from pointcalo.errors import PointcaloError
from pointcalo.io.atomic import atomic_folder


def cmd_evaluate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pointcalo.metrics.files import evaluate_files
    from pointcalo.metrics.report import markdown_table

    console = Console(stderr=True, quiet=args.quiet, log_path=False)
    with (
        atomic_folder(args.out, marker="metrics.json") as out,
        console.status("computing observables") as status,
    ):

        def log(msg: str) -> None:
            status.update(msg)
            console.log(msg)

        metrics = evaluate_files(
            args.reference, args.generated, grid=args.grid, threshold=args.threshold,
            batches=args.batches, seed=args.seed, out=out, alignment=args.alignment,
            voxel_classifier=args.voxel_classifier, train=args.train, log=log,
            max_showers=args.max_showers, **_point_classifier_options(args),
        )  # fmt: skip
    if not args.quiet:
        print(markdown_table(metrics))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pointcalo.metrics.bins import bins_table, parse_by
    from pointcalo.metrics.compare import headline_table
    from pointcalo.metrics.files import compare_files

    speed = {}
    for item in args.speed or []:
        label, _, value = item.partition("=")
        try:
            speed[label] = float(value)
        except ValueError:
            raise PointcaloError(f"--speed: expected LABEL=showers_per_s, got {item!r}") from None
    console = Console(stderr=True, quiet=args.quiet, log_path=False)
    by = parse_by(args.by) if args.by else None
    with atomic_folder(args.out, marker="compare.json") as out:
        result = compare_files(
            args.reference, args.generated, labels=args.labels.split(",") if args.labels else None,
            speed=speed, grid=args.grid, threshold=args.threshold, batches=args.batches,
            seed=args.seed, out=out, alignments=[a for a in args.alignments.split(",") if a],
            extra_grids=args.extra_grids, voxel_classifier=args.voxel_classifier, train=args.train,
            log=console.log, by=by, max_showers=args.max_showers,
            **_point_classifier_options(args),
        )  # fmt: skip
    if not args.quiet:
        print(headline_table(result))
        if "by" in result:
            print("\n" + bins_table(result["by"]))
        print("\n".join(["", *(f"- {v['text']}" for v in result["verdicts"].values())]))
    return 0


def cmd_amplify(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pointcalo.metrics.amplification import markdown_report
    from pointcalo.metrics.files import amplify_files

    if (args.generated is None) == (args.model is None):
        raise PointcaloError("amplify: give --generated FILE or --model NAME, one of them")
    console = Console(stderr=True, quiet=args.quiet, log_path=False)
    observables = [v for v in args.observables.split(",") if v]
    if args.n_train is None and args.model is None:
        raise PointcaloError("--n-train: give the number of showers the model was trained on")
    with atomic_folder(args.out, marker="amplify.json") as out:
        generated, n_train = args.generated, args.n_train
        if args.model is not None:
            generated = str(out / "generated.h5")
            log = console.log
            trained = _sample_like(args.model, args.truth, args.n, args.seed, generated, log)
            n_train = n_train or trained
            if not n_train:
                raise PointcaloError(
                    f"--n-train: {args.model} does not record its training showers; give it"
                )
        report = amplify_files(
            args.truth, generated, n_train, pool=args.pool, observables=observables,
            grid=args.grid, threshold=args.threshold, bins=args.bins, boots=args.bootstrap,
            seed=args.seed, out=out, label=args.model, max_showers=args.max_showers,
            log=console.log,
        )  # fmt: skip
    if not args.quiet:
        print(markdown_report(report))
    return 0


def _sample_like(model: str, truth: str, n: int, seed: int, path: str, log) -> int:
    """``n`` showers of ``model`` into ``path`` at incident energies drawn (with replacement)
    from those of ``truth``, so both samples share one energy spectrum; returns the number of
    showers it was trained on (its meta's ``n_train``; 0 when it does not say)."""
    import numpy as np
    import torch

    from pointcalo import io
    from pointcalo.generation import generate_to_file, load_model

    loaded = load_model(model, "cpu")
    energy = io.read_fields(truth, ["incident_energy"], "--truth")["incident_energy"]
    energies = np.random.default_rng(seed).choice(energy, n)
    log(f"sampling {n} showers of {model} at the energies of {truth}")
    with io.open_writer(path) as writer, torch.no_grad():
        generate_to_file(loaded, writer, n, conditions=energies, seed=seed)
    return int(loaded.meta.get("n_train") or 0)


def _point_classifier_options(args: argparse.Namespace) -> dict:
    from pointcalo.metrics.files import PointClassifierInput

    if not args.point_classifier:
        return {}
    n, mode = args.point_classifier_points, args.point_classifier_mode
    return {"point_classifier": PointClassifierInput(n, mode)}


def _add_scoring_args(p: argparse.ArgumentParser, out: str) -> None:
    """The options evaluate and compare share: the grid and threshold of the observables,
    batches and seed, the output folder, the cap on showers, and the optional classifiers."""
    from pointcalo.metrics.observables import MAX_SHOWERS

    p.add_argument("--grid", default="ild", help="grid of the observables (preset or file)")
    p.add_argument("--threshold", type=THRESHOLD, default=0.1, help="cell threshold in MeV")
    p.add_argument("--batches", type=COUNT, default=5, help="batches for uncertainties")
    p.add_argument("--seed", type=SEED, default=0, help="random seed of the classifier and views")
    p.add_argument("--out", default=out, help="output folder")
    p.add_argument(
        "--max-showers",
        type=SEED,
        default=MAX_SHOWERS,
        help="evaluate a fixed random subset of this many showers of a larger file (bounds "
        "memory and time; 0: all)",
    )
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

    p = sub.add_parser(
        "amplify",
        help="how many Geant4 showers a generated sample is worth, per observable "
        "(statistical amplification): amplify.json, amplify.md, plots",
    )
    p.add_argument("--truth", required=True, help="Geant4 showers the model never saw")
    p.add_argument("--generated", default=None, help="the generated shower file")
    p.add_argument("--model", default=None, help="or a model (name or checkpoint) to sample")
    p.add_argument("--n", type=COUNT, default=20_000, help="showers to sample with --model")
    p.add_argument(
        "--n-train",
        type=COUNT,
        default=None,
        help="showers the model was trained on (N; with --model, default: its record)",
    )
    p.add_argument("--pool", default=None, help="other unseen Geant4 showers: Geant4 curves")
    p.add_argument(
        "--observables",
        default="e_ratio,cog_z,width,n_hits,layer_energy",
        help="comma-separated scalars of the evaluation, or layer_energy (one per layer)",
    )
    p.add_argument("--grid", default="ild", help="grid of the observables (preset or file)")
    p.add_argument("--threshold", type=THRESHOLD, default=0.1, help="cell threshold in MeV")
    p.add_argument("--bins", type=COUNT, default=20, help="quantile bins of the truth")
    p.add_argument("--bootstrap", type=COUNT, default=100, help="bootstrap resamplings")
    p.add_argument("--seed", type=SEED, default=0, help="random seed (sampling, bootstrap)")
    p.add_argument("--max-showers", type=SEED, default=50_000, help="as in evaluate")
    p.add_argument("--out", default="runs/amplify", help="output folder")
    quiet(p)
    p.set_defaults(func=cmd_amplify)
