"""The frame a model's points live in: the detector's, or the impact point's.

Showers are recorded in the detector frame (x, y on the sensor lattice; cell centres at
x = y = 0). A particle entering anywhere in a cell makes the same shower moved by its impact
point, so the natural frame for a model is the one centred on the impact point (as Key4hep
DDML's local frame is): ``data.frame: impact`` trains on ``x - impact_x, y - impact_y`` and
generation moves the points back by the requested impact point before the validity rules snap
them onto the sensor lattice of the detector frame. The two directions live here and nowhere
else. The model stays conditioned on the impact point (``data.conditions`` must name
``impact_x`` and ``impact_y``): in its own frame that is the phase of the sensor lattice, the
one thing the impact point still changes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pointcalo.errors import ConfigError

#: The per-shower conditions that place the impact frame, in ``x, y`` order.
IMPACT = ("impact_x", "impact_y")


def check(frame: str, conditions: tuple[str, ...]) -> None:
    """A ConfigError unless, for the ``impact`` frame, the impact point is among the model's
    ``conditions`` (the config's own validation admits ``detector`` and ``impact`` only)."""
    if frame == "impact" and not set(IMPACT) <= set(conditions):
        raise ConfigError(
            "data.frame: 'impact' needs the impact point among data.conditions (impact_x, impact_y)"
        )


def shift(
    points: dict[str, np.ndarray],
    offsets: np.ndarray,
    impact: dict[str, np.ndarray],
    sign: float,
) -> dict[str, np.ndarray]:
    """``points`` (columns, showers delimited by ``offsets``) with ``x, y`` moved by ``sign``
    times each shower's impact point (``impact``: ``impact_x``, ``impact_y``, each ``[N]``, mm);
    the other columns are the same arrays."""
    counts = np.diff(offsets)
    out = dict(points)
    for col, name in zip(("x", "y"), IMPACT, strict=True):
        move = np.repeat(np.asarray(impact[name], np.float64), counts)
        out[col] = (np.asarray(points[col], np.float64) + sign * move).astype(points[col].dtype)
    return out


def to_model_frame(data, frame: str):
    """Training clouds (:class:`pointcalo.clouds.PointCloudData`) in the model's ``frame``: a
    new object, the caller's untouched."""
    if frame == "detector":
        return data
    return dataclasses.replace(data, points=shift(data.points, data.offsets, data.extra, -1.0))


def to_detector_frame(
    points: dict[str, np.ndarray], offsets: np.ndarray, conditions: dict, frame: str
) -> dict[str, np.ndarray]:
    """Generated points of a model trained in ``frame`` back in the detector frame, by the
    requested impact points in ``conditions``."""
    if frame == "detector":
        return points
    return shift(points, offsets, conditions, +1.0)


def widen(limits, conditions: dict, frame: str):
    """Point limits measured on training points in ``frame``
    (:class:`pointcalo.validity.PointLimits`), widened to hold the same points moved back by
    the impact points of ``conditions`` (detector frame)."""
    if frame == "detector" or limits is None:
        return limits

    def grow(r, name):
        if r is None:
            return None
        v = np.asarray(conditions[name], np.float64)
        return (r[0] + min(float(v.min()), 0.0), r[1] + max(float(v.max()), 0.0))

    return dataclasses.replace(
        limits, x_range=grow(limits.x_range, "impact_x"), y_range=grow(limits.y_range, "impact_y")
    )
