"""Atomic file writing shared by voxelize and pointcalo: write beside the target, then rename."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: Longest file name most file systems take.
NAME_MAX = 255


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def temporary_path(target: Path) -> Path:
    """A new, empty hidden temporary file ``.<name>.<pid>.tmp`` beside ``target`` (same file
    system, so rename is atomic; another name when that one is taken), shortened so it never
    exceeds the file-name limit.

    The parent directory is created if needed. Temporaries of the same target left by dead
    processes (a run killed with ``kill -9``) are removed.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = f".{os.getpid()}.tmp"
    stem = "." + target.name[: NAME_MAX - len(suffix) - 18]
    for stale in target.parent.glob(f"{glob_escape(stem)}.*.tmp"):
        pid = stale.name[len(stem) + 1 : -len(".tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            stale.unlink(missing_ok=True)
    # created here, exclusively and without following a link planted at the name, so a
    # writer never writes through someone else's file or symlink
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)
    name = stem + suffix
    for _ in range(100):
        try:
            os.close(os.open(target.with_name(name), flags, 0o644))
            return target.with_name(name)
        except FileExistsError:
            name = f"{stem}.{os.getpid()}.{os.urandom(8).hex()}.tmp"
    raise FileExistsError(f"{target}: no free temporary name beside it")


def glob_escape(text: str) -> str:
    """``text`` with glob metacharacters escaped."""
    import glob

    return glob.escape(text)


class AtomicWriter:
    """Base of streaming writers whose output appears under its final name only when closed
    without error.

    Subclasses open ``self._file`` on ``self._tmp`` (see :func:`temporary_path`) and may
    override :meth:`_finish` to complete the file before it is closed and renamed.
    """

    path: Path
    _tmp: Path
    _file: Any

    #: Room kept free beyond a chunk's raw size (file metadata, attributes at close).
    SPACE_MARGIN = 1 << 20

    def _finish(self) -> None:
        """Complete the file (attributes, empty defaults) before it is closed."""

    def _check_space(self, nbytes: int) -> None:
        """Refuse (ENOSPC naming the output, temporary removed) a chunk of ``nbytes`` raw bytes
        the disk cannot hold: the uncompressed size bounds what is written. HDF5 meets a full
        disk inside its C cleanup, where the error cannot be handled (a segfault)."""
        import errno
        import shutil

        if shutil.disk_usage(self._tmp.parent).free < self.SPACE_MARGIN + nbytes:
            self.abort()
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    def _write_failed(self, err: BaseException) -> None:
        """Free the disk space the temporary holds (so closing it cannot fail again), discard
        it, and raise an OSError naming the output (not the temporary)."""
        import contextlib
        import errno

        full = "No space left" in str(err) or "errno = 28" in str(err)
        with contextlib.suppress(OSError):
            os.truncate(self._tmp, 0)
        self.abort()
        if full:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path)) from None
        raise OSError(errno.EIO, f"write failed: {str(err).splitlines()[0]}", str(self.path))

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
