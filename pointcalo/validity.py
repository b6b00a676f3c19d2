"""Generated points obey the data's own rules.

Geant4 shower files record one point per sub-cell of a fixed lattice (the sum of the deposits
in it) with positive energy, inside the detector, and never hotter than the physics allows. A
generator's raw output breaks each rule: several points in one sub-cell, zero or negative
energies, points far outside the calorimeter, a hard tail of energies the data never has. The
rules are properties of the *data* (its lattice, its detector volume, its energy range), not of
any readout grid, so enforcing them depends on no grid alignment (:mod:`pointcalo.metrics.
alignment` checks that).

:func:`make_valid_tensors` applies them to generated clouds (:func:`make_valid` on numpy
columns), in this order:

1. lattice: ``x``, ``y`` move to the centre of their lattice sub-cell (pitch from the data);
2. energies that are not finite or not positive are dropped (they carry no energy);
3. points outside the training data's transverse extent or layer range are dropped;
4. energies above the training data's largest point energy are capped at it;
5. points sharing a ``(layer, x, y)`` sub-cell are merged into one (energies summed; merging
   never pushes a sum above the cap: merged sums are capped again);
6. points are ordered by layer, then y, then x (as the Geant4 files are).

The limits (:class:`PointLimits`) are measured on the training showers and stored in the
checkpoint's meta; a checkpoint without them gets the lattice and the layer range from its
normalisation and no extent or energy cap.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pointcalo.errors import PointcaloError


@dataclass(frozen=True)
class PointLimits:
    """What valid points of a dataset look like. Lengths mm, energies MeV.

    Attributes:
        lattice_pitch: pitch of the ``x``, ``y`` lattice (points at ``(k + 1/2) pitch``);
            0: no lattice (points are only merged when exactly equal).
        n_layers: layers ``0 .. n_layers - 1``.
        x_range, y_range: ``(low, high)`` transverse extent of the training points, or None.
        e_max: largest point energy of the training data, or None.
    """

    lattice_pitch: float
    n_layers: int
    x_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None
    e_max: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def bounds(self) -> dict[str, Any]:
        """The keyword arguments of :func:`make_valid_tensors` (``inf`` where unlimited)."""
        inf = math.inf
        x = self.x_range or (-inf, inf)
        y = self.y_range or (-inf, inf)
        return {
            "pitch": self.lattice_pitch,
            "n_layers": self.n_layers,
            "x_lo": x[0],
            "x_hi": x[1],
            "y_lo": y[0],
            "y_hi": y[1],
            "e_max": inf if self.e_max is None else self.e_max,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PointLimits:
        try:
            return cls(
                float(d["lattice_pitch"]),
                int(d["n_layers"]),
                None if d.get("x_range") is None else tuple(map(float, d["x_range"])),
                None if d.get("y_range") is None else tuple(map(float, d["y_range"])),
                None if d.get("e_max") is None else float(d["e_max"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise PointcaloError(f"meta: point_limits: malformed ({err})") from None

    @classmethod
    def measure(cls, points: dict[str, np.ndarray], lattice_pitch: float, n_layers: int):
        """The limits of training ``points`` (columns ``E, x, y, layer``): the extent widened
        by one and a half lattice pitches (the outer edge of the sub-cell beyond the outermost
        one seen: a finite training sample rarely lights the last sub-cell of the detector)."""
        pad = 1.5 * lattice_pitch
        x, y = np.asarray(points["x"], np.float64), np.asarray(points["y"], np.float64)
        return cls(
            float(lattice_pitch),
            int(n_layers),
            (float(x.min()) - pad, float(x.max()) + pad),
            (float(y.min()) - pad, float(y.max()) + pad),
            float(np.max(points["E"])),
        )


def make_valid_tensors(
    e: Tensor,
    x: Tensor,
    y: Tensor,
    layer: Tensor,
    counts: Tensor,
    pitch: float,
    n_layers: int,
    x_lo: float = -math.inf,
    x_hi: float = math.inf,
    y_lo: float = -math.inf,
    y_hi: float = math.inf,
    e_max: float = math.inf,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The rules of the module docstring on flat columns ``e, x, y [P]``, ``layer [P]`` of
    clouds of ``counts [B]`` points (any device; TorchScript-compatible, so exported samplers
    carry it): returns ``(E, x, y [P'] float32, layer [P'] int64, counts [B] int64)``."""
    f64 = torch.float64
    dev = e.device
    cloud = torch.repeat_interleave(torch.arange(counts.shape[0], device=dev), counts)
    e64, x64, y64 = e.to(f64), x.to(f64), y.to(f64)
    layer = layer.to(torch.int64)
    if pitch > 0:
        x64 = (torch.floor(x64 / pitch) + 0.5) * pitch
        y64 = (torch.floor(y64 / pitch) + 0.5) * pitch
    keep = torch.isfinite(e64) & (e64 > 0) & torch.isfinite(x64) & torch.isfinite(y64)
    keep = keep & (layer >= 0) & (layer < n_layers)
    keep = keep & (x64 >= x_lo) & (x64 <= x_hi) & (y64 >= y_lo) & (y64 <= y_hi)
    cloud, e64, x64, y64, layer = cloud[keep], e64[keep], x64[keep], y64[keep], layer[keep]
    e64 = e64.clamp(max=e_max)
    if pitch > 0:  # integer lattice indices: exact keys
        ix = torch.floor(x64 / pitch).to(torch.int64)
        iy = torch.floor(y64 / pitch).to(torch.int64)
    else:
        ix = torch.unique(x64, sorted=True, return_inverse=True)[1]
        iy = torch.unique(y64, sorted=True, return_inverse=True)[1]
    if ix.shape[0] > 0:
        ix, iy = ix - ix.min(), iy - iy.min()
        span_x, span_y = int(ix.max()) + 1, int(iy.max()) + 1
    else:
        span_x, span_y = 1, 1
    key = ((cloud * n_layers + layer) * span_y + iy) * span_x + ix  # cloud, layer, y, x
    uniq, inv = torch.unique(key, sorted=True, return_inverse=True)
    n = uniq.shape[0]
    e_out = torch.zeros(n, dtype=f64, device=dev).index_add_(0, inv, e64).clamp(max=e_max)
    x_out = torch.zeros(n, dtype=f64, device=dev).index_put_((inv,), x64)
    y_out = torch.zeros(n, dtype=f64, device=dev).index_put_((inv,), y64)
    per_cloud = span_x * span_y * n_layers
    layer_out = torch.div(uniq, span_x * span_y, rounding_mode="floor") % n_layers
    counts_out = torch.bincount(
        torch.div(uniq, per_cloud, rounding_mode="floor"), minlength=counts.shape[0]
    )
    return (
        e_out.to(torch.float32),
        x_out.to(torch.float32),
        y_out.to(torch.float32),
        layer_out,
        counts_out,
    )


