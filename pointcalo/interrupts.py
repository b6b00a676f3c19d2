"""Ctrl-C at safe points.

A KeyboardInterrupt raised while h5py or HDF5 runs C code can be swallowed ("Exception
ignored in ...") and the command then finishes as if nothing happened. While a CLI command
runs, the first Ctrl-C therefore only sets a flag, which the loops of readers, writers and the
training engine check between chunks and steps (:func:`check`), raising KeyboardInterrupt at a
point where it propagates and every atomic writer removes its temporary file. A second Ctrl-C
interrupts at once.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

_pending = threading.Event()


def _handler(signum: int, frame: object) -> None:
    if _pending.is_set():
        raise KeyboardInterrupt
    _pending.set()


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C was pressed since :func:`deferred` began."""
    if _pending.is_set():
        _pending.clear()
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within the block, Ctrl-C is delivered at the next :func:`check` (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _pending.clear()
    previous = signal.signal(signal.SIGINT, _handler)
    try:
        yield
        check()
    finally:
        signal.signal(signal.SIGINT, previous)
        _pending.clear()
