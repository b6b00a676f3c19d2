"""The shower data model: one representation everywhere.

A set of showers is an :class:`awkward.Array` of records::

    N * {incident_energy: float32, points: var * {E: float32, x: float32, y: float32, layer: int32}}

with optional per-point ``z`` (depth along the shower axis) and optional per-shower fields
(``theta``, ``phi``, ``pid``, ...). Units: energies in MeV (incident and deposited), lengths in
mm, layers counted from 0 at the front face of the calorimeter.

At the torch boundary a batch is flat (:class:`PointBatch`): ``points[P, F]``, ``ptr[B + 1]``
(the awkward offsets) and ``cond[B, C]``. Pooling over a shower is a segment reduction over
``ptr``; there is no padding.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import awkward as ak
import numpy as np

from pointcalo.errors import ShowerFormatError

if TYPE_CHECKING:
    import torch

#: Per-point fields every shower has, with their canonical dtypes.
REQUIRED_POINT_FIELDS: dict[str, np.dtype] = {
    "E": np.dtype(np.float32),
    "x": np.dtype(np.float32),
    "y": np.dtype(np.float32),
    "layer": np.dtype(np.int32),
}
#: Optional per-point fields with known dtypes (other extra point fields keep their dtype).
OPTIONAL_POINT_FIELDS: dict[str, np.dtype] = {"z": np.dtype(np.float32)}
#: Default feature order at the torch boundary.
DEFAULT_FEATURES: tuple[str, ...] = ("E", "x", "y", "layer")
UNITS = "energies MeV, lengths mm"


@dataclass(frozen=True)
class FlatShowers:
    """Showers as flat numpy columns: the layout shared by files, torch and voxelize.

    Attributes:
        offsets: int64 ``[N + 1]``, starting at 0; shower ``i`` owns points
            ``offsets[i]:offsets[i + 1]``.
        points: per-point columns, each of shape ``[P]`` (``P = offsets[-1]``).
        fields: per-shower columns, each of shape ``[N]``; always holds ``incident_energy``.
    """

    offsets: np.ndarray
    points: dict[str, np.ndarray]
    fields: dict[str, np.ndarray]

    @classmethod
    def empty(cls) -> FlatShowers:
        """No showers, with the required columns."""
        points = {k: np.zeros(0, v) for k, v in REQUIRED_POINT_FIELDS.items()}
        return cls(np.zeros(1, np.int64), points, {"incident_energy": np.zeros(0, np.float32)})

    @property
    def n_showers(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_points(self) -> int:
        return int(self.offsets[-1])

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)


def canonical_order(names: Iterable[str]) -> list[str]:
    """Point-field names in the data model's order: E, x, y, layer, z, then others sorted."""
    known = [*REQUIRED_POINT_FIELDS, *OPTIONAL_POINT_FIELDS]
    names = list(names)
    return [k for k in known if k in names] + sorted(k for k in names if k not in known)


def _canonical(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values)
    dtype = REQUIRED_POINT_FIELDS.get(name) or OPTIONAL_POINT_FIELDS.get(name)
    if dtype is not None and arr.dtype != dtype:
        fractional = arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr)))
        if dtype.kind == "i" and arr.size and fractional:
            raise ShowerFormatError(None, f"points/{name}", "layer values must be integers")
        arr = arr.astype(dtype)
    return arr