def make_valid(
    offsets: np.ndarray, points: dict[str, np.ndarray], limits: PointLimits
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(offsets [N+1], points)`` of generated clouds made valid (:func:`make_valid_tensors`
    on numpy columns ``E, x, y, layer``): clouds may lose points (a cloud left without a
    valid point is written as an empty shower)."""
    counts = torch.as_tensor(np.diff(np.asarray(offsets, np.int64)))
    cols = [torch.as_tensor(np.asarray(points[k])) for k in ("E", "x", "y", "layer")]
    e, x, y, layer, new_counts = make_valid_tensors(*cols, counts, **limits.bounds())
    out = {
        "E": e.numpy(),
        "x": x.numpy(),
        "y": y.numpy(),
        "layer": layer.numpy().astype(np.asarray(points["layer"]).dtype),
    }
    return np.concatenate([[0], np.cumsum(new_counts.numpy())]).astype(np.int64), out


def violations(
    offsets: np.ndarray, points: dict[str, np.ndarray], limits: PointLimits
) -> dict[str, int]:
    """How many points of clouds break each rule (all zero for valid clouds): ``shared``
    (points beyond the first in a sub-cell), ``not_positive``, ``outside``, ``off_lattice``,
    ``above_e_max``."""
    counts = np.diff(np.asarray(offsets, np.int64))
    cloud = np.repeat(np.arange(len(counts)), counts)
    e = np.asarray(points["E"], np.float64)
    x = np.asarray(points["x"], np.float64)
    y = np.asarray(points["y"], np.float64)
    layer = np.asarray(points["layer"], np.int64)
    out = {"not_positive": int(np.sum(~(e > 0)))}
    outside = (layer < 0) | (layer >= limits.n_layers)
    if limits.x_range is not None:
        outside |= (x < limits.x_range[0]) | (x > limits.x_range[1])
    if limits.y_range is not None:
        outside |= (y < limits.y_range[0]) | (y > limits.y_range[1])
    out["outside"] = int(outside.sum())
    out["above_e_max"] = int(np.sum(e > limits.e_max * (1 + 1e-6))) if limits.e_max else 0
    p = limits.lattice_pitch
    if p > 0:
        off = np.abs(x / p - 0.5 - np.round(x / p - 0.5)) + np.abs(
            y / p - 0.5 - np.round(y / p - 0.5)
        )
        out["off_lattice"] = int(np.sum(off > 1e-3))
        ix, iy = np.floor(x / p).astype(np.int64), np.floor(y / p).astype(np.int64)
    else:
        out["off_lattice"] = 0
        _, ix = np.unique(x, return_inverse=True)
        _, iy = np.unique(y, return_inverse=True)
    keys = np.stack([cloud, layer, ix, iy], axis=1)
    out["shared"] = int(len(keys) - len(np.unique(keys, axis=0))) if len(keys) else 0
    return out


def spec_limits(spec: Any) -> PointLimits | None:
    """The lattice and layer range a feature spec (:class:`pointcalo.clouds.FeatureSpec`)
    declares, with no extent or energy cap (what a checkpoint without measured limits gets);
    None for clouds that are not calorimeter showers (jets)."""
    if tuple(spec.features) != ("E", "x", "y", "layer"):
        return None
    pitch = float(spec.lattice_pitch) if set(spec.lattice_features) == {"x", "y"} else 0.0
    return PointLimits(pitch, int(spec.integer_max) + 1)


def measured_limits(spec: Any, points: dict[str, np.ndarray]) -> PointLimits | None:
    """:meth:`PointLimits.measure` of training ``points`` on the lattice and layers of
    ``spec`` (None for clouds that are not calorimeter showers, or no points)."""
    base = spec_limits(spec)
    if base is None or len(points["E"]) == 0:
        return None
    return PointLimits.measure(points, base.lattice_pitch, base.n_layers)


class ValidPoints(nn.Module):
    """:func:`make_valid_tensors` with the bounds of ``limits`` held as attributes, for the
    scripted samplers the exports write: ``forward(e, x, y, layer, counts)``."""

    def __init__(self, limits: PointLimits) -> None:
        super().__init__()
        b = limits.bounds()
        self.pitch, self.n_layers, self.e_max = float(b["pitch"]), int(b["n_layers"]), b["e_max"]
        self.x_lo, self.x_hi, self.y_lo, self.y_hi = b["x_lo"], b["x_hi"], b["y_lo"], b["y_hi"]

    def forward(
        self, e: Tensor, x: Tensor, y: Tensor, layer: Tensor, counts: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        return make_valid_tensors(
            e, x, y, layer, counts, self.pitch, self.n_layers,
            self.x_lo, self.x_hi, self.y_lo, self.y_hi, self.e_max,
        )  # fmt: skip
