"""A frozen-shower library: stored showers indexed by incident energy.

The classic fast-simulation baseline of the experiments (frozen showers, e.g. ATLAS's
forward-calorimeter shower libraries, Barberio et al., J. Phys. Conf. Ser. 160 (2009) 012082):
instead of simulating, take a stored full-simulation shower of similar energy and scale it.
All showers are buffers of one module, so the library is saved and rebuilt like any model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pointcalo.clouds import PointCloudData


class ShowerLibrary(nn.Module):
    """Showers as flat buffers: ``energy [N]`` (MeV, sorted), ``offsets [N + 1]``,
    ``points [P, F]`` (physical units, feature order ``features``)."""

    def __init__(self, n_showers: int, n_points: int, features: tuple[str, ...]) -> None:
        super().__init__()
        self.features = tuple(features)
        self.register_buffer("energy", torch.zeros(n_showers, dtype=torch.float64))
        self.register_buffer("offsets", torch.zeros(n_showers + 1, dtype=torch.int64))
        self.register_buffer("points", torch.zeros(n_points, len(features)))

    @classmethod
    def from_data(cls, data: PointCloudData) -> ShowerLibrary:
        """A library of every cloud of ``data`` (sorted by condition)."""
        order = np.argsort(data.condition, kind="stable")
        sub = data.subset(order)
        lib = cls(len(sub), int(sub.offsets[-1]), sub.spec.features)
        lib.energy.copy_(torch.as_tensor(sub.condition, dtype=torch.float64))
        lib.offsets.copy_(torch.as_tensor(sub.offsets, dtype=torch.int64))
        cols = np.stack([np.asarray(sub.points[f], np.float32) for f in sub.spec.features], 1)
        lib.points.copy_(torch.as_tensor(cols))
        return lib

    def nearest(self, energy: np.ndarray, k: int) -> np.ndarray:
        """``[M, min(k, N)]`` indices of the stored showers nearest in ``log E`` to each
        requested energy."""
        stored = np.log(self.energy.numpy())
        want = np.log(np.asarray(energy, np.float64))
        k = min(k, len(stored))
        pos = np.searchsorted(stored, want)
        # the k nearest lie within k of the insertion point
        lo = np.clip(pos - k, 0, len(stored) - 1)
        window = lo[:, None] + np.arange(2 * k)[None, :]
        window = np.clip(window, 0, len(stored) - 1)
        dist = np.abs(stored[window] - want[:, None])
        pick = np.argsort(dist, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(window, pick, 1)
