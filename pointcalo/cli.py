"""The ``pointcalo`` command: the entry point and its error boundary. The subcommands'
options and their thin calls into the library live in :mod:`pointcalo.commands`.

Errors a user can cause print one line (``error: <file>: <field>: <problem>``) and exit with
code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from pointcalo.commands.common import COUNT
from pointcalo.errors import PointcaloError


class _Help(argparse.HelpFormatter):
    """Help that shows each option's default where it has one the text does not name."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        absent = action.default is None or action.default is False
        quiet = absent or action.default == argparse.SUPPRESS or "default" in text
        if quiet or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """Argument errors as one line (``error: <problem>``), exit code 2; defaults in the help."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _Help)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="pointcalo",
        description="Generative models of calorimeter showers as point clouds.",
    )
    from pointcalo import __version__

    parser.add_argument("--version", action="version", version=f"pointcalo {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an internal error"
    )
    parser.add_argument(
        "--threads",
        type=COUNT,
        default=None,
        help="CPU threads for torch and numpy (default: OMP_NUM_THREADS if set, else 1: "
        "on a shared machine more threads spin against other jobs; benchmarks/threads_bench.py)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    from pointcalo.commands import MODULES

    for module in MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. The error boundary: a condition the user caused (a bad argument,
    config, file or checkpoint, an OS error such as a read-only or full disk) is one line
    ``error: ...`` and exit code 2; Ctrl-C is exit 130; anything else is an internal error,
    one line and exit 1, with the traceback under ``--debug``."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        from pointcalo.interrupts import deferred
        from pointcalo.runtime import set_threads  # imports torch: seconds on a busy machine
    except SystemExit as done:  # --help, --version, or a bad argument (already printed)
        return int(done.code or 0) if not isinstance(done.code, str) else 2
    except KeyboardInterrupt:  # Ctrl-C while starting up
        return _fail("interrupted", 130)
    try:
        set_threads(args.threads)
        with deferred():
            return int(args.func(args) or 0)
    except PointcaloError as err:
        return _fail(str(err), 2)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:  # the reader of the output went away (e.g. '| head'): stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as err:
        return _fail(_os_message(err), 2)
    except ValueError as err:
        from voxelize import GridError

        if isinstance(err, GridError):
            return _fail(str(err), 2)
        if args.debug:
            raise
        return _fail(f"internal error: {type(err).__name__}: {err} (run with --debug)", 1)
    except MemoryError:
        return _fail("out of memory: use fewer showers per chunk or batch", 2)
    except Exception as err:
        if args.debug:
            raise
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return _fail(
            f"internal error: {type(err).__name__}: {first} "
            "(run with --debug for the traceback, and please report it)",
            1,
        )


def _fail(message: str, code: int) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return code


def _os_message(err: OSError) -> str:
    """``<file>: <reason>`` of an OS error (h5py's and uproot's included)."""
    name = err.filename or ""
    reason = err.strerror or str(err).strip().splitlines()[0]
    if err.errno == 28:
        reason = "no space left on the device (nothing was left behind)"
    return f"{name}: {reason}" if name else reason


if __name__ == "__main__":
    sys.exit(main())
