"""Stage 1 of a two-stage latent model scored alone: the showers of FILE encoded to their
tokens and decoded (with their own R and energy) by a ``grid_vqvae`` checkpoint, written as a
shower file to score with ``pointcalo compare`` beside the model's generated showers.

    python scripts/vq_reconstruct.py runs/grid_vqvae/checkpoint.pt runs/split/test.h5 -o recon.h5
"""

from __future__ import annotations

import argparse


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("showers")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()

    from pointcalo import io
    from pointcalo.clouds import from_showers
    from pointcalo.generation import load_model
    from pointcalo.models.grid_vqvae import reconstruct
    from pointcalo.showers import make_showers

    loaded = load_model(args.checkpoint)
    data = from_showers(io.read(args.showers))
    clouds = reconstruct(loaded, data)
    showers = make_showers(
        clouds.condition.astype("float32"), clouds.points, offsets=clouds.offsets,
        allow_empty=True,
    )  # fmt: skip
    io.write(showers, args.output)
    print(f"wrote {len(showers)} reconstructed showers to {args.output}")


if __name__ == "__main__":
    main()
