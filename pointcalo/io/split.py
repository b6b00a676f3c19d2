"""A fixed train / validation / test split of a shower file.

Showers are assigned by a permutation drawn from ``seed`` alone (numpy's PCG64 through
``default_rng(seed)``), so the split of a file of ``N`` showers is the same on every machine:
the first ``round(f_train N)`` permuted indices are the training showers, the next
``round(f_val N)`` the validation showers and the rest the test showers; each part keeps the
file's order. Test showers are for final figures only: never for training, early stopping or
tuning.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pointcalo.errors import PointcaloError

PARTS = ("train", "val", "test")


def split_indices(
    n: int, fractions: Sequence[float] = (0.75, 0.10, 0.15), seed: int = 0
) -> dict[str, np.ndarray]:
    """Sorted shower indices of the train, validation and test parts of ``n`` showers."""
    fr = np.asarray(fractions, dtype=np.float64)
    if len(fr) != 3 or np.any(fr < 0) or not np.isclose(fr.sum(), 1.0):
        raise PointcaloError(
            f"--fractions: three non-negative fractions summing to 1 expected, got {list(fr)}"
        )
    perm = np.random.default_rng(seed).permutation(n)
    n_train, n_val = round(fr[0] * n), round(fr[1] * n)
    cuts = (perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :])
    return {name: np.sort(part) for name, part in zip(PARTS, cuts, strict=True)}


def split_file(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    fractions: Sequence[float] = (0.75, 0.10, 0.15),
    seed: int = 0,
) -> dict[str, Path]:
    """Write ``out/{train,val,test}.h5`` and ``out/split.json`` (the indices, fractions,
    seed and source) for the shower file ``path``; returns the written paths. Interrupted or
    failed part-way, it removes the parts it wrote (and ``out`` if it made it), nothing else."""
    from pointcalo import io
    from pointcalo.interrupts import check as check_interrupt
    from pointcalo.io.atomic import write_json

    with io.open_reader(path) as reader:
        n = reader.n_showers
        if n < 3:
            from pointcalo.errors import ShowerFormatError

            raise ShowerFormatError(path, None, f"{n} showers: a split needs at least 3")
        parts = split_indices(n, fractions, seed)
        showers = reader.read(0, n)
        # the source's description (detector, layer depths, units...) goes with every part
        skip = ("format", "format_version", "n_showers")
        attrs = {k: v for k, v in (getattr(reader, "attrs", {}) or {}).items() if k not in skip}
    out = Path(out)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    try:
        for name, index in parts.items():
            check_interrupt()
            written[name] = io.write(showers[index], out / f"{name}.h5", attrs=attrs)
        record = {
            "source": str(path),
            "n_showers": n,
            "fractions": [float(f) for f in fractions],
            "seed": seed,
            **{name: index.tolist() for name, index in parts.items()},
        }
        written["index"] = write_json(record, out / "split.json")
    except BaseException:  # Ctrl-C, a full disk...: remove what this call wrote, nothing else
        for done in written.values():
            done.unlink(missing_ok=True)
        if created and not any(out.iterdir()):
            out.rmdir()
        raise
    return written
