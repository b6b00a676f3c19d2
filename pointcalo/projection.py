"""Projecting a shower file onto a detector grid, chunk by chunk, into a CaloChallenge-layout
voxel file (``pointcalo voxelize``); the projection itself is :func:`voxelize.project`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import voxelize
from pointcalo import io
from pointcalo.errors import ShowerFormatError


@dataclass(frozen=True)
class Projected:
    """What :func:`voxelize_file` wrote: showers, the grid's name and voxel count, the
    fraction of the energy that fell outside the grid, and how layers were mapped (None: layer
    ``i`` onto layer ``i``; ``"depth"``: by depth, with ``by_file_depth`` when the file's own
    ``layer_depth_mm`` chose it)."""

    n_showers: int
    grid: str
    n_voxels: int
    outside_fraction: float
    layer_map: str | None
    by_file_depth: bool


def parse_layer_map(text: str | None) -> str | np.ndarray | None:
    """``--layer-map``: ``'depth'`` or comma-separated grid layers per source layer (-1 drops)."""
    if text is None or text == "depth":
        return text
    try:
        return np.array([int(v) for v in text.split(",")])
    except ValueError:
        raise ShowerFormatError(
            None, "--layer-map", f"expected 'depth' or comma-separated ints: {text}"
        ) from None


def voxelize_file(
    source: str,
    output: str,
    grid: voxelize.Grid,
    *,
    layer_map: str | np.ndarray | None = None,
    source_depth: np.ndarray | None = None,
    chunk_size: int = 256,
    progress: Callable[[int, int], None] | None = None,
) -> Projected:
    """Project every shower of ``source`` onto ``grid`` into ``output`` (CaloChallenge layout:
    ``incident_energies [N]``, ``showers [N, V]`` MeV). When the file's layers are not the
    grid's (its ``layer_depth_mm`` has another length) and no ``layer_map`` is given, layers
    are mapped by depth if the grid knows its depths, else it is a one-line error asking for
    a map. ``progress(done, total)`` after every chunk."""
    inside = outside = 0.0
    by_file_depth = False
    with io.open_reader(source) as reader:
        file_depth = (getattr(reader, "attrs", {}) or {}).get("layer_depth_mm")
        if layer_map is None and file_depth is not None and len(file_depth) != grid.n_layers:
            if grid.layer_depth is None:
                raise ShowerFormatError(
                    source, "layer_depth_mm", f"{len(file_depth)} layers, grid "
                    f"'{grid.name}' has {grid.n_layers} and no depths: give --layer-map"
                )  # fmt: skip
            layer_map, source_depth = "depth", np.asarray(file_depth, np.float64)
            by_file_depth = True
        attrs = {"grid": grid.name, "source": str(source), "units": "MeV"}
        from voxelize.calochallenge_files import CaloChallengeWriter

        with CaloChallengeWriter(output, grid.n_voxels, attrs=attrs) as writer:
            for chunk in reader.iter_chunks(chunk_size):
                try:
                    proj = voxelize.project(
                        chunk, grid, layer_map=layer_map, source_depth=source_depth
                    )
                except voxelize.GridError as err:
                    raise ShowerFormatError(source, None, str(err)) from None
                writer.write(np.asarray(chunk.incident_energy), proj.voxels)
                inside += float(proj.voxels.sum(dtype=np.float64))
                outside += float(proj.outside.sum(dtype=np.float64))
                if progress is not None:
                    progress(writer.n_showers, reader.n_showers)
    mapped = layer_map if isinstance(layer_map, str) or layer_map is None else "explicit"
    frac = outside / max(inside + outside, 1e-300)
    return Projected(writer.n_showers, grid.name, grid.n_voxels, frac, mapped, by_file_depth)