def make_showers(
    incident_energy: Any,
    points: Mapping[str, Any],
    *,
    offsets: Any = None,
    counts: Any = None,
    fields: Mapping[str, Any] | None = None,
    check: bool = True,
    allow_empty: bool = False,
    source: str | None = None,
) -> ak.Array:
    """Build showers from flat columns without copying them (apart from dtype casts).

    Args:
        incident_energy: ``[N]`` incident energies in MeV.
        points: per-point columns ``E`` (MeV), ``x``, ``y`` (mm), ``layer`` and optionally ``z``
            (mm) or other per-point fields, each of shape ``[P]``.
        offsets: ``[N + 1]`` offsets into the point columns; or give ``counts`` ``[N]``.
        fields: optional per-shower columns of shape ``[N]`` (``theta``, ``phi``, ``pid``...).
        check: validate the result (:func:`validate`).
        allow_empty: accept showers without points.
        source: name used in error messages (a file path, say).

    Returns:
        An awkward array ``N * {incident_energy, points: var * {E, x, y, layer, ...}, ...}``.
    """
    if (offsets is None) == (counts is None):
        raise ShowerFormatError(source, "offsets", "give exactly one of offsets or counts")
    if offsets is None:
        counts_arr = np.asarray(counts, dtype=np.int64)
        offsets_arr = np.zeros(len(counts_arr) + 1, dtype=np.int64)
        np.cumsum(counts_arr, out=offsets_arr[1:])
    else:
        offsets_arr = np.asarray(offsets, dtype=np.int64)
    missing = [k for k in REQUIRED_POINT_FIELDS if k not in points]
    if missing:
        raise ShowerFormatError(source, f"points/{missing[0]}", "missing required point field")
    flat = FlatShowers(
        offsets=offsets_arr,
        points={k: _canonical(k, v) for k, v in points.items()},
        fields={
            "incident_energy": np.asarray(incident_energy, dtype=np.float32).reshape(-1),
            **{k: np.asarray(v) for k, v in (fields or {}).items()},
        },
    )
    if check:
        validate_flat(flat, source=source, allow_empty=allow_empty)
    return from_flat(flat)


def from_flat(flat: FlatShowers) -> ak.Array:
    """Wrap flat columns as an awkward array; the numpy buffers are shared, not copied."""
    point_names = list(flat.points)
    point_record = ak.contents.RecordArray(
        [ak.contents.NumpyArray(flat.points[k]) for k in point_names],
        point_names,
        length=flat.n_points,
    )
    jagged = ak.contents.ListOffsetArray(ak.index.Index64(flat.offsets), point_record)
    names = ["incident_energy", "points"] + [k for k in flat.fields if k != "incident_energy"]
    contents = [
        ak.contents.NumpyArray(flat.fields["incident_energy"]),
        jagged,
        *(ak.contents.NumpyArray(flat.fields[k]) for k in names[2:]),
    ]
    return ak.Array(ak.contents.RecordArray(contents, names, length=flat.n_showers))


def flatten(showers: ak.Array, source: str | None = None) -> FlatShowers:
    """Flat numpy columns of showers; zero-copy when the array is packed (as read or built).

    Sliced or filtered arrays are packed first, which copies only what the slice selects.
    """
    if not isinstance(showers, ak.Array) or showers.fields is None or not showers.fields:
        raise ShowerFormatError(source, None, "showers must be an awkward array of records")
    for name in ("incident_energy", "points"):
        if name not in showers.fields:
            raise ShowerFormatError(source, name, "missing required shower field")
    layout = showers.layout
    if layout.is_option:  # e.g. selected with a mask from ak.max, which is option-typed
        missing = ak.is_none(showers, axis=0)
        if ak.any(missing):
            i = int(np.argmax(ak.to_numpy(missing)))
            raise ShowerFormatError(source, None, f"shower {i} is missing (None)")
        showers = ak.drop_none(showers, axis=0)
        layout = showers.layout
    if not _is_packed(layout):
        layout = ak.to_packed(showers).layout
    if not isinstance(layout, ak.contents.RecordArray):
        raise ShowerFormatError(source, None, f"expected records, got {type(layout).__name__}")
    jagged = layout.content("points")
    if not isinstance(jagged, ak.contents.ListOffsetArray | ak.contents.ListArray):
        raise ShowerFormatError(source, "points", "must be a variable-length list per shower")
    if isinstance(jagged, ak.contents.ListArray):
        jagged = jagged.to_ListOffsetArray64(True)
    offsets = np.asarray(jagged.offsets, dtype=np.int64)
    if offsets[0] != 0:
        offsets = offsets - offsets[0]
    record = jagged.content
    if not isinstance(record, ak.contents.RecordArray):
        raise ShowerFormatError(source, "points", "must hold records {E, x, y, layer}")
    points: dict[str, np.ndarray] = {}
    for name in record.fields:
        col = record.content(name)
        if not isinstance(col, ak.contents.NumpyArray):
            raise ShowerFormatError(source, f"points/{name}", "must be a plain numeric column")
        points[name] = np.asarray(col.data)[: offsets[-1]]
    fields: dict[str, np.ndarray] = {}
    for name in layout.fields:
        if name == "points":
            continue
        col = layout.content(name)
        if not isinstance(col, ak.contents.NumpyArray):
            raise ShowerFormatError(source, name, "per-shower fields must be numeric scalars")
        fields[name] = np.asarray(col.data)
    return FlatShowers(offsets=offsets, points=points, fields=fields)


