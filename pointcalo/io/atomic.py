"""Atomic file writes: write to a temporary file beside the target, then rename.

``temporary_path`` and the :class:`AtomicWriter` base live in :mod:`voxelize.atomic` (voxelize
must not import pointcalo, pointcalo may import voxelize) and are re-exported here.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from voxelize.atomic import AtomicWriter, temporary_path

__all__ = ["AtomicWriter", "atomic_path", "temporary_path", "write_json"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    On any exception (including KeyboardInterrupt) the temporary file is removed, so a
    half-written output never appears under the final name.
    """
    target = Path(path)
    tmp = temporary_path(target)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")
    return Path(path)
