"""Atomic file writes: write to a temporary file beside the target, then rename.

``temporary_path`` and the :class:`AtomicWriter` base live in :mod:`voxelize.atomic` (voxelize
must not import pointcalo, pointcalo may import voxelize) and are re-exported here.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from voxelize.atomic import AtomicWriter, temporary_path

__all__ = ["AtomicWriter", "atomic_folder", "atomic_path", "temporary_path", "write_json"]


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


@contextlib.contextmanager
def atomic_folder(
    path: str | os.PathLike[str], *, marker: str | None = None, flag: str = "--out"
) -> Iterator[Path]:
    """Yield a new hidden folder beside ``path`` to write an output folder into; when the block
    succeeds its files are moved into ``path`` (made if needed), else it is removed with
    everything in it, whatever the error (a full disk, Ctrl-C).

    ``path`` may exist only as an empty folder or, when ``marker`` names a file, as an earlier
    output of the same kind (it holds ``marker``): then files of the same names are replaced
    and nothing else in it is touched. Anything else is refused (naming ``flag``) before any
    work, so a command never writes over, or deletes, files it did not create.
    """
    import shutil
    import tempfile

    from pointcalo.errors import PointcaloError

    out = Path(path)
    if out.exists() and not out.is_dir():
        raise PointcaloError(f"{flag}: {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (marker and (out / marker).is_file()):
        kind = f" (no {marker})" if marker else ""
        raise PointcaloError(
            f"{flag}: {out} holds files that are not an earlier output of this command{kind}; "
            "give a new or empty folder"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name[:200]}.", suffix=".tmp", dir=out.parent))
    try:
        yield tmp
        if not out.exists():
            tmp.rename(out)
            return
        _move_into(tmp, out)
    except BaseException as err:
        shutil.rmtree(tmp, ignore_errors=True)  # this command's own temporary folder
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            raise OSError(errno.ENOSPC, "No space left on device", str(out)) from None
        raise


def _move_into(src: Path, dst: Path) -> None:
    """Move the files of folder ``src`` into folder ``dst`` (sub-folders merged, files of the
    same name replaced) and remove ``src``."""
    for item in sorted(src.iterdir()):
        target = dst / item.name
        if item.is_dir() and target.is_dir() and not target.is_symlink():
            _move_into(item, target)
        else:
            os.replace(item, target)
    src.rmdir()


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")
    return Path(path)
