"""Coarse blocks of sensor sub-cells and the patterns that re-expand them (a two-level point model).

Geant4 writes one point per sub-cell of the sensor lattice (0.848 mm for the ILD-like sample),
and its halo points sit on tracks: most have a lit neighbouring sub-cell even 30-60 mm from the
axis (``docs/fidelity.md``, session 11). A point model that draws its points independently
given the shower leaves them isolated. Two levels split the work: a generator makes one point
per ``B x B`` *block* of sub-cells of a layer (the block's energy sum at its centre, about 2.4x
fewer points for ``B = 3``), and a :class:`PatternLibrary` of the training showers' blocks
re-expands each block into sub-cells, drawing a pattern (which sub-cells are lit and their
energy shares) from training blocks of the same ring of distance from the axis, layer group and
energy bin. Patterns are stored facing outwards (mirrored so that the axis lies towards lower
``x`` and ``y``) and mirrored back onto the block they fill, so they keep their orientation to
the shower axis; without that the cores' energy gradients point the wrong way.

On Geant4's own blocks (validation split, ``scripts/block_model.py oracle``) the re-expansion
costs almost nothing: per-layer classifier 0.566 on the worst view against 0.535 for Geant4
against Geant4 (test split as reference, floor 0.531), nearest-neighbour distances 2.7x and
pair correlation 2.1x their floor.

Blocks are aligned with the sub-cell lattice (block ``k`` spans sub-cells ``kB .. kB + B - 1``
of each transverse axis); the shower axis enters wherever it does. Units: mm, MeV.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import awkward as ak
import numpy as np
import torch
from torch import nn

from pointcalo.io.atomic import atomic_path
from pointcalo.showers import flatten, make_showers

#: Ring edges (mm from the shower's energy-weighted axis) of the library's bins.
RING_EDGES = np.array([0.0, 1.5, 3.0, 6.0, 12.0, 24.0, 48.0, np.inf])
#: Edges of log10(block energy / MeV) of the library's bins.
LOG_E_EDGES = np.array([-np.inf, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5, np.inf])
#: Layers per layer group of the library's bins.
LAYER_GROUP = 10


@dataclass
class Blocks:
    """The blocks of a set of showers, flat: ``shower, layer, bx, by [K]`` (int64),
    ``energy [K]`` (MeV), ``pattern [K, B*B]`` (energy shares of the sub-cells, facing
    outwards; rows sum to one), ``flip [K, 2]`` (whether x, y were mirrored to face outwards),
    ``bin [K]`` (library bin)."""

    shower: np.ndarray
    layer: np.ndarray
    bx: np.ndarray
    by: np.ndarray
    energy: np.ndarray
    pattern: np.ndarray
    flip: np.ndarray
    bin: np.ndarray


def find_blocks(showers: ak.Array, pitch: float, block: int) -> Blocks:
    """The non-empty ``block x block`` blocks of sub-cells (``pitch`` mm) of every layer of
    ``showers``. A shower of blocks (one point per block, anywhere inside it) gives its blocks
    back with patterns that put all the energy in the sub-cell the point sits in."""
    flat = flatten(showers)
    return find_blocks_flat(flat.offsets, flat.points, pitch, block)


def find_blocks_flat(
    offsets: np.ndarray, points: dict[str, np.ndarray], pitch: float, block: int
) -> Blocks:
    """:func:`find_blocks` of flat clouds: ``offsets [N + 1]`` and point columns ``E, x, y,
    layer`` (each ``[P]``). Blocks come ordered by shower."""
    counts = np.diff(np.asarray(offsets, np.int64))
    owner = np.repeat(np.arange(len(counts)), counts)
    e = np.asarray(points["E"], np.float64)
    x, y = np.asarray(points["x"], np.float64), np.asarray(points["y"], np.float64)
    w = np.maximum(np.bincount(owner, e, len(counts)), 1e-300)
    cx, cy = np.bincount(owner, e * x, len(counts)) / w, np.bincount(owner, e * y, len(counts)) / w
    i, j = np.floor(x / pitch).astype(np.int64), np.floor(y / pitch).astype(np.int64)
    bi, bj = np.floor_divide(i, block), np.floor_divide(j, block)
    key = np.stack([owner, np.asarray(points["layer"]).astype(np.int64), bi, bj], 1)
    uk, inv = np.unique(key.reshape(-1, 4), axis=0, return_inverse=True)
    uk = uk.reshape(-1, 4)
    inv = inv.ravel()
    centre_x, centre_y = (uk[:, 2] + 0.5) * block * pitch, (uk[:, 3] + 0.5) * block * pitch
    flip = np.stack([centre_x < cx[uk[:, 0]], centre_y < cy[uk[:, 0]]], 1)
    si, sj = i - bi * block, j - bj * block
    si = np.where(flip[inv, 0], block - 1 - si, si)
    sj = np.where(flip[inv, 1], block - 1 - sj, sj)
    energy = np.bincount(inv, e, len(uk))
    pattern = np.zeros((len(uk), block * block))
    np.add.at(pattern, (inv, si * block + sj), e)
    pattern /= np.maximum(energy, 1e-300)[:, None]
    r = np.hypot(centre_x - cx[uk[:, 0]], centre_y - cy[uk[:, 0]])
    ring = np.digitize(r, RING_EDGES) - 1
    ebin = np.digitize(np.log10(np.maximum(energy, 1e-30)), LOG_E_EDGES) - 1
    group = uk[:, 1] // LAYER_GROUP
    bins = (ring * 1000 + group) * 100 + ebin
    return Blocks(uk[:, 0], uk[:, 1], uk[:, 2], uk[:, 3], energy, pattern, flip, bins)


def coarsen(showers: ak.Array, pitch: float, block: int) -> ak.Array:
    """``showers`` with one point per non-empty block of each layer: the block's energy sum at
    its centre (which is the centre of a sub-cell for odd ``block``)."""
    b = find_blocks(showers, pitch, block)
    pts = {
        "E": b.energy.astype(np.float32),
        "x": ((b.bx + 0.5) * block * pitch).astype(np.float32),
        "y": ((b.by + 0.5) * block * pitch).astype(np.float32),
        "layer": b.layer.astype(np.int32),
    }
    counts = np.bincount(b.shower, minlength=len(showers))
    return make_showers(np.asarray(showers.incident_energy, np.float32), pts, counts=counts)


@dataclass
class PatternLibrary:
    """Patterns of training blocks by bin: ``bins [M]`` sorted, ``patterns [M, B*B]`` (facing
    outwards), for blocks of ``block`` sub-cells of ``pitch`` mm."""

    pitch: float
    block: int
    bins: np.ndarray
    patterns: np.ndarray

    @classmethod
    def from_showers(cls, showers: ak.Array, pitch: float, block: int) -> PatternLibrary:
        """The library of every block of ``showers`` (the training split)."""
        b = find_blocks(showers, pitch, block)
        order = np.argsort(b.bin, kind="stable")
        return cls(pitch, block, b.bin[order], b.pattern[order].astype(np.float32))

    def save(self, path: str | Path) -> Path:
        """Write the library as ``.npz`` (atomically)."""
        with atomic_path(path) as tmp, Path(tmp).open("wb") as f:
            np.savez_compressed(
                f, pitch=self.pitch, block=self.block, bins=self.bins, patterns=self.patterns
            )
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> PatternLibrary:
        with np.load(path) as d:
            return cls(float(d["pitch"]), int(d["block"]), d["bins"], d["patterns"])

    def subsample(self, cap: int, seed: int = 0) -> PatternLibrary:
        """At most ``cap`` patterns of each bin, drawn without replacement (uniform within a
        bin, so a bin's distribution of patterns is kept): the library a checkpoint carries."""
        rng = np.random.default_rng(seed)
        keep = []
        for b in np.unique(self.bins):
            idx = np.flatnonzero(self.bins == b)
            keep.append(idx if len(idx) <= cap else np.sort(rng.choice(idx, cap, replace=False)))
        keep = np.concatenate(keep) if keep else np.zeros(0, np.int64)
        return PatternLibrary(self.pitch, self.block, self.bins[keep], self.patterns[keep])

    def draw(self, bins: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``[K, B*B]`` patterns, one of the library's blocks of each of ``bins [K]``, chosen
        by the uniform numbers ``u [K]`` in [0, 1); a bin the library lacks gets the whole
        energy in the block's centre sub-cell."""
        start = np.searchsorted(self.bins, bins)
        stop = np.searchsorted(self.bins, bins, side="right")
        found = stop > start
        pick = np.minimum(start + (np.asarray(u) * (stop - start)).astype(np.int64),
                          len(self.bins) - 1)  # fmt: skip
        out = (
            self.patterns[pick].astype(np.float64)
            if len(self.bins)
            else np.zeros((len(bins), self.block * self.block))
        )
        centre = np.zeros(self.block * self.block)
        centre[(self.block // 2) * self.block + self.block // 2] = 1.0
        out[~found] = centre
        return out

    def expand(self, showers: ak.Array, seed: int = 0) -> ak.Array:
        """Showers of sub-cells from showers of blocks (:meth:`expand_flat`), the patterns
        chosen by a generator seeded with ``seed``."""
        flat = flatten(showers)
        rng = np.random.default_rng(seed)
        offsets, pts = self.expand_flat(flat.offsets, flat.points, lambda k: rng.random(k.sum()))
        e_inc = np.asarray(showers.incident_energy, np.float32)
        return make_showers(e_inc, pts, counts=np.diff(offsets))

    def expand_flat(
        self,
        offsets: np.ndarray,
        points: dict[str, np.ndarray],
        uniform: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Flat clouds of sub-cells ``(offsets, points)`` from flat clouds of blocks (any
        points: those sharing a block are summed first, and those whose energy or position is
        not finite, or whose energy is not positive, are dropped): each block's energy shared
        out by a pattern drawn from its bin and mirrored to face the shower axis as the block
        does. ``uniform(k)``, given the number of blocks of each cloud ``k [N]``, returns
        ``sum(k)`` uniform numbers in [0, 1) that choose the patterns, cloud by cloud (so each
        cloud's can come from its own random stream); None: 0.5 for all. Energy per block,
        layer and shower is kept exactly (up to float32 rounding)."""
        offsets, points = _usable(offsets, points)
        b, n, n_clouds = (
            find_blocks_flat(offsets, points, self.pitch, self.block),
            self.block,
            len(offsets) - 1,
        )
        k = np.bincount(b.shower, minlength=n_clouds)
        u = np.full(len(b.bin), 0.5) if uniform is None else np.asarray(uniform(k), np.float64)
        new = self.draw(b.bin, u)
        rows, slots = np.nonzero(new > 0)
        si, sj = slots // n, slots % n
        si = np.where(b.flip[rows, 0], n - 1 - si, si)
        sj = np.where(b.flip[rows, 1], n - 1 - sj, sj)
        order = np.argsort(b.shower[rows], kind="stable")
        pts = {
            "E": (b.energy[rows] * new[rows, slots])[order].astype(np.float32),
            "x": ((b.bx[rows] * n + si + 0.5) * self.pitch)[order].astype(np.float32),
            "y": ((b.by[rows] * n + sj + 0.5) * self.pitch)[order].astype(np.float32),
            "layer": b.layer[rows][order].astype(np.asarray(points["layer"]).dtype),
        }
        counts = np.bincount(b.shower[rows], minlength=n_clouds)
        return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), pts


def _usable(
    offsets: np.ndarray, points: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(offsets, points)`` without the points whose energy or position is not finite or whose
    energy is not positive (a generator's raw output may have them)."""
    offsets = np.asarray(offsets, np.int64)
    e = np.asarray(points["E"], np.float64)
    ok = np.isfinite(e) & (e > 0)
    ok &= np.isfinite(np.asarray(points["x"], np.float64))
    ok &= np.isfinite(np.asarray(points["y"], np.float64))
    if ok.all():
        return offsets, points
    owner = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    counts = np.bincount(owner[ok], minlength=len(offsets) - 1)
    return np.concatenate([[0], np.cumsum(counts)]), {
        k: np.asarray(v)[ok] for k, v in points.items()
    }


class PatternBuffers(nn.Module):
    """A :class:`PatternLibrary` as buffers of a model (``bins [M]`` int64, ``patterns
    [M, B*B]`` float16), so a checkpoint carries it; ``block`` and ``pitch`` come from the
    checkpoint's meta (:func:`library_meta`)."""

    def __init__(self, n_patterns: int, block: int, pitch: float) -> None:
        super().__init__()
        self.block, self.pitch = block, pitch
        self.register_buffer("bins", torch.zeros(n_patterns, dtype=torch.int64))
        self.register_buffer(
            "patterns", torch.zeros(n_patterns, block * block, dtype=torch.float16)
        )

    @classmethod
    def of(cls, library: PatternLibrary) -> PatternBuffers:
        out = cls(len(library.bins), library.block, library.pitch)
        out.bins.copy_(torch.as_tensor(library.bins))
        out.patterns.copy_(torch.as_tensor(library.patterns, dtype=torch.float16))
        return out

    def library(self) -> PatternLibrary:
        """The library (numpy; shares renormalised to sum to one after float16 rounding)."""
        pat = self.patterns.cpu().float().numpy().astype(np.float64)
        pat /= np.maximum(pat.sum(1, keepdims=True), 1e-300)
        return PatternLibrary(self.pitch, self.block, self.bins.cpu().numpy(), pat)


def library_meta(library: PatternLibrary) -> dict:
    """What a checkpoint's meta records of its block library (``meta["blocks"]``)."""
    return {"block": library.block, "pitch": library.pitch, "n_patterns": len(library.bins)}


def training_library(path: str, block: int, cap: int, seed: int = 0) -> tuple[PatternLibrary, dict]:
    """The pattern library a two-level model carries, from the sub-cell showers of ``path``
    (its training split, any shower file): at most ``cap`` patterns per bin
    (:meth:`PatternLibrary.subsample`), on the file's own lattice; and the limits its
    re-expanded points must obey (:class:`pointcalo.validity.PointLimits` as a dict, measured
    on those showers: sub-cells, not blocks)."""
    from pointcalo import io
    from pointcalo.clouds import shower_spec
    from pointcalo.errors import ConfigError
    from pointcalo.validity import measured_limits

    if not Path(path).exists():
        raise ConfigError(f"model.blocks_from: {path} does not exist")
    with io.open_reader(path) as reader:
        showers = reader.read(0, reader.n_showers)
        attrs = dict(getattr(reader, "attrs", None) or {})
    flat = flatten(showers)
    spec = shower_spec(attrs, int(flat.points["layer"].max()) if len(flat.points["E"]) else 0)
    if spec.lattice_pitch <= 0:
        raise ConfigError(f"model.blocks_from: {path} has no sub-cell lattice")
    library = PatternLibrary.from_showers(showers, spec.lattice_pitch, block).subsample(cap, seed)
    limits = measured_limits(spec, flat.points)
    return library, (limits.to_dict() if limits is not None else {})


def attach_library(state: dict, path: str, block: int, cap: int, seed: int = 0) -> dict:
    """A checkpoint ``state`` of a CaloClouds (or distilled CaloClouds) model trained on
    blocks of ``block x block`` sub-cells without its library (trained before the family
    knew blocks), made a two-level model: the library of ``path``'s sub-cell showers
    (:func:`training_library`) in its weights, meta and config, as training with
    ``model.blocks`` would have written them. Returns the new state (the input is not
    changed)."""
    import copy

    library, limits = training_library(path, block, cap, seed)
    out = copy.deepcopy({k: v for k, v in state.items() if k != "checksum"})
    settings = {"blocks": block, "blocks_from": str(path), "block_patterns": cap}
    model_cfg = out["config"]["model"]
    if model_cfg["name"] == "consistency":
        model_cfg = out["meta"]["teacher_config"]["model"]
    model_cfg.update(settings)
    out["meta"]["blocks"] = library_meta(library)
    out["meta"]["point_limits"] = limits
    for name, value in PatternBuffers.of(library).state_dict().items():
        out["model"][f"blocks.{name}"] = value
    return out


def _shells(radius: int) -> list[np.ndarray]:
    """Lattice offsets ``[L, 2]`` grouped by distance from the origin, nearest shell first, up
    to ``radius`` cells (the origin left out)."""
    d = np.arange(-radius, radius + 1)
    off = np.stack(np.meshgrid(d, d, indexing="ij"), -1).reshape(-1, 2)
    r2 = (off**2).sum(1)
    return [off[r2 == v] for v in np.unique(r2) if v > 0]


def spread_duplicates(
    offsets: np.ndarray, points: dict[str, np.ndarray], pitch: float, radius: int = 3, seed: int = 0
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(offsets, points)`` with at most one point per lattice cell (``pitch`` mm) of a layer:
    of points sharing a cell the hottest stays and each other one moves to the nearest free
    cell of its layer within ``radius`` cells (ties in random order), keeping its energy;
    one that finds none is merged into the cell's point. Every point ends at a cell centre.
    For a generator of blocks, where a merged duplicate would leave its shower one block short
    and one block too hot."""
    counts = np.diff(np.asarray(offsets, np.int64))
    cloud = np.repeat(np.arange(len(counts)), counts)
    e = np.asarray(points["E"], np.float64)
    layer = np.asarray(points["layer"], np.int64)
    i = np.floor(np.asarray(points["x"], np.float64) / pitch).astype(np.int64)
    j = np.floor(np.asarray(points["y"], np.float64) / pitch).astype(np.int64)
    span = 1 << 20  # cells per axis in the key (about 2.6 km at 2.5 mm)

    def key(c: np.ndarray, lay: np.ndarray, ii: np.ndarray, jj: np.ndarray) -> np.ndarray:
        return ((c * 4096 + lay) * span + ii + span // 2) * span + jj + span // 2

    k = key(cloud, layer, i, j)
    order = np.lexsort((-e, k))  # by cell, hottest first
    first = np.ones(len(k), bool)
    first[order[1:]] = k[order[1:]] != k[order[:-1]]
    occupied = set(k[first].tolist())
    movers = np.flatnonzero(~first)
    rng = np.random.default_rng(seed)
    for shell in _shells(radius):
        if len(movers) == 0:
            break
        rot = rng.integers(0, len(shell), len(movers))
        for t in range(len(shell)):
            if len(movers) == 0:
                break
            step = shell[(rot + t) % len(shell)]
            ni, nj = i[movers] + step[:, 0], j[movers] + step[:, 1]
            cand = key(cloud[movers], layer[movers], ni, nj)
            free = np.fromiter((c not in occupied for c in cand.tolist()), bool, len(cand))
            _, firsts = np.unique(np.where(free, cand, -1), return_index=True)
            take = np.zeros(len(cand), bool)
            take[firsts] = True
            take &= free
            moved = movers[take]
            i[moved], j[moved] = ni[take], nj[take]
            occupied.update(cand[take].tolist())
            movers, rot = movers[~take], rot[~take]
    k = key(cloud, layer, i, j)  # left-over movers share their cell again: merge them
    uniq, first_idx, inv = np.unique(k, return_index=True, return_inverse=True)
    keep = np.sort(first_idx)  # each cell's first point, in the input order
    rank = np.empty(len(uniq), np.int64)
    rank[np.argsort(first_idx)] = np.arange(len(uniq))
    out = {
        "E": np.bincount(rank[inv.ravel()], e, len(uniq)).astype(np.float32),
        "x": ((i[keep] + 0.5) * pitch).astype(np.float32),
        "y": ((j[keep] + 0.5) * pitch).astype(np.float32),
        "layer": layer[keep].astype(np.asarray(points["layer"]).dtype),
    }
    new_counts = np.bincount(cloud[keep], minlength=len(counts))
    return np.concatenate([[0], np.cumsum(new_counts)]).astype(np.int64), out
