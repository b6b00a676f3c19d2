"""The ``pointcalo`` command: thin, it parses arguments and calls the library.

Errors a user can cause print one line (``error: <file>: <field>: <problem>``) and exit with
code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from pointcalo.errors import PointcaloError


def _cmd_info(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from pointcalo import io
    from pointcalo.showers import summary

    showers = io.read(args.file)
    s = summary(showers)
    if args.json:
        import json

        print(json.dumps(s, indent=2))
        return 0
    table = Table(title=str(args.file), show_header=True)
    table.add_column("quantity")
    table.add_column("min", justify="right")
    table.add_column("mean", justify="right")
    table.add_column("max", justify="right")
    table.add_row("showers", "", str(s["n_showers"]), "")
    table.add_row("points", "", str(s["n_points"]), "")
    for key, label, scale in [
        ("points_per_shower", "points per shower", 1.0),
        ("incident_energy_MeV", "incident energy [GeV]", 1e-3),
        ("visible_energy_MeV", "visible energy [GeV]", 1e-3),
        ("point_energy_MeV", "point energy [MeV]", 1.0),
    ]:
        v = s[key]
        table.add_row(label, *(f"{v[k] * scale:.4g}" for k in ("min", "mean", "max")))
    r = s["evis_over_einc"]
    table.add_row("E_vis/E_inc", "", f"{r['mean']:.4f} ± {r['std']:.4f}", "")
    table.add_row(
        "layers",
        str(s["layers"][0]) if s["layers"] else "",
        "",
        str(s["layers"][1]) if s["layers"] else "",
    )
    table.add_row("point fields", "", ", ".join(s["point_fields"]), "")
    table.add_row("shower fields", "", ", ".join(s["shower_fields"]), "")
    Console().print(table)
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from pointcalo import io

    options = {"collections": args.collections, "encoding": args.encoding}
    with io.open_reader(args.input, **options) as reader:
        total = reader.n_showers
    with Progress(transient=True, disable=args.quiet) as progress:
        task = progress.add_task("converting", total=total)
        n = io.convert(
            args.input,
            args.output,
            chunk_size=args.chunk_size,
            progress=lambda done: progress.update(task, completed=done),
            **options,
        )
    if not args.quiet:
        print(f"wrote {n} showers to {args.output}")
    return 0


def _cmd_voxelize(args: argparse.Namespace) -> int:
    import numpy as np
    from rich.progress import Progress

    import voxelize
    from pointcalo import io
    from pointcalo.errors import ShowerFormatError
    from voxelize.calochallenge_files import CaloChallengeWriter

    grid = _grid("--grid", args.grid)
    layer_map = None
    if args.layer_map == "depth":
        layer_map = "depth"
    elif args.layer_map is not None:
        try:
            layer_map = np.array([int(v) for v in args.layer_map.split(",")])
        except ValueError:
            raise ShowerFormatError(
                None, "--layer-map", f"expected 'depth' or comma-separated ints: {args.layer_map}"
            ) from None
    source_depth = None
    if args.source_depth is not None:
        source_depth = _grid("--source-depth", args.source_depth).layer_depth
    inside = outside = 0.0
    with io.open_reader(args.input) as reader, Progress(transient=True, disable=args.quiet) as bar:
        file_depth = (getattr(reader, "attrs", {}) or {}).get("layer_depth_mm")
        if layer_map is None and file_depth is not None and len(file_depth) != grid.n_layers:
            # layer i of the file is not layer i of the grid: map by depth when both are known
            if grid.layer_depth is None:
                raise ShowerFormatError(
                    args.input, "layer_depth_mm", f"{len(file_depth)} layers, grid "
                    f"'{grid.name}' has {grid.n_layers} and no depths: give --layer-map"
                )  # fmt: skip
            layer_map, source_depth = "depth", np.asarray(file_depth, np.float64)
            if not args.quiet:
                print(
                    f"the file's {len(file_depth)} layers go to the {grid.n_layers} layers of "
                    f"'{grid.name}' by depth (its layer_depth_mm; --layer-map to choose)"
                )
        task = bar.add_task("voxelizing", total=reader.n_showers)
        attrs = {"grid": grid.name, "source": str(args.input), "units": "MeV"}
        with CaloChallengeWriter(args.output, grid.n_voxels, attrs=attrs) as writer:
            for chunk in reader.iter_chunks(args.chunk_size):
                try:
                    proj = voxelize.project(
                        chunk, grid, layer_map=layer_map, source_depth=source_depth
                    )
                except voxelize.GridError as err:
                    raise ShowerFormatError(args.input, None, str(err)) from None
                writer.write(np.asarray(chunk.incident_energy), proj.voxels)
                inside += float(proj.voxels.sum(dtype=np.float64))
                outside += float(proj.outside.sum(dtype=np.float64))
                bar.update(task, completed=writer.n_showers)
    if not args.quiet:
        frac = outside / max(inside + outside, 1e-300)
        print(
            f"wrote {writer.n_showers} showers x {grid.n_voxels} voxels ({grid.name}) to "
            f"{args.output}; energy outside the grid: {100 * frac:.3f} %"
        )
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pointcalo.metrics.report import evaluate, load_observables, markdown_table

    console = Console(stderr=True, quiet=args.quiet)
    _check_out_folder(args.out)
    grid = _grid("--grid", args.grid)
    with console.status("computing observables") as status:

        def log(msg: str) -> None:
            status.update(msg)
            console.log(msg)

        keep = args.voxel_classifier
        lattice = None
        if args.alignment != "centred":
            from pointcalo.metrics.alignment import file_lattice

            lattice = file_lattice(args.reference, grid)
        view = {"alignment": args.alignment, "alignment_seed": args.seed, "lattice": lattice}
        ref = load_observables(args.reference, grid, args.threshold, log, keep_voxels=keep, **view)
        gen = load_observables(args.generated, grid, args.threshold, log, keep_voxels=keep, **view)
        train = None
        if args.train is not None:
            train = load_observables(args.train, grid, args.threshold, log)
        points = None
        if args.point_classifier:  # torch and torch-geometric only when asked for
            from pointcalo.metrics.point_classifier import point_sample_file

            points = tuple(
                point_sample_file(
                    path, args.point_classifier_points, args.seed, mode=args.point_classifier_mode
                )
                for path in (args.reference, args.generated)
            )
        metrics = evaluate(
            ref,
            gen,
            grid=grid,
            threshold=args.threshold,
            k=args.batches,
            seed=args.seed,
            out=args.out,
            log=log,
            labels=(args.reference, args.generated),
            train=train,
            points=points,
        )
    if not args.quiet:
        print(markdown_table(metrics))
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pointcalo.metrics.alignment import ALIGNMENTS, file_lattice
    from pointcalo.metrics.compare import compare_views, headline_table
    from pointcalo.metrics.report import load_observables, voxel_file_grid

    _check_out_folder(args.out)
    labels = args.labels.split(",") if args.labels else list(args.generated)
    if len(labels) != len(args.generated):
        raise PointcaloError(f"--labels: {len(labels)} labels for {len(args.generated)} files")
    if len(set(labels)) != len(labels):
        raise PointcaloError(f"--labels: each label must be unique, got {','.join(labels)}")
    speed = {}
    for item in args.speed or []:
        label, _, value = item.partition("=")
        try:
            speed[label] = float(value)
        except ValueError:
            raise PointcaloError(f"--speed: expected LABEL=showers_per_s, got {item!r}") from None
    grid = _grid("--grid", args.grid)
    alignments = [a for a in args.alignments.split(",") if a]
    bad = [a for a in alignments if a not in ALIGNMENTS]
    if bad or not alignments:
        raise PointcaloError(f"--alignments: '{args.alignments}': use {','.join(ALIGNMENTS)}")
    extra = args.extra_grids
    if extra == "auto":
        extra = "ild-cylindrical" if grid.name == "ild" else "none"
    extra_grids = [] if extra == "none" else [_grid("--extra-grids", g) for g in extra.split(",")]
    console = Console(stderr=True, quiet=args.quiet)
    keep = args.voxel_classifier
    ref_voxels = voxel_file_grid(args.reference) is not None
    if ref_voxels:
        alignments, extra_grids = ["centred"], []
    lattice = None
    if alignments != ["centred"]:
        lattice = file_lattice(args.reference, grid)
        console.log(
            f"random alignment on the data lattice of {lattice:.4g} mm"
            if lattice
            else "random alignment: continuous offsets (the reference is on no lattice)"
        )
    plan = [(f"{grid.name}, {a}", grid, a) for a in alignments]
    plan += [(g.name, g, "centred") for g in extra_grids]
    kinds = {
        label: voxel_file_grid(path) for label, path in zip(labels, args.generated, strict=True)
    }
    views = {}
    for view, g, alignment in plan:
        console.log(f"observables on view '{view}'")

        def load(path: str, g=g, alignment=alignment):
            return load_observables(
                path,
                g,
                args.threshold,
                console.log,
                keep_voxels=keep,
                alignment=alignment,
                alignment_seed=args.seed,
                lattice=lattice,
                point_structure=alignment == "centred" and g is grid,
            )

        samples = {}
        for label, path in zip(labels, args.generated, strict=True):
            on = kinds[label]
            if on is None or (alignment == "centred" and on in ("", g.name)):
                samples[label] = load(path)
        if samples:
            views[view] = (load(args.reference), samples)
    if not views:
        raise PointcaloError("compare: no generated file can be evaluated on --grid")
    train = None
    if args.train:
        train = load_observables(args.train, grid, args.threshold, point_structure=False)
    points = None
    if args.point_classifier:
        from pointcalo.metrics.point_classifier import point_sample_file

        n_pts = args.point_classifier_points
        mode = args.point_classifier_mode
        points = {"reference": point_sample_file(args.reference, n_pts, args.seed, mode=mode)}
        for label, path in zip(labels, args.generated, strict=True):
            if kinds[label] is None:
                points[label] = point_sample_file(path, n_pts, args.seed, mode=mode)
    result = compare_views(
        views,
        train=train,
        k=args.batches,
        seed=args.seed,
        speed=speed,
        out=args.out,
        log=console.log,
        points=points,
    )
    if not args.quiet:
        print(headline_table(result))
    return 0


def _add_point_classifier_args(p: argparse.ArgumentParser) -> None:
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


def _grid(option: str, spec: str):
    """The voxelize grid an option names; an unknown grid is a one-line error naming it."""
    import voxelize

    try:
        return voxelize.load_grid(spec)
    except voxelize.GridError as err:
        raise PointcaloError(f"{option}: {err}") from None


def _check_out_folder(out: str) -> None:
    from pathlib import Path

    if Path(out).exists() and not Path(out).is_dir():
        raise PointcaloError(f"--out: {out} exists and is not a folder")


def parse_energy(text: str) -> float | tuple[float, float]:
    """'10:90' (GeV, uniform) or '50' (GeV) -> MeV; energies positive and finite, low < high."""
    import math

    try:
        parts = [float(v) * 1e3 for v in text.split(":")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2):
        raise PointcaloError(f"--energy: expected GeV as '50' or '10:90', got {text!r}")
    if not all(math.isfinite(v) and v > 0 for v in parts):
        raise PointcaloError(f"--energy: energies must be positive and finite, got {text!r}")
    if len(parts) == 2 and parts[0] >= parts[1]:
        raise PointcaloError(f"--energy: the low energy must be below the high one, got {text!r}")
    return parts[0] if len(parts) == 1 else (parts[0], parts[1])


def _number(kind: type, low: float, strict: bool, what: str):
    """An argparse type: a finite number of ``kind`` above ``low`` (or at least, not strict)."""
    import math

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        ok = math.isfinite(value) and (value > low if strict else value >= low)
        if not ok:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return convert


COUNT = _number(int, 0, True, "a whole number > 0")
SEED = _number(int, 0, False, "a whole number >= 0")
THRESHOLD = _number(float, 0.0, False, "a number >= 0 (MeV)")


def _cmd_simulate(args: argparse.Namespace) -> int:
    import json

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from pointcalo import io
    from pointcalo.simulate import ShowerSimulator
    from pointcalo.simulate.simulator import MAX_ENERGY

    energy = parse_energy(args.energy)
    if max(energy if isinstance(energy, tuple) else (energy,)) > MAX_ENERGY:
        raise PointcaloError(
            f"--energy: {args.energy} GeV is above the simulator's limit of "
            f"{MAX_ENERGY / 1e3:g} GeV (it is calibrated at 10-90 GeV)"
        )
    sim = ShowerSimulator()
    attrs = {
        "particle": args.particle,
        "seed": args.seed,
        "energy_MeV": json.dumps(energy),
        "simulation": "pointcalo parametrised simulator (GFlash, calibrated on Geant4)",
        "simulator": json.dumps(sim.describe()),
    }
    columns = (
        *Progress.get_default_columns()[:1],
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with (
        Progress(*columns, disable=args.quiet) as bar,
        io.open_writer(
            args.output, **({"attrs": attrs} if io.format_of(args.output) == "hdf5" else {})
        ) as writer,
    ):
        task = bar.add_task(f"simulating {args.particle}s", total=args.n)
        for chunk in sim.iter_simulate(args.n, energy, args.particle, args.seed):
            writer.write(chunk)
            bar.update(task, completed=writer.n_showers)
    if not args.quiet:
        print(f"wrote {args.n} {args.particle} showers to {args.output}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
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
    cfg = cfg.with_overrides(**overrides)
    path = train(cfg, resume=args.resume, progress=not args.quiet)
    if int(__import__("os").environ.get("RANK", "0")) == 0 and not args.quiet:
        print(f"checkpoint: {path}")
    return 0


def _cmd_distill(args: argparse.Namespace) -> int:
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


def _cmd_sample(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from pointcalo import io
    from pointcalo.clouds import CPU_BATCH
    from pointcalo.models.generate import generate_to_file, load_model, shard
    from pointcalo.train.engine import resolve_device

    device = resolve_device(args.device)
    batch_size = args.batch_size or (1024 if device.type == "cuda" else CPU_BATCH)
    if args.energies_from is None and args.n is None:
        args.n = 1000
    loaded = load_model(args.checkpoint, device)
    normalizer = loaded.normalizer
    energy = parse_energy(args.energy)
    lo, hi = (energy, energy) if isinstance(energy, float) else energy
    if normalizer.spec.condition != "incident_energy":
        lo, hi = lo / 1e3, hi / 1e3  # jets: --energy is the jet pt in GeV
    conditions = None
    if args.energies_from is not None:
        import numpy as np

        with io.open_reader(args.energies_from) as reader:
            chunks = [np.asarray(c.incident_energy, np.float64) for c in reader.iter_chunks(65536)]
        if not chunks or sum(len(c) for c in chunks) == 0:
            raise PointcaloError(f"--energies-from: {args.energies_from} holds no showers")
        conditions = np.concatenate(chunks)
        if args.n is not None:
            raise PointcaloError("--n: give either --n or --energies-from (which sets the count)")
        args.n = len(conditions)
        lo, hi = float(conditions.min()), float(conditions.max())
        args.energy = f"{lo / 1e3:g}:{hi / 1e3:g}"
    known = loaded.meta.get("condition_range")
    margin = 0.05 * (known[1] - known[0]) if known else 0.0  # a sample's edges, not physics
    if (
        known
        and not args.allow_extrapolation
        and (lo < known[0] - margin or hi > known[1] + margin)
    ):
        scale = 1e-3 if normalizer.spec.condition == "incident_energy" else 1.0
        raise PointcaloError(
            f"--energy: {args.energy} GeV lies outside the model's training range "
            f"{known[0] * scale:.4g}-{known[1] * scale:.4g} GeV (--allow-extrapolation to "
            "sample anyway)"
        )
    import os

    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    first, count, output = 0, args.n, args.output
    if world > 1:  # torchrun: each rank writes its shard; pointcalo merge joins them
        first, count = shard(args.n, batch_size, rank, world)
        output = shard_path(args.output, rank, world)
    shard_attrs = {}
    if world > 1 and io.format_of(output) == "hdf5":  # so merge can check the set
        shard_attrs = {"attrs": {
            "shard_rank": rank, "shard_world": world, "shard_first": first,
            "shard_count": count, "shard_total": args.n, "shard_seed": args.seed,
            "shard_model": str(args.checkpoint), "shard_checksum": _file_digest(args.checkpoint),
        }}  # fmt: skip
    with (
        Progress(transient=True, disable=args.quiet) as bar,
        io.open_writer(output, **shard_attrs) as w,
    ):
        task = bar.add_task("sampling", total=count)
        generate_to_file(
            loaded,
            w,
            count,
            lo,
            hi,
            first=first,
            conditions=conditions,
            seed=args.seed,
            device=device,
            batch_size=batch_size,
            chunk=max(batch_size, 1) * 8,
            sampler=args.sampler,
            steps=args.steps,
            progress=lambda done: bar.update(task, completed=done),
        )
    if not args.quiet:
        print(f"wrote {count} showers to {output}")
        if world > 1 and rank == 0:
            print(
                f"join the {world} shards: "
                f"pointcalo merge {shard_glob(args.output)} -o {args.output}"
            )
    return 0


def _file_digest(checkpoint: str) -> str:
    """SHA-256 (first 16 hex digits) of a checkpoint file, shipped models by name."""
    import hashlib

    from pointcalo.pretrained import resolve

    return hashlib.sha256(resolve(checkpoint).read_bytes()).hexdigest()[:16]


def shard_path(path: str, rank: int, world: int) -> str:
    """``gen.h5`` -> ``gen.rank001-of-004.h5`` (rank 1 of 4)."""
    from pathlib import Path

    p = Path(path)
    return str(p.with_name(f"{p.stem}.rank{rank:03d}-of-{world:03d}{p.suffix}"))


def shard_glob(path: str) -> str:
    from pathlib import Path

    p = Path(path)
    return str(p.with_name(f"{p.stem}.rank*-of-*{p.suffix}"))


def _cmd_merge(args: argparse.Namespace) -> int:
    from pointcalo import io

    n = io.merge(args.inputs, args.output, chunk_size=args.chunk_size)
    if not args.quiet:
        print(f"wrote {n} showers from {len(args.inputs)} files to {args.output}")
    return 0


def _cmd_split(args: argparse.Namespace) -> int:
    from pointcalo.io.split import split_file

    try:
        fractions = [float(v) for v in args.fractions.split(",")]
    except ValueError:
        raise PointcaloError(
            f"--fractions: expected e.g. 0.75,0.10,0.15, got {args.fractions!r}"
        ) from None
    written = split_file(args.file, args.out, fractions, args.seed)
    if not args.quiet:
        for name, path in written.items():
            print(f"{name}: {path}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from pointcalo import pretrained
    from pointcalo.export import export
    from pointcalo.models.generate import load_model

    loaded = load_model(args.checkpoint, "cpu")
    card = pretrained.card(args.checkpoint) if args.checkpoint in pretrained.available() else {}
    if not card:  # a checkpoint of one's own: what its meta says
        card = {"checkpoint": str(args.checkpoint), "steps": loaded.meta.get("step")}
    import pointcalo

    card = {**card, "pointcalo_version": pointcalo.__version__}
    path = export(loaded, args.output, args.format, card)
    if not args.quiet:
        print(f"wrote {path} ({args.format}) and its model card {path}.json")
    return 0


def _cmd_configs(args: argparse.Namespace) -> int:
    from pointcalo.config import PRESETS_DIR, presets

    for name in presets():
        first = (PRESETS_DIR / f"{name}.yaml").read_text().splitlines()[:1]
        about = first[0].lstrip("# ").strip() if first and first[0].startswith("#") else ""
        print(f"{name:24s} {about}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from pointcalo import pretrained
    from pointcalo.models import registry

    if args.json:
        import json

        names = pretrained.available()
        print(
            json.dumps(
                {
                    "families": registry.names(),
                    "pretrained": {n: pretrained.card(n) for n in names},
                },
                indent=2,
            )
        )
        return 0
    table = Table(title="shipped models (pointcalo sample NAME ...); fidelity on Geant4 test")
    table.add_column("name", no_wrap=True)
    for col in ("family", "AUC, worst view", "floor", "point AUC", "showers/s"):
        table.add_column(col)
    for name in pretrained.available():
        c = pretrained.card(name)
        fid, speed = c.get("fidelity", {}), c.get("speed", {})
        floor = fid.get("floor_by_view", {}).get(fid.get("worst_view"))
        point = fid.get("point_classifier_auc")
        table.add_row(
            name,
            str(c.get("family", "")),
            f"{fid['auc_worst_view'][0]:.2f}" if fid else "",
            f"{floor[0]:.2f}" if floor else "",
            f"{point[0]:.2f}" if point else "",
            f"{speed['showers_per_s']:.0f} ({speed.get('device', '?')})" if speed else "",
        )
    console = Console()
    console.print(table)
    console.print("model families: " + ", ".join(registry.names()))
    console.print(
        "AUC 0.5: indistinguishable from Geant4; 1: separated. Protocol and history: "
        "docs/fidelity.md; what each model is for: docs/models.md; cards: pointcalo models --json"
    )
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from pointcalo.demo import run_demo

    run_demo(
        args.out, data=args.data, n_showers=args.n, seed=args.seed, train_steps=args.train_steps
    )
    return 0


#: The samplers of :data:`pointcalo.sampling.SAMPLERS` (kept here so the parser needs no torch;
#: a test keeps the two equal).
SAMPLER_NAMES = ("consistency", "euler", "heun", "heun_churn", "multistep", "ode")


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line (``error: <problem>``), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pointcalo",
        description="Generative models of calorimeter showers as point clouds.",
    )
    from pointcalo import __version__

    parser.add_argument("--version", action="version", version=f"pointcalo {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an internal error"
    )
    parser.add_argument(
        "--threads",
        type=COUNT,
        default=None,
        help="CPU threads for torch and numpy (default: OMP_NUM_THREADS if set, else 1: "
        "on a shared machine more threads spin against other jobs; benchmarks/threads_bench.py)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="summarise a shower file (HDF5 or ROOT)")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("convert", help="convert between formats (chosen by file extension)")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--chunk-size", type=COUNT, default=1024, help="showers per chunk")
    p.add_argument(
        "--collections",
        nargs="+",
        default=None,
        help="EDM4hep input: hit collections (default: every one with Hits in its name)",
    )
    p.add_argument(
        "--encoding",
        default=None,
        help="EDM4hep input: DD4hep cellID encoding for the layer (default: from the file's "
        "metadata, else the depth)",
    )
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_convert)

    p = sub.add_parser("simulate", help="simulate showers with the built-in parametrised model")
    p.add_argument("--n", type=COUNT, default=1000, help="number of showers")
    p.add_argument("--energy", default="10:90", help="GeV: '50' or uniform 'low:high'")
    p.add_argument("--particle", default="photon", choices=["photon", "electron"])
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("-o", "--output", required=True, help="output file (.h5 or .root)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser(
        "voxelize",
        help="project showers onto a grid; write CaloChallenge-layout HDF5 (incident_energies, "
        "showers [N, voxels])",
    )
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument(
        "--grid",
        default="ild",
        help="preset (ild, calogan, calochallenge-2, ...) or a .yaml/.xml grid file",
    )
    p.add_argument(
        "--layer-map",
        default=None,
        help="'depth', or comma-separated grid layer per source layer (-1 drops)",
    )
    p.add_argument(
        "--source-depth",
        default=None,
        help="grid whose layer depths the input layers have (for --layer-map depth)",
    )
    p.add_argument("--chunk-size", type=COUNT, default=256)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_voxelize)

    p = sub.add_parser(
        "evaluate",
        help="compare generated with reference showers: metrics.json, summary.md, plots",
    )
    p.add_argument("--reference", required=True, help="shower file or CaloChallenge voxel file")
    p.add_argument("--generated", required=True, help="shower file or CaloChallenge voxel file")
    p.add_argument("--grid", default="ild", help="grid of the observables (preset or file)")
    p.add_argument("--threshold", type=THRESHOLD, default=0.1, help="cell threshold in MeV")
    p.add_argument("--batches", type=COUNT, default=5, help="batches for uncertainties")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--out", default="runs/evaluate", help="output folder")
    p.add_argument(
        "--alignment",
        choices=("centred", "half-cell", "random"),
        default="centred",
        help="where the grid sits relative to the shower axis ('pointcalo compare' does all)",
    )
    p.add_argument(
        "--voxel-classifier",
        action="store_true",
        help="also train the classifier on voxels (slow on large grids)",
    )
    p.add_argument(
        "--train",
        default=None,
        help="the model's training showers: adds the memorisation check (distances to the "
        "nearest training shower, generated vs reference)",
    )
    _add_point_classifier_args(p)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("compare", help="several generated files against one reference on one table")
    p.add_argument("--reference", required=True, help="shower file or CaloChallenge voxel file")
    p.add_argument("--generated", required=True, nargs="+", help="files to compare")
    p.add_argument("--labels", default=None, help="comma-separated labels of the files")
    p.add_argument("--train", default=None, help="training showers: memorisation ratio")
    p.add_argument("--speed", nargs="*", help="LABEL=showers_per_s to show beside")
    p.add_argument("--grid", default="ild")
    p.add_argument("--threshold", type=THRESHOLD, default=0.1)
    p.add_argument("--batches", type=COUNT, default=5)
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--out", default="runs/compare")
    p.add_argument(
        "--alignments",
        default="centred,half-cell,random",
        help="grid alignments to the shower axis, comma-separated (the headline is the worst)",
    )
    p.add_argument(
        "--extra-grids",
        default="auto",
        help="further grids (comma-separated presets or files; 'auto': ild-cylindrical beside "
        "ild; 'none')",
    )
    p.add_argument(
        "--voxel-classifier",
        action="store_true",
        help="also train the classifier on the voxels (slow on large grids)",
    )
    _add_point_classifier_args(p)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("train", help="train a model from a YAML config (configs/*.yaml)")
    p.add_argument("config")
    p.add_argument("--data", default=None, help="training file (overrides data.path)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--steps", type=COUNT, default=None, help="override train.steps")
    p.add_argument("--out", default=None, help="override train.out")
    p.add_argument("--device", default=None, choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--init-from",
        default=None,
        help="start from the weights of this checkpoint or shipped model (train.init_from)",
    )
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("distill", help="consistency-distil a CaloClouds teacher")
    p.add_argument("teacher", help="teacher checkpoint (caloclouds)")
    p.add_argument("config", help="e.g. configs/consistency.yaml")
    p.add_argument("--data", default=None, help="training file (the teacher's data)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--steps", type=COUNT, default=None)
    p.add_argument("--out", default=None)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_distill)

    p = sub.add_parser("sample", help="generate showers from a checkpoint or pretrained model")
    p.add_argument("checkpoint", help="checkpoint file, or a name from 'pointcalo models'")
    p.add_argument("--n", type=COUNT, default=None, help="showers (default 1000)")
    p.add_argument(
        "--energies-from",
        default=None,
        help="shower file whose incident energies to sample at, in its order (sets the count)",
    )
    p.add_argument("--energy", default="10:90", help="GeV: '50' or uniform 'low:high'")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--batch-size",
        type=COUNT,
        default=None,
        help="showers per generation batch (default: 32 on CPU, 1024 on GPU)",
    )
    p.add_argument(
        "--sampler",
        default=None,
        choices=SAMPLER_NAMES,
        help="diffusion models: sampler (default: the model's config)",
    )
    p.add_argument("--steps", type=COUNT, default=None, help="diffusion models: sampler steps")
    p.add_argument(
        "--allow-extrapolation",
        action="store_true",
        help="sample energies outside the model's training range",
    )
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_sample)

    p = sub.add_parser(
        "export",
        help="export a one-step model as TorchScript or ONNX (for Geant4 / DDML, ONNX Runtime)",
        description="Export a one-step (consistency) model: TorchScript holds the whole "
        "generation in one file; ONNX writes a folder with the flow and denoiser networks "
        "and the numpy glue. Interface in the README (Export).",
    )
    p.add_argument("checkpoint", help="checkpoint file, or a name from 'pointcalo models'")
    p.add_argument("-o", "--output", required=True, help="file (torchscript) or folder (onnx)")
    p.add_argument("--format", default="torchscript", choices=["torchscript", "onnx"])
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser(
        "merge", help="join shower files in order (e.g. the shards of a torchrun sample)"
    )
    p.add_argument("inputs", nargs="+", help="shower files, joined in the order given")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--chunk-size", type=COUNT, default=1024)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_merge)

    p = sub.add_parser(
        "split", help="fixed train / validation / test split of a shower file (seeded)"
    )
    p.add_argument("file")
    p.add_argument("--out", required=True, help="folder for train.h5, val.h5, test.h5, split.json")
    p.add_argument("--fractions", default="0.75,0.10,0.15", help="train,val,test fractions")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=_cmd_split)

    p = sub.add_parser(
        "configs", help="list the preset configs ('pointcalo train NAME' trains one)"
    )
    p.set_defaults(func=_cmd_configs)

    p = sub.add_parser("models", help="list the shipped pretrained models and model families")
    p.add_argument("--json", action="store_true", help="model cards as JSON")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser(
        "demo",
        help="run the main job on the built-in default data",
        description="Run the main job: sample the shipped pretrained models, train a small "
        "model, voxelize, evaluate against Geant4 beside the baselines, write a report.",
    )
    p.add_argument("--out", default="runs/demo", help="output directory")
    p.add_argument("--data", default=None, help="shower file (default: simulate showers)")
    p.add_argument("--n", type=COUNT, default=1000, help="showers to simulate without --data")
    p.add_argument("--seed", type=SEED, default=1, help="seed of the simulation")
    p.add_argument(
        "--train-steps",
        type=SEED,
        default=100,
        help="steps of the small EPiC-GAN trained in the demo (0: skip)",
    )
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. The error boundary: a condition the user caused (a bad argument,
    config, file or checkpoint, an OS error such as a read-only or full disk) is one line
    ``error: ...`` and exit code 2; Ctrl-C is exit 130; anything else is an internal error,
    one line and exit 1, with the traceback under ``--debug``."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a bad argument (already printed)
        return int(done.code or 0) if not isinstance(done.code, str) else 2
    from pointcalo.interrupts import deferred

    set_threads(args.threads)
    try:
        with deferred():
            return int(args.func(args) or 0)
    except PointcaloError as err:
        return _fail(str(err), 2)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except OSError as err:
        return _fail(_os_message(err), 2)
    except ValueError as err:
        from voxelize import GridError

        if isinstance(err, GridError):
            return _fail(str(err), 2)
        if args.debug:
            raise
        return _fail(f"internal error: {type(err).__name__}: {err} (run with --debug)", 1)
    except MemoryError:
        return _fail("out of memory: use fewer showers per chunk or batch", 2)
    except Exception as err:
        if args.debug:
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return _fail(
            f"internal error: {type(err).__name__}: {first} "
            "(run with --debug for the traceback, and please report it)",
            1,
        )


def set_threads(threads: int | None) -> None:
    """CPU threads of this process: ``threads`` if given, else ``OMP_NUM_THREADS`` if set, else
    one. Set through the environment before torch or numpy start their thread pools (and on
    torch directly if it is already imported), so every library of the process agrees."""
    import os

    if threads is None:
        if os.environ.get("OMP_NUM_THREADS"):
            return
        threads = 1
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _fail(message: str, code: int) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return code


def _os_message(err: OSError) -> str:
    """``<file>: <reason>`` of an OS error (h5py's and uproot's included)."""
    name = err.filename or ""
    reason = err.strerror or str(err).strip().splitlines()[0]
    if err.errno == 28:
        reason = "no space left on the device (nothing was left behind)"
    return f"{name}: {reason}" if name else reason


if __name__ == "__main__":
    sys.exit(main())
