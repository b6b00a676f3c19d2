"""Design study of a two-level point model: coarse blocks of sub-cells, re-expanded with patterns
(:mod:`pointcalo.blocks`).

    # best case: the validation showers' own blocks re-expanded with the training patterns
    python scripts/block_model.py oracle runs/split/train.h5 runs/split/val.h5 --block 3 \\
        --out runs/blocks/oracle_b3.h5
    # training data of a block-level model: one point per block (block centre, energy sum)
    python scripts/block_model.py coarsen runs/split/train.h5 --block 3 --out runs/blocks/train.h5
    # a block-level model's showers (sampled from it) re-expanded into sub-cells
    python scripts/block_model.py expand runs/split/train.h5 gen_blocks.h5 --block 3 --out gen.h5
    # ... with each layer's core filled by Geant4 cores (--core 6), or with only the
    # libraries a checkpoint would carry (--subsample --patterns 256 --core-patterns 48)
    # give a block checkpoint trained without them its libraries (pointcalo sample then
    # re-expands; how ild-photon-bcc and ild-photon-bcm were made)
    python scripts/block_model.py attach CHECKPOINT runs/split/train.h5 --patterns 256 \
        --core 10 --core-patterns 48 --halo 256 --out two_level.pt
    # or straight from a block-level checkpoint without libraries at the showers' energies,
    # with duplicate blocks moved to the nearest free block (--spread) instead of merged
    python scripts/block_model.py sample runs/split/train.h5 CHECKPOINT runs/split/val.h5 \\
        --spread --out gen.h5

``oracle`` and ``expand`` do the same (a shower file of points is coarsened on the way); the
library is built from the first file (the training split) each time, in seconds.
"""

from __future__ import annotations

import argparse

import awkward as ak
import numpy as np


def sample_blocks(checkpoint: str, like: ak.Array, block_pitch: float, spread: bool) -> ak.Array:
    """Block showers of a block-level checkpoint at the incident energies of ``like`` (seed 1),
    its points made valid as :func:`pointcalo.validity.make_valid` does except that duplicate
    blocks are spread (:func:`pointcalo.blocks.spread_duplicates`) or merged."""
    from pointcalo.blocks import spread_duplicates
    from pointcalo.clouds import GeneratedClouds
    from pointcalo.generation import GenerationRequest, load_model
    from pointcalo.models import registry
    from pointcalo.showers import make_showers

    m = load_model(checkpoint)
    energy = np.asarray(like.incident_energy, np.float64)
    request = GenerationRequest({m.normalizer.spec.condition: energy}, seed=1)
    family = registry.get(m.cfg.model.name)
    parts = [family.generate(m.model, m.net, m.normalizer, m.cfg, b) for b in request.batches()]
    clouds = GeneratedClouds.join(parts)
    pts, counts = clouds.points, np.diff(clouds.offsets)
    lim = m.limits
    ok = np.isfinite(pts["E"]) & (pts["E"] > 0) & (pts["layer"] >= 0)
    ok &= pts["layer"] < lim.n_layers
    for name, rng in (("x", lim.x_range), ("y", lim.y_range)):
        if rng is not None:
            ok &= (pts[name] >= rng[0]) & (pts[name] <= rng[1])
    cloud = np.repeat(np.arange(len(counts)), counts)[ok]
    pts = {k: np.asarray(v)[ok] for k, v in pts.items()}
    if lim.e_max is not None:
        pts["E"] = np.minimum(pts["E"], lim.e_max)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(cloud, minlength=len(counts)))])
    offsets, pts = spread_duplicates(offsets, pts, block_pitch, radius=3 if spread else 0)
    return make_showers(energy.astype(np.float32), pts, offsets=offsets)


def main() -> None:
    from pointcalo import io
    from pointcalo.blocks import PatternLibrary, coarsen

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=["oracle", "coarsen", "expand", "sample", "attach"])
    ap.add_argument(
        "files",
        nargs="+",
        help="coarsen: SHOWERS; oracle, expand: TRAIN SHOWERS; sample: TRAIN CHECKPOINT SHOWERS; "
        "attach: CHECKPOINT TRAIN",
    )
    ap.add_argument("--patterns", type=int, default=1024, help="attach: patterns per bin")
    ap.add_argument("--core", type=int, default=0, help="core window side in blocks (0: none)")
    ap.add_argument("--core-patterns", type=int, default=48, help="cores per layer and group")
    ap.add_argument(
        "--halo", type=int, default=0, help="halo patches per bin (0: none; needs --core)"
    )
    ap.add_argument(
        "--subsample", action="store_true", help="expand with the libraries a checkpoint carries"
    )
    ap.add_argument("--spread", action="store_true", help="sample: spread duplicate blocks")
    ap.add_argument("--block", type=int, default=3, help="block side in sub-cells")
    ap.add_argument("--pitch", type=float, default=0.848, help="sub-cell pitch (mm)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if args.step == "attach":  # a block checkpoint made a two-level model of the family
        from pointcalo.blocks import attach_library
        from pointcalo.checkpoint import load_checkpoint, save_checkpoint

        state = load_checkpoint(args.files[0])
        new = attach_library(
            state, args.files[1], args.block, args.patterns, args.seed, args.core,
            args.core_patterns, args.halo,
        )  # fmt: skip
        save_checkpoint(args.out, new)
        print(f"{args.out}: {args.files[0]} with the patterns of {args.files[1]}")
        return
    showers = io.read(args.files[-1])
    if args.step == "sample":  # the checkpoint's blocks at these showers' energies
        showers = sample_blocks(args.files[1], showers, args.block * args.pitch, args.spread)
    n_in = int(np.sum(ak.num(showers.points, axis=1)))
    if args.step == "coarsen":
        out = coarsen(showers, args.pitch, args.block)
    else:  # oracle, expand, sample
        train = io.read(args.files[0])
        library = PatternLibrary.from_showers(
            train, args.pitch, args.block, args.core, halo=args.halo > 0
        )
        if args.subsample:
            library = library.subsample(args.patterns, args.seed, args.core_patterns, args.halo)
        out = library.expand(showers, seed=args.seed)
    io.write(out, args.out)
    n_out = int(np.sum(ak.num(out.points, axis=1)))
    print(
        f"{len(showers)} showers: {n_in / len(showers):.0f} -> "
        f"{n_out / len(showers):.0f} points each"
    )


if __name__ == "__main__":
    main()
