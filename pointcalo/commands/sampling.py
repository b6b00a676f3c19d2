"""Commands that use a trained model: sample showers to a file, export for use outside Python.
Each command's options and its thin call into the library (``register`` adds them to the
parser)."""

from __future__ import annotations

import argparse

from pointcalo.commands.common import COUNT, SAMPLER_NAMES, SEED, quiet
from pointcalo.errors import PointcaloError


def cmd_sample(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from pointcalo.conditions import CONDITIONS
    from pointcalo.generation import sample_to_file, shard_glob

    flags = {
        name: getattr(args, c.flag[2:].replace("-", "_"))
        for name, c in CONDITIONS.items()
        if name != "jet_pt" and getattr(args, c.flag[2:].replace("-", "_")) is not None
    }
    with Progress(transient=True, disable=args.quiet) as bar:
        task = bar.add_task("sampling", total=None)
        done = sample_to_file(
            args.checkpoint, args.output, n=args.n, flags=flags,
            conditions_from=args.conditions_from, energies_from=args.energies_from,
            seed=args.seed, device=args.device, batch_size=args.batch_size,
            sampler=args.sampler, steps=args.steps,
            allow_extrapolation=args.allow_extrapolation, bf16=args.bf16, compile=args.compile,
            grid=args.grid, progress=lambda n, total: bar.update(task, completed=n, total=total),
        )  # fmt: skip
    if not args.quiet:
        rate = done.count / max(done.seconds, 1e-9)
        print(f"wrote {done.count} showers to {done.output} ({rate:.0f} showers/s)")
        if done.world > 1 and done.rank == 0:
            print(
                f"join the {done.world} shards: "
                f"pointcalo merge {shard_glob(args.output)} -o {args.output}"
            )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from pointcalo import pretrained
    from pointcalo.export import export
    from pointcalo.generation import load_model

    loaded = load_model(args.checkpoint, "cpu")
    card = pretrained.card(args.checkpoint) if args.checkpoint in pretrained.available() else {}
    if not card:  # a checkpoint of one's own: what its meta says
        card = {"checkpoint": str(args.checkpoint), "steps": loaded.meta.get("step")}
    import pointcalo

    card = {**card, "pointcalo_version": pointcalo.__version__}
    fixed = {}
    if args.particle is not None:
        if args.format != "ddml":
            raise PointcaloError("--particle: only --format ddml fixes the particle")
        fixed["pdg"] = float(args.particle)
    path = export(loaded, args.output, args.format, card, fixed=fixed)
    if not args.quiet:
        print(f"wrote {path} ({args.format}) and its model card {path}.json")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="generate showers from a checkpoint or pretrained model")
    p.add_argument("checkpoint", help="checkpoint file, or a name from 'pointcalo models'")
    p.add_argument("--n", type=COUNT, default=None, help="showers (default: 1000)")
    p.add_argument(
        "--energy",
        default=None,
        help="GeV: '50' or uniform 'low:high' (default: the model's training range)",
    )
    for flag, unit in (
        ("--theta", "rad"),
        ("--phi", "rad"),
        ("--impact-x", "mm"),
        ("--impact-y", "mm"),
    ):
        p.add_argument(
            flag, default=None,
            help=f"{unit}: 'a' or uniform 'low:high', for a model conditioned on it "
            "(default: its training range)",
        )  # fmt: skip
    p.add_argument(
        "--particle",
        default=None,
        help="PDG codes or names, e.g. '22' or 'photon,electron' (drawn evenly), for a model "
        "conditioned on the particle (default: its training particles)",
    )
    p.add_argument(
        "--conditions-from",
        default=None,
        help="shower file whose showers' conditions (all the model takes) to sample at, in its "
        "order (sets the count)",
    )
    p.add_argument(
        "--energies-from",
        default=None,
        help="shower file whose incident energies to sample at, in its order (sets the count)",
    )
    p.add_argument("-o", "--output", required=True, help="output shower file (.h5 or .root)")
    p.add_argument("--seed", type=SEED, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--device", default="cpu", choices=["auto", "cpu", "cuda"], help="where to sample"
    )
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
        help="sample conditions outside the model's training ranges",
    )
    p.add_argument(
        "--bf16",
        action="store_true",
        help="run the network in bfloat16 (GPU: autocast; CPU: bfloat16 weights, fast where "
        "the CPU has AVX512-BF16)",
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the network (GPU)")
    p.add_argument(
        "--grid",
        default=None,
        help="geometry-aware models: the grid to generate on (preset, YAML or XML file; "
        "default: the model's)",
    )
    quiet(p)
    p.set_defaults(func=cmd_sample)
    p = sub.add_parser(
        "export",
        help="export a one-step model as TorchScript or ONNX (for Geant4 / DDML, ONNX Runtime)",
        description="Export a one-step (consistency) model: TorchScript holds the whole "
        "generation in one file; ONNX writes a folder with the flow and denoiser networks "
        "and the numpy glue. Interface in the README (Export).",
    )
    p.add_argument("checkpoint", help="checkpoint file, or a name from 'pointcalo models'")
    p.add_argument("-o", "--output", required=True, help="file (torchscript) or folder (onnx)")
    p.add_argument(
        "--format",
        default="torchscript",
        choices=["torchscript", "onnx", "ddml"],
        help="export format (ddml: Key4hep DDML's CaloClouds interface, energy and angles in)",
    )
    p.add_argument(
        "--particle",
        type=int,
        default=None,
        help="ddml: the PDG code a model conditioned on the particle simulates (DDML does not "
        "pass it)",
    )
    quiet(p)
    p.set_defaults(func=cmd_export)
