"""Point clouds as models see them: feature specs, normalisation, training data as flat
columns (points + offsets + condition per cloud), normalised batches, and generated clouds.

This module is neutral ground: model families and the training engine both import it, and it
imports neither.

Two kinds of point clouds are supported by presets of :class:`FeatureSpec`: calorimeter
showers (``E, x, y, layer``; energy in log; condition: incident energy) and jets in the JetNet
layout (``etarel, phirel, ptrel``; ``ptrel`` in log; condition: jet pt). The condition vector of
a cloud is ``(log c, log n)`` standardised, with ``n`` its number of points.

Batches group clouds of similar size (sorted by point count, then the batches shuffled), so a
step processes similar amounts of work; the order depends only on ``(seed, epoch)``, which is
what makes resuming exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from pointcalo.showers import PointBatch


@dataclass(frozen=True)
class FeatureSpec:
    """Names of the point features, which of them are modelled in log, the integer feature
    (dequantised with uniform noise in training, floored when sampling) and its range, and the
    features that sit on a lattice of pitch ``lattice_pitch`` with cells centred on
    ``(k + 1/2) pitch`` (Geant4's 0.848 mm sub-cells: dequantised with uniform noise over a
    cell in training, snapped to cell centres when sampling)."""

    features: tuple[str, ...]
    log_features: tuple[str, ...] = ()
    integer_feature: str | None = None
    integer_max: int = 0
    condition: str = "incident_energy"
    lattice_features: tuple[str, ...] = ()
    lattice_pitch: float = 0.0


#: ILD-like showers: sub-cell pitch 5.088 mm / 6 of the shared Geant4 sample.
SUBCELL_PITCH = 5.088 / 6
SHOWERS = FeatureSpec(
    ("E", "x", "y", "layer"), ("E",), "layer", 29, "incident_energy", ("x", "y"), SUBCELL_PITCH
)


def shower_spec(attrs: dict, max_layer: int) -> FeatureSpec:
    """The point spec of a shower file: :data:`SHOWERS` with the file's own lattice pitch
    (attribute ``subcell_pitch_mm``: 0.848 mm for the ILD-like files, 1.25 mm for the
    CaloGAN-like one) and layer count (``layer_depth_mm``; else at least the ILD's 30 layers,
    more if the data has more), so a second detector trains without ILD's lattice."""
    pitch = float(attrs.get("subcell_pitch_mm", SUBCELL_PITCH))
    depth = attrs.get("layer_depth_mm")
    top = len(np.atleast_1d(depth)) - 1 if depth is not None else max(SHOWERS.integer_max, 0)
    top = max(top, int(max_layer))
    if np.isclose(pitch, SUBCELL_PITCH, rtol=1e-3) and top == SHOWERS.integer_max:
        return SHOWERS
    return replace(SHOWERS, integer_max=top, lattice_pitch=pitch)


JETS = FeatureSpec(("etarel", "phirel", "ptrel"), ("ptrel",), None, 0, "jet_pt")


