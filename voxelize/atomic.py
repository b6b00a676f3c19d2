"""Atomic file writing shared by voxelize and pointcalo: write beside the target, then rename."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def temporary_path(target: Path) -> Path:
    """A hidden temporary name beside ``target`` (same file system, so rename is atomic).

    The parent directory is created if needed.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.with_name(f".{target.name}.{os.getpid()}.tmp")


class AtomicWriter:
    """Base of streaming writers whose output appears under its final name only when closed
    without error.

    Subclasses open ``self._file`` on ``self._tmp`` (see :func:`temporary_path`) and may
    override :meth:`_finish` to complete the file before it is closed and renamed.
    """

    path: Path
    _tmp: Path
    _file: Any

    def _finish(self) -> None:
        """Complete the file (attributes, empty defaults) before it is closed."""

    def close(self) -> None:
        """Finish the file and move it into place under its final name."""
        if self._file is None:
            return
        try:
            self._finish()
            self._file.close()
            self._file = None
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        """Discard everything written; no file appears under the final name."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
