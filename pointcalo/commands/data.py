"""Commands on shower files: summarise, convert, simulate, project onto a grid, merge, split. Each
command's options and its thin call into the library (``register`` adds them to the parser)."""

from __future__ import annotations

import argparse

from pointcalo.commands.common import COUNT, SEED, grid, quiet
from pointcalo.errors import PointcaloError


def cmd_info(args: argparse.Namespace) -> int:
    from pointcalo import io
    from pointcalo.console import print_summary
    from pointcalo.showers import summary

    s = summary(io.read(args.file))
    if args.json:
        import json

        print(json.dumps(s, indent=2))
    else:
        print_summary(str(args.file), s)
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from pointcalo import io

    options = {"collections": args.collections, "encoding": args.encoding}
    with Progress(transient=True, disable=args.quiet) as progress:
        task = progress.add_task("converting", total=None)
        n = io.convert(
            args.input,
            args.output,
            chunk_size=args.chunk_size,
            progress=lambda done: progress.update(task, completed=done),
            voxel_points=args.voxel_points,
            **options,
        )
    if not args.quiet:
        print(f"wrote {n} showers to {args.output}")
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from pointcalo.conditions import parse_flag
    from pointcalo.simulate import simulate_to_file

    lo, hi = parse_flag("incident_energy", args.energy)
    columns = (BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=args.quiet) as bar:
        task = bar.add_task(f"simulating {args.particle}s", total=args.n)
        simulate_to_file(
            args.output, args.n, lo if lo == hi else (lo, hi), args.particle, args.seed,
            progress=lambda done: bar.update(task, completed=done),
        )  # fmt: skip
    if not args.quiet:
        print(f"wrote {args.n} {args.particle} showers to {args.output}")
    return 0


def cmd_voxelize(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from pointcalo.projection import parse_layer_map, voxelize_file

    g = grid("--grid", args.grid)
    depth = grid("--source-depth", args.source_depth).layer_depth if args.source_depth else None
    with Progress(transient=True, disable=args.quiet) as bar:
        task = bar.add_task("voxelizing", total=None)
        done = voxelize_file(
            args.input, args.output, g, layer_map=parse_layer_map(args.layer_map),
            source_depth=depth, chunk_size=args.chunk_size,
            progress=lambda n, total: bar.update(task, completed=n, total=total),
        )  # fmt: skip
    if not args.quiet:
        if done.by_file_depth:
            print(
                f"the file's layers go to the {g.n_layers} layers of '{g.name}' by "
                "depth (its layer_depth_mm; --layer-map to choose)"
            )
        print(
            f"wrote {done.n_showers} showers x {done.n_voxels} voxels ({done.grid}) to "
            f"{args.output}; energy outside the grid: {100 * done.outside_fraction:.3f} %"
        )
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    from pointcalo import io

    n = io.merge(args.inputs, args.output, chunk_size=args.chunk_size)
    if not args.quiet:
        print(f"wrote {n} showers from {len(args.inputs)} files to {args.output}")
    return 0


def cmd_split(args: argparse.Namespace) -> int:
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


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="summarise a shower file (HDF5 or ROOT)")
    p.add_argument("file", help="shower file (HDF5, ROOT, EDM4hep)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("convert", help="convert between formats (chosen by file extension)")
    p.add_argument("input", help="shower file to read (HDF5, ROOT, EDM4hep, CaloClouds)")
    p.add_argument("output", help="shower file to write (.h5 or .root)")
    p.add_argument("--chunk-size", type=COUNT, default=1024, help="showers per chunk")
    p.add_argument(
        "--collections",
        nargs="+",
        default=None,
        help="EDM4hep input: hit collections (default: every one with Hits in its name)",
    )
    p.add_argument(
        "--voxel-points",
        choices=("centre", "uniform"),
        default=None,
        help="CaloChallenge voxel input: one point per non-empty voxel, at its centre (projects "
        "back onto the same voxels exactly) or uniform in the cell",
    )
    p.add_argument(
        "--encoding",
        default=None,
        help="EDM4hep input: DD4hep cellID encoding for the layer (default: from the file's "
        "metadata, else the depth)",
    )
    quiet(p)
    p.set_defaults(func=cmd_convert)
    p = sub.add_parser("simulate", help="simulate showers with the built-in parametrised model")
    p.add_argument("--n", type=COUNT, default=1000, help="number of showers")
    p.add_argument("--energy", default="10:90", help="GeV: '50' or uniform 'low:high'")
    p.add_argument(
        "--particle", default="photon", choices=["photon", "electron"], help="incident particle"
    )
    p.add_argument("--seed", type=SEED, default=0, help="random seed")
    p.add_argument("-o", "--output", required=True, help="output file (.h5 or .root)")
    quiet(p)
    p.set_defaults(func=cmd_simulate)
    p = sub.add_parser(
        "voxelize",
        help="project showers onto a grid; write CaloChallenge-layout HDF5 (incident_energies, "
        "showers [N, voxels])",
    )
    p.add_argument("input", help="shower file")
    p.add_argument("output", help="CaloChallenge-layout voxel file to write (.h5)")
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
    p.add_argument("--chunk-size", type=COUNT, default=256, help="showers per chunk")
    quiet(p)
    p.set_defaults(func=cmd_voxelize)
    p = sub.add_parser(
        "merge", help="join shower files in order (e.g. the shards of a torchrun sample)"
    )
    p.add_argument("inputs", nargs="+", help="shower files, joined in the order given")
    p.add_argument("-o", "--output", required=True, help="the joined shower file")
    p.add_argument("--chunk-size", type=COUNT, default=1024, help="showers per chunk")
    quiet(p)
    p.set_defaults(func=cmd_merge)
    p = sub.add_parser(
        "split", help="fixed train / validation / test split of a shower file (seeded)"
    )
    p.add_argument("file", help="shower file to split")
    p.add_argument("--out", required=True, help="folder for train.h5, val.h5, test.h5, split.json")
    p.add_argument("--fractions", default="0.75,0.10,0.15", help="train,val,test fractions")
    p.add_argument("--seed", type=SEED, default=0, help="random seed of the split")
    quiet(p)
    p.set_defaults(func=cmd_split)