@dataclass
class Normalizer:
    """Per-feature standardisation of points and conditions, saved with every checkpoint."""

    spec: FeatureSpec
    mean: np.ndarray
    std: np.ndarray
    cond_mean: np.ndarray
    cond_std: np.ndarray
    extra_names: tuple[str, ...] = ()

    @classmethod
    def fit(
        cls,
        spec: FeatureSpec,
        points: dict[str, np.ndarray],
        cond: np.ndarray,
        counts: np.ndarray,
        extra: dict[str, np.ndarray] | None = None,
    ) -> Normalizer:
        """Means and standard deviations of the point features, of ``(log c, log n)`` and of
        the named ``extra`` conditions (:mod:`pointcalo.conditions`; each ``[N]``, standardised
        as they are)."""
        cols = _transform(spec, points, dequantise=None)
        extra = extra or {}
        c = np.concatenate([_cond(cond, counts), _extra(extra, tuple(extra), len(counts))], 1)
        std = cols.std(0)
        c_std = c.std(0)
        return cls(
            spec,
            cols.mean(0),
            np.where(std > 0, std, 1.0),
            c.mean(0),
            np.where(c_std > 0, c_std, 1.0),
            tuple(extra),
        )

    @property
    def cond_names(self) -> tuple[str, ...]:
        """Names of the columns of :meth:`encode_cond` (a periodic condition gives two)."""
        from pointcalo.conditions import CONDITIONS

        return ("log_c", "log_n", *(c for k in self.extra_names for c in CONDITIONS[k].columns()))

    @property
    def n_extra(self) -> int:
        """Columns the named conditions add to :meth:`encode_cond`."""
        return len(self.cond_names) - 2

    def encode_points(
        self,
        points: dict[str, np.ndarray],
        rng: np.random.Generator | None = None,
        dequantise_integer: bool = True,
    ) -> np.ndarray:
        """``[P, F]`` float32 normalised features; with ``rng`` the integer feature (unless
        ``dequantise_integer`` is False: then it sits at the middle of its bin) and the
        lattice features are dequantised with uniform noise."""
        cols = _transform(self.spec, points, rng, dequantise_integer)
        return ((cols - self.mean) / self.std).astype(np.float32)

    def decode_points(self, x: np.ndarray, clip: float = 10.0) -> dict[str, np.ndarray]:
        """Physical features from normalised ``x [P, F]``; values beyond ``clip`` standard
        deviations (an untrained or diverged model) are clipped so decoding never overflows."""
        x = np.clip(np.nan_to_num(x.astype(np.float64)), -clip, clip) * self.std + self.mean
        out: dict[str, np.ndarray] = {}
        for j, name in enumerate(self.spec.features):
            col = x[:, j]
            if name in self.spec.log_features:
                col = np.exp(col)
            if name == self.spec.integer_feature:
                col = np.clip(np.floor(col), 0, self.spec.integer_max).astype(np.int32)
            elif name in self.spec.lattice_features and self.spec.lattice_pitch > 0:
                col = self._on_lattice(col)
            out[name] = col if col.dtype == np.int32 else col.astype(np.float32)
        return out

    def _on_lattice(self, col: np.ndarray) -> np.ndarray:
        p = self.spec.lattice_pitch
        return (np.floor(col / p) + 0.5) * p

    def snap(self, points: dict[str, np.ndarray]) -> None:
        """Move the lattice features of physical ``points`` to their lattice cell centres, in
        place (a no-op without a lattice)."""
        if self.spec.lattice_pitch > 0:
            for name in self.spec.lattice_features:
                points[name][:] = self._on_lattice(points[name]).astype(points[name].dtype)

    def encode_cond(
        self, cond: np.ndarray, counts: np.ndarray, extra: dict[str, np.ndarray] | None = None
    ) -> np.ndarray:
        """``[N, 2 + k]`` standardised ``(log c, log n)`` and, when the normaliser has extra
        conditions, their standardised values from ``extra`` (named, each ``[N]``). Without
        ``extra`` only the first two columns are given (what a family uses to draw the number
        of points before it has them all)."""
        c = _cond(cond, counts)
        k = c.shape[1]
        if extra is not None and self.extra_names:
            c = np.concatenate([c, _extra(extra, self.extra_names, len(c))], 1)
            k = c.shape[1]
        return ((c - self.cond_mean[:k]) / self.cond_std[:k]).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": {**self.spec.__dict__},
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "cond_mean": self.cond_mean.tolist(),
            "cond_std": self.cond_std.tolist(),
            "extra_names": list(self.extra_names),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Normalizer:
        spec = dict(d["spec"])
        spec["features"] = tuple(spec["features"])
        spec["log_features"] = tuple(spec["log_features"])
        spec["lattice_features"] = tuple(spec.get("lattice_features", ()))
        return cls(
            FeatureSpec(**spec),
            np.asarray(d["mean"]),
            np.asarray(d["std"]),
            np.asarray(d["cond_mean"]),
            np.asarray(d["cond_std"]),
            tuple(d.get("extra_names", ())),
        )


def _transform(
    spec: FeatureSpec,
    points: dict[str, np.ndarray],
    dequantise: np.random.Generator | None,
    dequantise_integer: bool = True,
) -> np.ndarray:
    cols = []
    for name in spec.features:
        col = np.asarray(points[name], dtype=np.float64)
        if name in spec.log_features:
            col = np.log(np.maximum(col, 1e-12))
        if name == spec.integer_feature:
            noisy = dequantise is not None and dequantise_integer
            col = col + (dequantise.random(len(col)) if noisy else 0.5)
        elif name in spec.lattice_features and dequantise is not None:
            col = col + (dequantise.random(len(col)) - 0.5) * spec.lattice_pitch
        cols.append(col)
    return np.stack(cols, 1) if cols else np.zeros((0, 0))


