"""Record the point limits of a model's training data in a checkpoint made before they were
recorded (pointcalo.validity): ``python scripts/add_point_limits.py CKPT --train TRAIN.h5``.
The checkpoint is rewritten atomically with a new checksum; nothing else in it changes."""

from __future__ import annotations

import argparse

from pointcalo import io
from pointcalo.checkpoint import load_checkpoint, save_checkpoint
from pointcalo.clouds import Normalizer
from pointcalo.showers import flatten
from pointcalo.validity import measured_limits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("checkpoint")
    parser.add_argument("--train", required=True, help="the training showers of the model")
    args = parser.parse_args()
    state = load_checkpoint(args.checkpoint)
    spec = Normalizer.from_dict(state["normalizer"]).spec
    state["meta"]["point_limits"] = measured_limits(
        spec, flatten(io.read(args.train)).points
    ).to_dict()
    state.pop("checksum", None)
    save_checkpoint(args.checkpoint, state)
    print(args.checkpoint, state["meta"]["point_limits"])


if __name__ == "__main__":
    main()
