"""Where and how a pointcalo process runs: its torch device, its place in a torchrun job,
its CPU threads, and the lock that keeps two trainings out of one folder. Commands and the
training engine ask here; nothing here knows a model."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import torch
from torch import nn

from pointcalo.errors import PointcaloError


def resolve_device(name: str, option: str = "--device") -> torch.device:
    """The torch device ``name`` (``auto``: CUDA when there is one); ``cuda`` without a GPU is
    a one-line error naming ``option`` (the flag or config field that asked for it)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise PointcaloError(f"{option}: cuda requested but no CUDA device is available")
    return torch.device(name)


def torchrun_env() -> tuple[int, int]:
    """``(rank, world size)`` of this process under torchrun (``(0, 1)`` otherwise)."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


class Dist:
    """torch.distributed set-up from torchrun's environment (a no-op for one process)."""

    def __init__(self, device: torch.device) -> None:
        self.rank, self.world = torchrun_env()
        if self.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def wrap(self, module: nn.Module) -> nn.Module:
        if self.world == 1:
            return module
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(module)

    def close(self) -> None:
        if self.world > 1 and torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()


@contextlib.contextmanager
def run_lock(out: Path):
    """Hold ``out/train.lock`` (an advisory ``flock``, released when the process ends, however
    it ends; the file is removed when the run ends in Python, by success or error) while this
    process trains into ``out``: a second training into the same folder
    (a duplicated command, a forgotten background run) stops with a one-line error instead of
    interleaving its checkpoints and log with the first one's. Only rank 0 of a torchrun job
    writes, so only it locks."""
    if torchrun_env()[0] != 0:
        yield
        return
    import fcntl

    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "train.lock"
    with path.open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise PointcaloError(
                f"{out}: another training ({holder}) is writing to this folder; stop it or "
                "choose another train.out"
            ) from None
        f.truncate(0)
        f.write(f"pid {os.getpid()}")
        f.flush()
        try:
            yield
        finally:  # the run is over (finished or failed): nothing left behind
            path.unlink(missing_ok=True)
            fcntl.flock(f, fcntl.LOCK_UN)
            if created and not any(out.iterdir()):
                out.rmdir()  # a folder this run made and wrote nothing into


def set_threads(threads: int | None) -> None:
    """CPU threads of this process: ``threads`` if given, else ``OMP_NUM_THREADS`` if set, else
    one. Set through the environment before torch or numpy start their thread pools (and on
    torch directly if it is already imported), so every library of the process agrees."""
    import os

    if threads is None:
        if os.environ.get("OMP_NUM_THREADS"):
            return
        threads = 1
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