def _cond(cond: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return np.stack(
        [
            np.log(np.asarray(cond, np.float64)),
            np.log(np.maximum(np.asarray(counts, np.float64), 1.0)),
        ],
        1,
    )


def _extra(extra: dict[str, np.ndarray], names: tuple[str, ...], n: int) -> np.ndarray:
    """``[n, C]`` model inputs of the named conditions (float64; a periodic one gives its
    cosine and sine, :meth:`pointcalo.conditions.Condition.encode`)."""
    from pointcalo.conditions import CONDITIONS

    missing = [k for k in names if k not in extra]
    if missing:
        raise KeyError(f"condition {missing[0]!r} not given")
    if not names:
        return np.zeros((n, 0))
    return np.concatenate([CONDITIONS[k].encode(extra[k]).reshape(n, -1) for k in names], 1)


@dataclass
class PointCloudData:
    """Point clouds as flat columns with offsets, the primary condition per cloud (incident
    energy, MeV), named further conditions (``extra``: name -> ``[N]``), a normaliser."""

    spec: FeatureSpec
    offsets: np.ndarray
    points: dict[str, np.ndarray]
    condition: np.ndarray
    normalizer: Normalizer | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    dequantise_integer: bool = True
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def subset(self, index: np.ndarray) -> PointCloudData:
        """Clouds ``index`` (in that order), sharing the normaliser."""
        counts = self.counts[index]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        gather = gather_index(self.offsets, index, counts)
        return PointCloudData(
            self.spec,
            offsets,
            {k: v[gather] for k, v in self.points.items()},
            self.condition[index],
            self.normalizer,
            dict(self.meta),
            self.dequantise_integer,
            {k: v[index] for k, v in self.extra.items()},
        )

    def batch(self, index: np.ndarray, rng: np.random.Generator | None = None) -> PointBatch:
        """A normalised :class:`PointBatch` of clouds ``index``; ``rng`` dequantises."""
        if self.normalizer is None:
            raise RuntimeError("fit or set a normalizer first")
        sub = self.subset(np.asarray(index))
        pts = self.normalizer.encode_points(sub.points, rng, self.dequantise_integer)
        cond = self.normalizer.encode_cond(sub.condition, sub.counts, sub.extra)
        return PointBatch(
            torch.from_numpy(pts),
            torch.from_numpy(sub.offsets),
            torch.from_numpy(cond),
            self.spec.features,
            self.normalizer.cond_names,
        )


#: Clouds per generation batch on a CPU: ~32 showers of ~2,300 points keep the activations in
#: cache; 256 ran at half the speed on one core (elementwise ops are memory-bound there).
CPU_BATCH = 32


@dataclass
class GeneratedClouds:
    """Generated clouds: ``offsets [N + 1]``, physical point columns, the primary condition
    ``[N]``, and for grid models the voxels ``[N, V]`` (MeV) the points stand for."""

    offsets: np.ndarray
    points: dict[str, np.ndarray]
    condition: np.ndarray
    voxels: np.ndarray | None = None

    @staticmethod
    def join(parts: list[GeneratedClouds]) -> GeneratedClouds:
        """The clouds of ``parts`` one after the other (at least one part)."""
        if len(parts) == 1:
            return parts[0]
        offsets = [np.zeros(1, np.int64)]
        for part in parts:
            offsets.append(offsets[-1][-1] + part.offsets[1:])
        points = {k: np.concatenate([p.points[k] for p in parts]) for k in parts[0].points}
        voxels = None
        if all(p.voxels is not None for p in parts):
            voxels = np.concatenate([p.voxels for p in parts])
        condition = np.concatenate([p.condition for p in parts])
        return GeneratedClouds(np.concatenate(offsets), points, condition, voxels)


def gather_index(offsets: np.ndarray, index: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Positions of the points of clouds ``index`` (``counts`` points each) in flat columns
    with offsets ``offsets``, in order."""
    starts = offsets[index]
    total = int(counts.sum())
    shift = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
    return np.arange(total, dtype=np.int64) + shift


def batch_order(counts: np.ndarray, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """Batches of similar point counts for one epoch, in a shuffled order (last partial batch
    dropped so every step has ``batch_size`` clouds)."""
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(len(counts))
    order = perm[np.argsort(counts[perm], kind="stable")]
    n_batches = len(order) // batch_size
    batches = [order[i * batch_size : (i + 1) * batch_size] for i in range(n_batches)]
    rng.shuffle(batches)
    return batches


def from_showers(
    showers, spec: FeatureSpec = SHOWERS, conditions: tuple[str, ...] = (), source: str = ""
) -> PointCloudData:
    """Training data from awkward showers (the data model), with the named further
    ``conditions`` (:mod:`pointcalo.conditions`) read from their per-shower fields."""
    from pointcalo.conditions import select
    from pointcalo.showers import flatten

    flat = flatten(showers)
    return PointCloudData(
        spec,
        flat.offsets,
        {k: flat.points[k] for k in spec.features},
        flat.fields[spec.condition].astype(np.float64),
        extra=select(flat.fields, conditions, source or "showers"),
    )
