"""What the command modules share: argument types that refuse bad numbers in one line, the
grid an option names, the sampler names."""

from __future__ import annotations

import argparse


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

#: The samplers of :data:`pointcalo.sampling.SAMPLERS` (kept here so the parser needs no torch;
#: a test keeps the two equal).
SAMPLER_NAMES = ("consistency", "euler", "heun", "heun_churn", "multistep", "ode")


def grid(option: str, spec: str):
    from pointcalo.metrics.files import grid_named

    return grid_named(option, spec)


def quiet(p: argparse.ArgumentParser) -> None:
    """The ``-q/--quiet`` flag every command that prints has."""
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing but errors")
