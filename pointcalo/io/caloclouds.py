"""The CaloClouds HDF5 layout (Buhmann et al., arXiv 2305.04847 and 2309.05704).

``events``: ``[N, 4, max_points]`` (or ``[N, max_points, 4]``) holding x, y, z (mm) and E (GeV)
per point, zero-padded (a point with E = 0 is padding); ``energy``: ``[N, 1]`` incident energy
(GeV). Reading gives showers in the data model (MeV, mm, with per-point ``z``); the layer of a
point is the sensor plane nearest to its ``z`` (``layer_depth``, mm), or, without depths, the
rank of its ``z`` among the distinct planes in the file.
"""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import h5py
import numpy as np

from pointcalo.errors import ShowerFormatError
from pointcalo.io.atomic import atomic_path
from pointcalo.io.hdf5 import open_hdf5
from pointcalo.showers import flatten, make_showers


def read_caloclouds(
    path: str | os.PathLike[str],
    *,
    layer_depth: np.ndarray | None = None,
    energy_scale: float = 1000.0,
    start: int = 0,
    stop: int | None = None,
) -> ak.Array:
    """Showers from a CaloClouds-layout file (energies times ``energy_scale`` to MeV)."""
    path = Path(path)
    with open_hdf5(path) as f:
        for key in ("events", "energy"):
            if key not in f:
                raise ShowerFormatError(path, key, f"missing dataset (file has: {', '.join(f)})")
        events = np.asarray(f["events"][start:stop], dtype=np.float64)
        energy = np.asarray(f["energy"][start:stop], dtype=np.float64).reshape(-1)
    if events.ndim != 3 or 4 not in events.shape[1:]:
        raise ShowerFormatError(
            path, "events", f"must be [N, 4, P] or [N, P, 4], got {events.shape}"
        )
    if events.shape[1] != 4 or (events.shape[2] == 4 and events.shape[1] != 4):
        events = events.transpose(0, 2, 1)  # [N, P, 4] -> [N, 4, P]
    if len(energy) != len(events):
        raise ShowerFormatError(path, "energy", f"{len(energy)} values for {len(events)} events")
    x, y, z, e = (events[:, k, :] for k in range(4))
    real = e > 0
    counts = real.sum(1)
    z_real = z[real]
    if layer_depth is None:
        planes = np.unique(np.round(z_real, 3))
        layer = np.searchsorted(planes, np.round(z_real, 3))
    else:
        depth = np.asarray(layer_depth, dtype=np.float64)
        layer = np.abs(z_real[:, None] - depth[None, :]).argmin(1)
    points = {
        "E": (e[real] * energy_scale).astype(np.float32),
        "x": x[real].astype(np.float32),
        "y": y[real].astype(np.float32),
        "layer": layer.astype(np.int32),
        "z": z_real.astype(np.float32),
    }
    return make_showers(
        (energy * energy_scale).astype(np.float32),
        points,
        counts=counts,
        source=str(path),
        allow_empty=True,
    )


def write_caloclouds(
    showers: ak.Array,
    path: str | os.PathLike[str],
    *,
    layer_depth: np.ndarray | None = None,
    energy_scale: float = 1000.0,
    max_points: int | None = None,
) -> Path:
    """Write showers in the CaloClouds layout ``[N, 4, max_points]`` (GeV), atomically.

    ``z`` is the points' own ``z`` if present, else ``layer_depth[layer]`` (default: the
    ILD-like depths of the shared Geant4 sample).
    """
    flat = flatten(showers)
    if "z" in flat.points:
        z = flat.points["z"].astype(np.float64)
    else:
        if layer_depth is None:
            from voxelize.presets import ILD_LAYER_DEPTH_MM as layer_depth
        z = np.asarray(layer_depth, dtype=np.float64)[flat.points["layer"]]
    counts = flat.counts
    width = int(max_points or (counts.max() if len(counts) else 1))
    if len(counts) and counts.max() > width:
        raise ShowerFormatError(path, "max_points", f"{width} < {counts.max()} points of a shower")
    events = np.zeros((flat.n_showers, 4, width), np.float32)
    shower = np.repeat(np.arange(flat.n_showers), counts)
    slot = np.arange(flat.n_points) - np.repeat(flat.offsets[:-1], counts)
    for k, col in enumerate(
        (flat.points["x"], flat.points["y"], z, flat.points["E"] / energy_scale)
    ):
        events[shower, k, slot] = col
    energy = (flat.fields["incident_energy"] / energy_scale).astype(np.float32)[:, None]
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("events", data=events, compression="gzip")
        f["energy"] = energy
    return Path(path)
