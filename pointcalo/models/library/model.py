"""A frozen-shower library: stored showers indexed by incident energy and named conditions.

The classic fast-simulation baseline of the experiments (frozen showers, e.g. ATLAS's
forward-calorimeter shower libraries, Barberio et al., J. Phys. Conf. Ser. 160 (2009) 012082):
instead of simulating, take a stored full-simulation shower of similar energy and scale it.
With named conditions (``data.conditions``: angles, particle, impact point) the stored shower
is the nearest in condition space: the distance is the sum of squared differences of ``log E``
and of each matched condition, each in units of its spread over the library (``phi`` by its
angular difference); a different particle is never near (its distance is 10^6).
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

    def __init__(
        self,
        n_showers: int,
        n_points: int,
        features: tuple[str, ...],
        conditions: tuple[str, ...] = (),
    ) -> None:
        super().__init__()
        self.features, self.conditions = tuple(features), tuple(conditions)
        self.register_buffer("energy", torch.zeros(n_showers, dtype=torch.float64))
        self.register_buffer("offsets", torch.zeros(n_showers + 1, dtype=torch.int64))
        self.register_buffer("points", torch.zeros(n_points, len(features)))
        # named conditions of each stored shower, physical units, columns as ``conditions``
        self.register_buffer("extra", torch.zeros(n_showers, len(conditions), dtype=torch.float64))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """A library written before named conditions has no ``extra``: it had none, so an
        empty one is right; one with conditions still needs its own."""
        if prefix + "extra" not in state_dict and not self.conditions:
            state_dict[prefix + "extra"] = self.extra.clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @classmethod
    def from_data(cls, data: PointCloudData) -> ShowerLibrary:
        """A library of every cloud of ``data`` (sorted by condition), with its named
        conditions."""
        order = np.argsort(data.condition, kind="stable")
        sub = data.subset(order)
        names = tuple(sub.extra)
        lib = cls(len(sub), int(sub.offsets[-1]), sub.spec.features, names)
        if names:
            cols = np.stack([np.asarray(sub.extra[k], np.float64) for k in names], 1)
            lib.extra.copy_(torch.as_tensor(cols))
        lib.energy.copy_(torch.as_tensor(sub.condition, dtype=torch.float64))
        lib.offsets.copy_(torch.as_tensor(sub.offsets, dtype=torch.int64))
        cols = np.stack([np.asarray(sub.points[f], np.float32) for f in sub.spec.features], 1)
        lib.points.copy_(torch.as_tensor(cols))
        return lib

    def nearest_in_conditions(
        self, energy: np.ndarray, named: dict[str, np.ndarray], k: int, ignore: tuple = ()
    ) -> np.ndarray:
        """``[M, min(k, N)]`` indices of the stored showers nearest to each request in
        ``log E`` and the named conditions ``named`` (those in ``ignore`` left out: the
        generation moves the shower there instead); see the module docstring."""
        stored = [np.log(self.energy.numpy())]
        want = [np.log(np.asarray(energy, np.float64))]
        kinds = ["linear"]
        extra = self.extra.numpy()
        for j, name in enumerate(self.conditions):
            if name in ignore:
                continue
            stored.append(extra[:, j])
            want.append(np.asarray(named[name], np.float64))
            kinds.append({"phi": "angle", "pdg": "exact"}.get(name, "linear"))
        k = min(k, len(stored[0]))
        spread = [max(float(np.std(col)), 1e-12) for col in stored]  # the library's, once
        out = np.empty((len(want[0]), k), np.int64)
        for lo in range(0, len(want[0]), 256):  # [256, N] distances at a time
            d = np.zeros((min(256, len(want[0]) - lo), len(stored[0])))
            for s_col, w_col, kind, unit in zip(stored, want, kinds, spread, strict=True):
                diff = w_col[lo : lo + 256, None] - s_col[None, :]
                if kind == "exact":
                    d += 1e6 * (diff != 0)
                    continue
                if kind == "angle":
                    diff = np.angle(np.exp(1j * diff))
                d += (diff / unit) ** 2
            part = np.argpartition(d, k - 1, axis=1)[:, :k]
            order = np.argsort(np.take_along_axis(d, part, 1), axis=1, kind="stable")
            out[lo : lo + len(d)] = np.take_along_axis(part, order, 1)
        return out

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
