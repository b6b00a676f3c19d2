"""Lazy reading of many shower files with dask-awkward (optional: ``pip install
pointcalo[dask]``), so the notebook idioms of ``notebooks/01`` run over more showers than fit
in memory, on a laptop or a dask cluster.

Each partition is a run of at most ``chunk_size`` showers of one file, read by pointcalo's own
readers (:func:`pointcalo.io.open_reader`: HDF5, pointcalo ROOT trees, EDM4hep), so a lazy
array has the same data model as :func:`pointcalo.io.read`:
``N * {incident_energy, points: var * {E, x, y, layer}}``.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import awkward as ak

from pointcalo.errors import ShowerFormatError


def expand_paths(paths: str | os.PathLike[str] | list[Any]) -> list[Path]:
    """Files named by ``paths`` (a path, a glob pattern, or a list of them), in sorted order
    within each pattern; a clear error if one names nothing."""
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    files: list[Path] = []
    for item in items:
        text = str(item)
        found = sorted(glob.glob(text)) if glob.has_magic(text) else [text]  # noqa: PTH207
        if not found or not all(Path(f).exists() for f in found):
            raise ShowerFormatError(text, None, "no such file (or the pattern matches none)")
        files += [Path(f) for f in found]
    return files


class _ReadPartition:
    """``(path, start, stop) -> showers``: one partition (a picklable callable for dask);
    ``read`` is :func:`pointcalo.io.read` (passed in: this module does not import its
    package)."""

    def __init__(self, read: Callable[..., ak.Array], options: dict[str, Any]) -> None:
        self.read, self.options = read, options

    def __call__(self, part: tuple[str, int, int]) -> ak.Array:
        path, start, stop = part
        return self.read(path, start, stop, allow_empty=True, **self.options)


def lazy_showers(
    paths: str | os.PathLike[str] | list[Any],
    chunk_size: int,
    open_reader: Callable[..., Any],
    read: Callable[..., ak.Array],
    reader_options: dict[str, Any],
):
    """A lazy ``dask_awkward.Array`` of the showers of ``paths`` (files or glob patterns), one
    partition per ``chunk_size`` showers of a file, read with pointcalo.io's ``open_reader``
    and ``read`` (passed in: this module does not import its package). Only the shower counts
    are read now. Public entry: :func:`pointcalo.io.read_dask`."""
    try:
        import dask_awkward as dak
    except ImportError:
        raise ImportError("read_dask needs dask-awkward: pip install 'pointcalo[dask]'") from None
    parts = []
    for path in expand_paths(paths):
        with open_reader(path, allow_empty=True, **reader_options) as reader:
            n = reader.n_showers
        parts += [(str(path), s, min(s + chunk_size, n)) for s in range(0, n, chunk_size)]
    if not parts:
        raise ShowerFormatError(str(paths), None, "no showers in these files")
    partition = _ReadPartition(read, reader_options)
    empty = partition((parts[0][0], 0, 0))  # the type, from no showers
    meta = ak.Array(empty.layout.to_typetracer(forget_length=True))
    return dak.from_map(partition, parts, label="pointcalo-read", meta=meta)
