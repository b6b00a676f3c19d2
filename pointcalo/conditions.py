"""Named per-shower conditions: what a model is conditioned on, in one place.

A shower carries its incident energy and, where the data has them, further named conditions
(per-shower fields of the HDF5 layout, ``../shared/docs/DESIGN.md``): the polar angle
``theta`` and azimuth ``phi`` of the incident particle (rad), its PDG code ``pdg`` and the
impact point ``impact_x``, ``impact_y`` on the calorimeter face (mm). A run names the further
conditions its model uses (``data.conditions: [theta]``); the training data then carries them,
the normaliser standardises them beside ``(log E, log n)`` (:class:`pointcalo.clouds.Normalizer`),
the checkpoint records each one's training range (``meta.conditions``), ``pointcalo sample``
takes each as a flag (``--theta 0:0.7``, ranges checked against the model's) or all of them from
a shower file (``--conditions-from``), and ``pointcalo models`` shows them.

The primary condition (the incident energy for showers, the jet pt for jets) stays where it
always was (``FeatureSpec.condition``); this module adds the rest and the checks common to all.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from pointcalo.errors import PointcaloError


@dataclass(frozen=True)
class Condition:
    """A named per-shower condition: its unit, the ``pointcalo sample`` flag that sets it, the
    factor from the flag's unit to the stored unit, whether it is a set of discrete values
    (a particle code: drawn from a list, not a range), whether it must be positive, and
    whether it is an angle that wraps around (a model sees its cosine and sine)."""

    name: str
    unit: str
    flag: str
    flag_unit: str
    flag_scale: float = 1.0
    discrete: bool = False
    positive: bool = False
    periodic: bool = False
    about: str = ""

    def columns(self) -> tuple[str, ...]:
        """Names of the model inputs it becomes: itself, or ``cos_<name>``, ``sin_<name>``
        for an angle that wraps around (so 0 and 2 pi are one direction)."""
        return (f"cos_{self.name}", f"sin_{self.name}") if self.periodic else (self.name,)

    def encode(self, values: np.ndarray) -> np.ndarray:
        """``[N, len(columns())]`` model inputs of physical ``values [N]`` (not standardised)."""
        v = np.asarray(values, np.float64)
        return np.stack([np.cos(v), np.sin(v)], 1) if self.periodic else v[:, None]


#: Every condition pointcalo knows, by name.
CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in (
        Condition("incident_energy", "MeV", "--energy", "GeV", 1e3, positive=True),
        Condition("jet_pt", "GeV", "--energy", "GeV", positive=True),
        Condition("theta", "rad", "--theta", "rad", about="polar angle to the face's normal"),
        Condition("phi", "rad", "--phi", "rad", periodic=True, about="azimuth, periodic"),
        Condition("pdg", "", "--particle", "PDG code", discrete=True, about="particle type"),
        Condition("impact_x", "mm", "--impact-x", "mm", about="impact point x on the face"),
        Condition("impact_y", "mm", "--impact-y", "mm", about="impact point y on the face"),
    )
}

#: Particle names ``--particle`` accepts beside PDG codes.
PARTICLES = {"photon": 22, "gamma": 22, "electron": 11, "positron": -11}

#: The conditions a run may add to its primary one (``data.conditions``).
EXTRA = ("theta", "phi", "pdg", "impact_x", "impact_y")


def check_names(names: tuple[str, ...] | list[str]) -> None:
    """Refuse unknown or repeated further condition names (``ValueError``: the config's
    validation names the field, ``data.conditions``)."""
    bad = [n for n in names if n not in EXTRA]
    if bad:
        raise ValueError(f"unknown condition {bad[0]!r} (known: {', '.join(EXTRA)})")
    if len(set(names)) != len(names):
        raise ValueError("a condition is named twice")


def select(fields: Mapping[str, np.ndarray], names: tuple[str, ...], source: str) -> dict:
    """The named conditions ``names`` from per-shower ``fields`` (float64, each ``[N]``);
    a missing or non-finite one is a one-line error naming ``source`` and the field."""
    out = {}
    for name in names:
        if name not in fields:
            have = ", ".join(sorted(fields)) or "none"
            raise PointcaloError(f"{source}: {name}: no such per-shower field (fields: {have})")
        col = np.asarray(fields[name], np.float64)
        if not np.isfinite(col).all():
            raise PointcaloError(f"{source}: {name}: non-finite values")
        out[name] = col
    return out


def ranges(values: Mapping[str, np.ndarray]) -> dict[str, list[float]]:
    """``{name: [min, max]}`` of each condition (a checkpoint's training ranges); discrete
    conditions as the sorted list of their values."""
    out = {}
    for name, col in values.items():
        if CONDITIONS[name].discrete:
            out[name] = sorted({float(v) for v in np.unique(col)})
        else:
            out[name] = [float(np.min(col)), float(np.max(col))]
    return out


def parse_flag(name: str, text: str) -> tuple[float, float] | list[float]:
    """A ``pointcalo sample`` flag's value in stored units: ``'a'`` or ``'a:b'`` (uniform) for
    a continuous condition, ``'a'`` or ``'a,b,...'`` (drawn evenly) for a discrete one."""
    c = CONDITIONS[name]
    if c.discrete:
        try:
            values = [float(PARTICLES.get(v.strip()) or int(v)) for v in text.split(",")]
        except ValueError:
            raise PointcaloError(
                f"{c.flag}: expected {c.flag_unit}s as '22' or '11,22', got {text!r}"
            ) from None
        return values
    try:
        parts = [float(v) * c.flag_scale for v in text.split(":")]
    except ValueError:
        parts = []
    if len(parts) not in (1, 2) or not all(math.isfinite(v) for v in parts):
        raise PointcaloError(f"{c.flag}: expected {c.flag_unit} as 'a' or 'low:high', got {text!r}")
    if c.positive and min(parts) <= 0:
        raise PointcaloError(f"{c.flag}: must be positive, got {text!r}")
    if len(parts) == 2 and parts[0] >= parts[1]:
        raise PointcaloError(f"{c.flag}: the low value must be below the high one, got {text!r}")
    return (parts[0], parts[-1])


def check_within(
    values: Mapping[str, tuple[float, float] | list[float]],
    known: Mapping[str, list[float]],
    allow_extrapolation: bool = False,
) -> None:
    """Refuse requested conditions outside the model's training ranges ``known`` (a continuous
    one may exceed its range by 5 %: a sample's edges, not physics), or conditions the model
    does not take; unless ``allow_extrapolation``, which lifts the range check only."""
    for name, want in values.items():
        c = CONDITIONS[name]
        if name not in known:
            raise PointcaloError(
                f"{c.flag}: the model is not conditioned on {name} "
                f"(it takes: {', '.join(known) or 'no further conditions'})"
            )
        have = known[name]
        if allow_extrapolation or not have:  # no recorded range (an old checkpoint)
            continue
        if c.discrete:
            bad = [v for v in want if v not in have]
            if bad:
                raise PointcaloError(
                    f"{c.flag}: {int(bad[0])} is not among the model's {[int(v) for v in have]}"
                )
            continue
        margin = 0.05 * (have[1] - have[0])
        if want[0] < have[0] - margin or want[1] > have[1] + margin:
            s = c.flag_scale
            raise PointcaloError(
                f"{c.flag}: {want[0] / s:.4g}:{want[1] / s:.4g} {c.flag_unit} lies outside the "
                f"model's training range {have[0] / s:.4g}-{have[1] / s:.4g} {c.flag_unit} "
                "(--allow-extrapolation to sample anyway)"
            )


def draw(
    name: str, spec: tuple[float, float] | list[float], n: int, seed: int, first_index: int = 0
) -> np.ndarray:
    """Condition ``name`` of clouds ``first_index .. first_index + n - 1``: uniform in the range
    (continuous) or evenly from the list (discrete), each from the cloud's own stream, so any
    range of clouds can be made alone. The stream's tag is :data:`pointcalo.streams.CONDITION`
    for a primary condition and is set apart by the condition's place in :data:`CONDITIONS`
    for the others."""
    from pointcalo import streams

    c = CONDITIONS[name]
    if not c.discrete and spec[-1] <= spec[0]:
        return np.full(n, float(spec[0]))
    tag = streams.CONDITION
    if name in EXTRA:
        tag += 100 * (1 + list(CONDITIONS).index(name))
    idx = range(first_index, first_index + n)
    u = np.array([streams.numpy_stream(seed, i, tag).random() for i in idx])
    if c.discrete:
        values = np.asarray(spec, np.float64)
        return values[np.minimum((u * len(values)).astype(np.int64), len(values) - 1)]
    lo, hi = spec
    return lo + (hi - lo) * u
