"""JetNet-layout HDF5 files of jets as particle clouds (Kansal et al., arXiv 2106.11535).

``particle_features [N, max_particles, 4]``: relative eta, relative phi, relative pt and a mask
(1 for a real particle, 0 for padding); ``jet_features [N, 4]``: type, pt (GeV), eta, mass.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import h5py
import numpy as np

from pointcalo.errors import ShowerFormatError
from pointcalo.io.atomic import atomic_path
from pointcalo.io.hdf5 import open_hdf5

FEATURES = ("etarel", "phirel", "ptrel")


def read_jetnet(path: str | os.PathLike[str], max_jets: int | None = None):
    """Jets as :class:`pointcalo.clouds.PointCloudData` (features etarel, phirel, ptrel;
    condition: jet pt)."""
    from pointcalo.clouds import JETS, PointCloudData

    path = Path(path)
    with open_hdf5(path) as f:
        for key in ("particle_features", "jet_features"):
            if key not in f:
                raise ShowerFormatError(path, key, f"missing dataset (file has: {', '.join(f)})")
        parts = f["particle_features"][:max_jets]
        jets = f["jet_features"][:max_jets]
    if parts.ndim != 3 or parts.shape[2] < 4:
        raise ShowerFormatError(
            path, "particle_features", f"must be [N, particles, 4], got {parts.shape}"
        )
    if jets.ndim != 2 or jets.shape[0] != parts.shape[0] or jets.shape[1] < 2:
        raise ShowerFormatError(
            path, "jet_features", f"must be [N, 4] alike particle_features, got {jets.shape}"
        )
    mask = parts[:, :, 3] > 0
    counts = mask.sum(1)
    if np.any(counts == 0):
        raise ShowerFormatError(
            path, "particle_features", f"jet {int(np.argmin(counts))} has no particles"
        )
    sel = parts[mask]
    if not np.all(np.isfinite(sel)) or np.any(sel[:, 2] <= 0):
        raise ShowerFormatError(path, "particle_features", "non-finite or non-positive ptrel")
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    points = {name: sel[:, j].astype(np.float32) for j, name in enumerate(FEATURES)}
    data = PointCloudData(JETS, offsets, points, jets[:, 1].astype(np.float64))
    data.meta["source"] = str(path)
    return data


def write_jetnet(
    path: str | os.PathLike[str],
    offsets: np.ndarray,
    points: dict[str, np.ndarray],
    jet_pt: np.ndarray,
    max_particles: int | None = None,
) -> Path:
    """Write jets in the JetNet layout (zero-padded to ``max_particles``), atomically."""
    counts = np.diff(offsets)
    width = int(max_particles or (counts.max() if len(counts) else 1))
    parts = np.zeros((len(counts), width, 4), np.float32)
    for j, name in enumerate(FEATURES):
        for i, (lo, hi) in enumerate(itertools.pairwise(offsets)):
            n = min(hi - lo, width)
            parts[i, :n, j] = points[name][lo : lo + n]
    for i, n in enumerate(counts):
        parts[i, : min(n, width), 3] = 1.0
    jets = np.zeros((len(counts), 4), np.float32)
    jets[:, 1] = jet_pt
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f["particle_features"] = parts
        f["jet_features"] = jets
    return Path(path)
