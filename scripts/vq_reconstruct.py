"""Stage 1 of a two-stage latent model scored alone: the showers of FILE encoded to their
tokens and decoded by a ``grid_vqvae`` (each shower with its own R and energy) or
``point_vqvae`` checkpoint (each point with its own layer; the decoded points made valid by
the model's own rules, :mod:`pointcalo.validity`), written as a shower file to score with
``pointcalo compare`` beside the model's generated showers.

    python scripts/vq_reconstruct.py runs/vqvae_cylindrical/checkpoint.pt runs/split/test.h5 \
        -o recon.h5
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
    from pointcalo.showers import make_showers
    from pointcalo.validity import make_valid

    loaded = load_model(args.checkpoint)
    data = from_showers(io.read(args.showers))
    family = loaded.cfg.model.name
    if family == "grid_vqvae":
        from pointcalo.models.grid_vqvae import reconstruct

        clouds = reconstruct(loaded, data)
        offsets, points = clouds.offsets, clouds.points
    elif family == "point_vqvae":
        from pointcalo.models.point_vqvae import reconstruct

        clouds = reconstruct(loaded, data)
        offsets, points = make_valid(clouds.offsets, clouds.points, loaded.limits)
    else:
        raise SystemExit(f"{args.checkpoint}: a '{family}' model, not a grid or point VQ-VAE")
    showers = make_showers(
        clouds.condition.astype("float32"), points, offsets=offsets, allow_empty=True
    )
    io.write(showers, args.output)
    print(f"wrote {len(showers)} reconstructed showers to {args.output}")


if __name__ == "__main__":
    main()