def _is_packed(layout: ak.contents.Content) -> bool:
    """True when the columns can be used as they are: contiguous, starting at offset 0."""
    if not isinstance(layout, ak.contents.RecordArray):
        return False
    jagged = layout.content("points")
    if not isinstance(jagged, ak.contents.ListOffsetArray):
        return False
    offsets = jagged.offsets
    if len(offsets) == 0 or offsets[0] != 0:
        return False
    record = jagged.content
    if not isinstance(record, ak.contents.RecordArray):
        return False
    columns = [record.content(k) for k in record.fields]
    columns += [layout.content(k) for k in layout.fields if k != "points"]
    return all(isinstance(c, ak.contents.NumpyArray) and c.data.flags.c_contiguous for c in columns)


def validate_offsets(
    offsets: np.ndarray, *, source: str | None = None, allow_empty: bool = False
) -> None:
    """Check that ``offsets`` is 1-d, starts at 0, never decreases and (unless ``allow_empty``)
    strictly increases, i.e. every shower has at least one point."""
    if offsets.ndim != 1 or len(offsets) < 1:
        raise ShowerFormatError(source, "offsets", f"must be 1-d [N+1], got shape {offsets.shape}")
    if offsets[0] != 0:
        raise ShowerFormatError(source, "offsets", f"must start at 0, starts at {offsets[0]}")
    steps = np.diff(offsets)
    if steps.size and steps.min() < 0:
        bad = int(np.argmax(steps < 0))
        raise ShowerFormatError(source, "offsets", f"not monotonic: decreases after shower {bad}")
    if not allow_empty and steps.size and steps.min() == 0:
        bad = int(np.argmax(steps == 0))
        raise ShowerFormatError(
            source, "points", f"shower {bad} has no points (pass allow_empty=True to accept)"
        )


def validate_flat(
    flat: FlatShowers, *, source: str | None = None, allow_empty: bool = False
) -> None:
    """Check flat columns against the data model; raise :class:`ShowerFormatError` if not.

    Checks: the offsets (:func:`validate_offsets`); every column has the right length and a
    numeric dtype; incident energies finite and positive; point energies finite and
    non-negative; coordinates finite; layers non-negative integers.
    """
    validate_offsets(flat.offsets, source=source, allow_empty=allow_empty)
    n = flat.n_showers
    for name, col in flat.fields.items():
        if col.shape != (n,):
            raise ShowerFormatError(
                source, name, f"has shape {col.shape}, expected ({n},) per-shower values"
            )
        if col.dtype.kind not in "fiub":
            raise ShowerFormatError(source, name, f"has non-numeric dtype {col.dtype}")
    energy = flat.fields.get("incident_energy")
    if energy is None:
        raise ShowerFormatError(source, "incident_energy", "missing required shower field")
    if energy.dtype.kind != "f":
        raise ShowerFormatError(source, "incident_energy", f"must be floating, got {energy.dtype}")
    bad = ~np.isfinite(energy) | (energy <= 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ShowerFormatError(
            source, "incident_energy", f"must be finite and > 0 MeV, shower {i} has {energy[i]}"
        )
    for name in REQUIRED_POINT_FIELDS:
        if name not in flat.points:
            raise ShowerFormatError(source, f"points/{name}", "missing required point field")
    n_points = flat.n_points
    for name, col in flat.points.items():
        if col.ndim != 1 or len(col) != n_points:
            raise ShowerFormatError(
                source,
                f"points/{name}",
                f"has shape {col.shape} but offsets[-1] = {n_points} points",
            )
        expected = REQUIRED_POINT_FIELDS.get(name) or OPTIONAL_POINT_FIELDS.get(name)
        if expected is not None and expected.kind == "f" and col.dtype.kind != "f":
            raise ShowerFormatError(source, f"points/{name}", f"must be floating, got {col.dtype}")
        if expected is not None and expected.kind == "i" and col.dtype.kind not in "iu":
            raise ShowerFormatError(source, f"points/{name}", f"must be integer, got {col.dtype}")
        if col.dtype.kind not in "fiub":
            raise ShowerFormatError(source, f"points/{name}", f"non-numeric dtype {col.dtype}")
        if col.dtype.kind == "f":
            finite = np.isfinite(col)
            if not finite.all():
                i = int(np.argmax(~finite))
                raise ShowerFormatError(
                    source, f"points/{name}", f"non-finite value {col[i]} at point {i}"
                )
    energies = flat.points["E"]
    if energies.size and energies.min() < 0:
        i = int(np.argmax(energies < 0))
        raise ShowerFormatError(source, "points/E", f"negative energy {energies[i]} at point {i}")
    layers = flat.points["layer"]
    if layers.size and layers.min() < 0:
        i = int(np.argmax(layers < 0))
        raise ShowerFormatError(source, "points/layer", f"negative layer {layers[i]} at point {i}")


def validate(showers: ak.Array, *, source: str | None = None, allow_empty: bool = False) -> None:
    """Check an awkward array of showers against the data model (see :func:`validate_flat`)."""
    validate_flat(flatten(showers, source=source), source=source, allow_empty=allow_empty)


def segment_sum(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sum ``values[offsets[i]:offsets[i+1]]`` for each segment ``i`` (empty segments give 0)."""
    csum = np.zeros(len(values) + 1, dtype=np.float64)
    np.cumsum(values, out=csum[1:])
    return csum[offsets[1:]] - csum[offsets[:-1]]


def summary(showers: ak.Array) -> dict[str, Any]:
    """Key numbers of a set of showers, as a JSON-serialisable dict.

    Returns counts, points per shower, incident-energy range (MeV), visible energy
    ``E_vis = sum(E)`` over incident energy, point-energy range, layers and fields present.
    """
    flat = flatten(showers)
    counts = flat.counts
    inc = flat.fields["incident_energy"].astype(np.float64)
    evis = segment_sum(flat.points["E"].astype(np.float64), flat.offsets)
    ratio = evis / inc if len(inc) else np.zeros(0)

    def stats(a: np.ndarray) -> dict[str, float]:
        if a.size == 0:
            return {"min": float("nan"), "mean": float("nan"), "max": float("nan")}
        return {"min": float(a.min()), "mean": float(a.mean()), "max": float(a.max())}

    layers = flat.points["layer"]
    return {
        "n_showers": flat.n_showers,
        "n_points": flat.n_points,
        "points_per_shower": stats(counts.astype(np.float64)),
        "incident_energy_MeV": stats(inc),
        "visible_energy_MeV": stats(evis),
        "evis_over_einc": {
            "mean": float(ratio.mean()) if ratio.size else float("nan"),
            "std": float(ratio.std()) if ratio.size else float("nan"),
        },
        "point_energy_MeV": stats(flat.points["E"].astype(np.float64)),
        "layers": [int(layers.min()), int(layers.max())] if layers.size else [],
        "point_fields": list(flat.points),
        "shower_fields": list(flat.fields),
    }


@dataclass
class PointBatch:
    """A flat batch of showers at the torch boundary.

    Attributes:
        points: ``[P, F]`` float tensor, columns named by ``features``.
        ptr: ``[B + 1]`` int64 offsets; shower ``b`` owns rows ``ptr[b]:ptr[b + 1]``.
        cond: ``[B, C]`` float tensor of per-shower conditions named by ``cond_names``.
            Two conventions meet here, told apart by ``cond_names``: :func:`to_torch` gives
            physical values (``("incident_energy",)``: MeV), while training batches
            (:meth:`pointcalo.clouds.PointCloudData.batch`) carry standardised logs
            (``("log_c", "log_n")``: log condition and log number of points, standardised by
            the model's normaliser); ``points`` follow the same split (physical vs normalised).
        features: names of the point columns.
        cond_names: names of the condition columns.
    """

    points: torch.Tensor
    ptr: torch.Tensor
    cond: torch.Tensor
    features: tuple[str, ...] = DEFAULT_FEATURES
    cond_names: tuple[str, ...] = ("incident_energy",)
    extra: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def num_showers(self) -> int:
        return int(self.ptr.numel() - 1)

    @property
    def counts(self) -> torch.Tensor:
        """Points per shower, ``[B]``."""
        return self.ptr[1:] - self.ptr[:-1]

    def batch_index(self) -> torch.Tensor:
        """Shower index of every point, ``[P]`` (torch_geometric's ``batch`` vector)."""
        import torch

        return torch.repeat_interleave(
            torch.arange(self.num_showers, device=self.ptr.device), self.counts
        )

    def to(self, device: str | torch.device) -> PointBatch:
        return PointBatch(
            self.points.to(device),
            self.ptr.to(device),
            self.cond.to(device),
            self.features,
            self.cond_names,
            {k: v.to(device) for k, v in self.extra.items()},
        )


def to_torch(
    showers: ak.Array | FlatShowers,
    *,
    features: Sequence[str] = DEFAULT_FEATURES,
    cond: Sequence[str] = ("incident_energy",),
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> PointBatch:
    """Flat torch batch of showers.

    ``ptr`` shares memory with the awkward offsets (on CPU, when the array is packed); the
    ``[P, F]`` point matrix is necessarily a new buffer because awkward stores columns apart.

    Args:
        showers: awkward showers or :class:`FlatShowers`.
        features: point columns in order (default ``E, x, y, layer``).
        cond: per-shower columns forming ``cond`` (default incident energy, MeV).
        device: target device (default CPU).
        dtype: float dtype of ``points`` and ``cond`` (default float32).
    """
    import torch

    flat = showers if isinstance(showers, FlatShowers) else flatten(showers)
    dtype = dtype or torch.float32
    for name in features:
        if name not in flat.points:
            raise ShowerFormatError(
                None, f"points/{name}", f"not present (have {list(flat.points)})"
            )
    for name in cond:
        if name not in flat.fields:
            raise ShowerFormatError(None, name, f"not present (have {list(flat.fields)})")
    if not isinstance(showers, FlatShowers):  # a FlatShowers was checked when it was made
        validate_flat(flat, allow_empty=True)
    np_dtype = torch.empty((), dtype=dtype).numpy().dtype
    points = np.empty((flat.n_points, len(features)), dtype=np_dtype)
    for j, name in enumerate(features):
        points[:, j] = flat.points[name]
    conds = np.empty((flat.n_showers, len(cond)), dtype=np_dtype)
    for j, name in enumerate(cond):
        conds[:, j] = flat.fields[name]
    batch = PointBatch(
        points=torch.from_numpy(points),
        ptr=torch.from_numpy(flat.offsets),
        cond=torch.from_numpy(conds),
        features=tuple(features),
        cond_names=tuple(cond),
    )
    return batch.to(device) if device is not None else batch


def from_torch(batch: PointBatch, *, check: bool = True) -> ak.Array:
    """Showers from a :class:`PointBatch` (inverse of :func:`to_torch`).

    Integer fields (``layer``) are rounded; the point columns are copied into contiguous arrays
    once, then shared with the awkward array.
    """
    points = batch.points.detach().cpu().numpy()
    cond = batch.cond.detach().cpu().numpy()
    cols: dict[str, np.ndarray] = {}
    for j, name in enumerate(batch.features):
        col = points[:, j]
        dtype = REQUIRED_POINT_FIELDS.get(name) or OPTIONAL_POINT_FIELDS.get(name)
        if dtype is not None and dtype.kind == "i":
            col = np.rint(col)
        cols[name] = np.ascontiguousarray(col, dtype=dtype or np.float32)
    fields = {name: np.ascontiguousarray(cond[:, j]) for j, name in enumerate(batch.cond_names)}
    inc = fields.pop("incident_energy")
    return make_showers(
        inc,
        cols,
        offsets=batch.ptr.detach().cpu().numpy().astype(np.int64, copy=False),
        fields=fields,
        check=check,
        allow_empty=True,
    )
