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

Two libraries can take over more of the shower: a :class:`CoreLibrary` fills each layer's
core window whole with a Geant4 training core (the generator gives its energy), and a
:class:`HaloLibrary` replaces the blocks outside it by Geant4 halo patches (a training block
with the 8 around it), thinned so the number of lit blocks stays, so the halo's blocks come in
Geant4's chains along tracks (``docs/fidelity.md``, sessions 12-13).

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
#: Cores a core window draws from: those of its layer and incident-energy group nearest to it
#: in energy.
NEAREST = 8


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
    offsets: np.ndarray,
    points: dict[str, np.ndarray],
    pitch: float,
    block: int,
    centre: tuple[np.ndarray, np.ndarray] | None = None,
) -> Blocks:
    """:func:`find_blocks` of flat clouds: ``offsets [N + 1]`` and point columns ``E, x, y,
    layer`` (each ``[P]``). Blocks come ordered by shower. Rings and mirroring are taken
    from each cloud's energy-weighted centre, or from ``centre`` (``cx, cy [N]`` mm: the whole
    shower's, when these are a part of it)."""
    owner, e, x, y, cx, cy = _centres(offsets, points)
    if centre is not None:
        cx, cy = centre
    i, j = np.floor(x / pitch).astype(np.int64), np.floor(y / pitch).astype(np.int64)
    bi, bj = np.floor_divide(i, block), np.floor_divide(j, block)
    # one int64 key per (shower, layer, block), ordered as those rows (numpy's row-wise
    # unique is several times slower)
    span = 1 << 16  # blocks per axis (167 m at 2.5 mm)
    layer = np.asarray(points["layer"]).astype(np.int64)
    key = ((owner * 1024 + layer) * span + bi + span // 2) * span + bj + span // 2
    uniq, inv = np.unique(key, return_inverse=True)
    inv = inv.ravel()
    uk = np.stack([uniq // (1024 * span * span), uniq // (span * span) % 1024,
                   uniq // span % span - span // 2, uniq % span - span // 2], 1)  # fmt: skip
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
    core: CoreLibrary | None = None
    halo: HaloLibrary | None = None

    @classmethod
    def from_showers(
        cls, showers: ak.Array, pitch: float, block: int, core_width: int = 0, halo: bool = False
    ) -> PatternLibrary:
        """The library of every block of ``showers`` (the training split); with
        ``core_width > 0`` also their cores (:class:`CoreLibrary`) and with ``halo`` the halo
        patches around their blocks outside the cores (:class:`HaloLibrary`)."""
        b = find_blocks(showers, pitch, block)
        order = np.argsort(b.bin, kind="stable")
        core = CoreLibrary.from_showers(showers, pitch, block, core_width) if core_width else None
        if halo and core is None:
            raise ValueError("halo patches need a core window (core_width > 0)")
        patches = HaloLibrary.from_showers(showers, core) if halo else None
        return cls(pitch, block, b.bin[order], b.pattern[order].astype(np.float32), core, patches)

    def save(self, path: str | Path) -> Path:
        """Write the library as ``.npz`` (atomically)."""
        core = {}
        if self.core is not None:
            c = self.core
            core = {"core_width": c.width, "core_bins": c.bins, "core_patterns": c.patterns,
                    "core_log_energy": c.log_energy, "core_inc_edges": c.inc_edges}  # fmt: skip
        if self.halo is not None:
            h = self.halo
            core |= {"halo_bins": h.bins, "halo_patches": h.patches, "halo_lit": h.lit}
        with atomic_path(path) as tmp, Path(tmp).open("wb") as f:
            np.savez_compressed(
                f, pitch=self.pitch, block=self.block, bins=self.bins, patterns=self.patterns,
                **core,
            )  # fmt: skip
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> PatternLibrary:
        with np.load(path) as d:
            pitch, block = float(d["pitch"]), int(d["block"])
            core = None
            if "core_width" in d:
                core = CoreLibrary(
                    pitch, block, int(d["core_width"]), d["core_bins"], d["core_patterns"],
                    d["core_log_energy"], d["core_inc_edges"],
                )  # fmt: skip
            halo = None
            if "halo_bins" in d:
                halo = HaloLibrary(pitch, block, d["halo_bins"], d["halo_patches"], d["halo_lit"])
            return cls(pitch, block, d["bins"], d["patterns"], core, halo)

    def subsample(
        self, cap: int, seed: int = 0, core_cap: int = 0, halo_cap: int = 0
    ) -> PatternLibrary:
        """At most ``cap`` patterns of each bin (``core_cap`` cores, ``halo_cap`` halo
        patches; 0: ``cap``), drawn without replacement (uniform within a bin, so a bin's
        distribution of patterns is kept): the library a checkpoint carries."""
        keep = _cap_per_bin(self.bins, cap, seed)
        core = self.core
        if core is not None:
            kc = _cap_per_bin(core.bins, core_cap or cap, seed)
            core = CoreLibrary(core.pitch, core.block, core.width, core.bins[kc],
                               core.patterns[kc], core.log_energy[kc], core.inc_edges)  # fmt: skip
        halo = self.halo.subsample(halo_cap or cap, seed) if self.halo is not None else None
        return PatternLibrary(
            self.pitch, self.block, self.bins[keep], self.patterns[keep], core, halo
        )

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
        e_inc = np.asarray(showers.incident_energy, np.float32)
        offsets, pts = self.expand_flat(
            flat.offsets, flat.points, lambda k: rng.random(k.sum()), incident=e_inc
        )
        return make_showers(e_inc, pts, counts=np.diff(offsets))

    def expand_flat(
        self,
        offsets: np.ndarray,
        points: dict[str, np.ndarray],
        uniform: Callable[[np.ndarray], np.ndarray] | None = None,
        incident: np.ndarray | None = None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Flat clouds of sub-cells ``(offsets, points)`` from flat clouds of blocks (any
        points: those sharing a block are summed first, and those whose energy or position is
        not finite, or whose energy is not positive, are dropped): each block's energy shared
        out by a pattern drawn from its bin and mirrored to face the shower axis as the block
        does. ``uniform(k)``, given the number of blocks of each cloud ``k [N]``, returns
        ``sum(k)`` uniform numbers in [0, 1) that choose the patterns, cloud by cloud (so each
        cloud's can come from its own random stream); None: 0.5 for all. Energy per block,
        layer and shower is kept exactly (up to float32 rounding). With a :class:`CoreLibrary`
        the blocks in each shower's core window are filled by it instead (after the others,
        each cloud's uniform numbers for its windows drawn after those for its blocks), which
        needs the clouds' incident energies ``incident [N]`` (MeV); with a
        :class:`HaloLibrary` the blocks outside the windows are replaced by its patches
        (:meth:`HaloLibrary.fill`) instead of expanded one by one."""
        offsets, points = _usable(offsets, points)
        if self.core is None:
            return self._expand_blocks(offsets, points, uniform)
        if incident is None:
            raise ValueError("a library with cores needs the incident energies")
        window = self.core._window(offsets, points)
        outside = _select(offsets, points, ~window.inside)
        if self.halo is not None:  # the blocks outside the windows: Geant4 halo patches
            o_off, o_pts = self.halo.fill(*outside, window, self.core, uniform)
        else:
            o_off, o_pts = self._expand_blocks(*outside, uniform)
        c_off, c_pts = self.core._fill(offsets, points, window, incident, uniform)
        return _join(o_off, o_pts, c_off, c_pts)

    def _expand_blocks(
        self,
        offsets: np.ndarray,
        points: dict[str, np.ndarray],
        uniform: Callable[[np.ndarray], np.ndarray] | None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """:meth:`expand_flat` by block patterns alone (usable points)."""
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
        return _offsets(np.bincount(b.shower[rows], minlength=n_clouds)), pts


@dataclass
class CoreLibrary:
    """Whole shower cores of training showers, one per layer: the ``width x width`` blocks
    around the block corner nearest the shower's energy-weighted centre (its *window*),
    ``patterns [M, S*S]`` (energy shares of the window's ``S = width * block`` sub-cells per
    side, mirrored so that the centre lies on the positive side of the corner; rows sum to
    one), grouped by ``bins [M]`` (``layer * 100`` + the shower's incident-energy group, of
    edges ``inc_edges`` in MeV) and ordered within a group by ``log_energy [M]`` (log10 of the
    window's energy, MeV).

    Blocks placed independently of each other collide in the core, where Geant4 lights every
    block (``docs/fidelity.md``, session 11); a generator's blocks inside a window only give
    the window's energy, which one of the :data:`NEAREST` training cores of the same layer and
    incident-energy group nearest to it in energy shares out over its sub-cells (session 12:
    matching the energy and the incident energy keeps the number of lit sub-cells growing with
    the shower's energy as Geant4's does)."""

    pitch: float
    block: int
    width: int
    bins: np.ndarray
    patterns: np.ndarray
    log_energy: np.ndarray
    inc_edges: np.ndarray

    @property
    def side(self) -> int:
        return self.width * self.block

    def _window(self, offsets: np.ndarray, points: dict[str, np.ndarray]) -> _Window:
        owner, _, x, y, cx, cy = _centres(offsets, points)
        bp = self.pitch * self.block
        gx = np.round(cx / bp).astype(np.int64) * self.block  # nearest corner, in sub-cells
        gy = np.round(cy / bp).astype(np.int64) * self.block
        fx, fy = cx < gx * self.pitch, cy < gy * self.pitch
        i = np.floor(x / self.pitch).astype(np.int64)
        j = np.floor(y / self.pitch).astype(np.int64)
        a, c, inside = self._local(gx, gy, fx, fy, owner, i, j)
        return _Window(owner, inside, a, c, gx, gy, fx, fy, cx, cy)

    def inside(self, offsets: np.ndarray, points: dict[str, np.ndarray]) -> np.ndarray:
        """``[P]`` whether each point lies in its shower's core window."""
        return self._window(offsets, points).inside

    def cells_inside(
        self, w: _Window, shower: np.ndarray, i: np.ndarray, j: np.ndarray
    ) -> np.ndarray:
        """Whether sub-cells ``(i, j)`` (lattice indices) of ``shower`` lie in its window."""
        return self._local(w.gx, w.gy, w.fx, w.fy, shower, i, j)[2]

    def _local(
        self,
        gx: np.ndarray,
        gy: np.ndarray,
        fx: np.ndarray,
        fy: np.ndarray,
        shower: np.ndarray,
        i: np.ndarray,
        j: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(a, c, inside)``: sub-cells ``(i, j)`` (lattice indices) of ``shower`` in the
        coordinates of its window (corner ``gx, gy`` in sub-cells, mirror flags ``fx, fy``;
        per shower), mirrored so the centre lies on the positive side of the corner, and
        whether they lie in the window."""
        half = self.side // 2
        a = np.where(fx[shower], -1 - (i - gx[shower]), i - gx[shower]) + half
        c = np.where(fy[shower], -1 - (j - gy[shower]), j - gy[shower]) + half
        return a, c, (a >= 0) & (a < self.side) & (c >= 0) & (c < self.side)

    @staticmethod
    def _windows(
        w: _Window, points: dict[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per (shower, layer) window of ``w`` with points: its key ``shower * 1000 + layer``,
        energy (MeV) and each inside point's window index."""
        sel = w.inside
        layer = np.asarray(points["layer"])[sel].astype(np.int64)
        uk, inv = np.unique(w.owner[sel] * 1000 + layer, return_inverse=True)
        energy = np.bincount(inv, np.asarray(points["E"], np.float64)[sel], len(uk))
        return uk, energy, inv.ravel()

    @classmethod
    def from_showers(cls, showers: ak.Array, pitch: float, block: int, width: int) -> CoreLibrary:
        """The cores of every layer of ``showers`` (the training split; ``width`` even);
        incident-energy groups at the quartiles of their incident energies."""
        if width < 2 or width % 2 or (width * block) ** 2 > np.iinfo(np.int16).max:
            raise ValueError(
                f"core width: {width} blocks, not an even number >= 2 of at most "
                f"{int(np.sqrt(np.iinfo(np.int16).max)) // block} sub-cells"
            )
        flat = flatten(showers)
        e_inc = np.asarray(showers.incident_energy, np.float64)
        edges = np.quantile(e_inc, [0.25, 0.5, 0.75]) if len(e_inc) >= 8 else np.zeros(0)
        empty = np.zeros(0)
        lib = cls(pitch, block, width, empty.astype(np.int64), empty, empty, edges)
        w = lib._window(flat.offsets, flat.points)
        uk, energy, inv = lib._windows(w, flat.points)
        sel = w.inside
        pat = np.zeros((len(uk), lib.side**2))
        e = np.asarray(flat.points["E"], np.float64)[sel]
        np.add.at(pat, (inv, w.i[sel] * lib.side + w.j[sel]), e)
        pat /= np.maximum(energy, 1e-300)[:, None]
        bins = lib.group(uk % 1000, e_inc[uk // 1000])
        log_e = np.log10(np.maximum(energy, 1e-30))
        order = np.lexsort((log_e, bins))
        return cls(pitch, block, width, bins[order], pat[order].astype(np.float32),
                   log_e[order].astype(np.float32), edges)  # fmt: skip

    def group(self, layer: np.ndarray, incident: np.ndarray) -> np.ndarray:
        """``layer * 100`` + the incident-energy group (MeV) of each window."""
        return np.asarray(layer, np.int64) * 100 + np.searchsorted(self.inc_edges, incident)

    def expand_flat(
        self,
        offsets: np.ndarray,
        points: dict[str, np.ndarray],
        incident: np.ndarray,
        uniform: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Sub-cells of the core windows of flat clouds of blocks (the blocks outside their
        shower's window are left out; the window is placed by all of them) with incident
        energies ``incident [N]`` (MeV): each window's energy (per shower and layer) shared out
        by a training core of its layer and incident-energy group near it in energy
        (:meth:`draw`); ``uniform`` as for :meth:`PatternLibrary.expand_flat`, one number per
        window."""
        return self._fill(offsets, points, self._window(offsets, points), incident, uniform)

    def _fill(
        self,
        offsets: np.ndarray,
        points: dict[str, np.ndarray],
        w: _Window,
        incident: np.ndarray,
        uniform: Callable[[np.ndarray], np.ndarray] | None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """:meth:`expand_flat` with the showers' windows ``w`` already placed."""
        uk, energy, _ = self._windows(w, points)
        n_clouds, shower = len(offsets) - 1, uk // 1000
        k = np.bincount(shower, minlength=n_clouds)
        u = np.full(len(uk), 0.5) if uniform is None else np.asarray(uniform(k), np.float64)
        bins = self.group(uk % 1000, np.asarray(incident, np.float64)[shower])
        pat = self.draw(bins, np.log10(np.maximum(energy, 1e-30)), u)
        rows, slots = np.nonzero(pat > 0)
        sh, half = shower[rows], self.side // 2
        li, lj = slots // self.side - half, slots % self.side - half
        ii = np.where(w.fx[sh], -1 - li, li) + w.gx[sh]
        jj = np.where(w.fy[sh], -1 - lj, lj) + w.gy[sh]
        pts = {
            "E": (energy[rows] * pat[rows, slots]).astype(np.float32),
            "x": ((ii + 0.5) * self.pitch).astype(np.float32),
            "y": ((jj + 0.5) * self.pitch).astype(np.float32),
            "layer": (uk[rows] % 1000).astype(np.asarray(points["layer"]).dtype),
        }
        return _offsets(np.bincount(sh, minlength=n_clouds)), pts

    def draw(self, bins: np.ndarray, log_energy: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``[K, S*S]`` cores for windows of groups ``bins [K]`` and log10 energies
        ``log_energy [K]``, each one of the :data:`NEAREST` cores of its group nearest in
        energy, chosen by ``u [K]``; a group without cores draws from its layer's, a layer
        without any puts the energy on the four sub-cells at the corner."""
        start = np.searchsorted(self.bins, bins)
        stop = np.searchsorted(self.bins, bins, side="right")
        key = _sort_key(self.bins, self.log_energy)
        pos = np.searchsorted(key, _sort_key(bins, log_energy))
        lo = np.clip(pos - NEAREST // 2, start, np.maximum(start, stop - NEAREST))
        hi = np.minimum(lo + NEAREST, stop)
        empty = stop == start  # the layer's cores instead
        layer = bins // 100
        lo[empty] = np.searchsorted(self.bins, layer[empty] * 100)
        hi[empty] = np.searchsorted(self.bins, layer[empty] * 100 + 99, side="right")
        found = hi > lo
        pick = np.minimum(lo + (np.asarray(u) * (hi - lo)).astype(np.int64),
                          max(len(self.bins) - 1, 0))  # fmt: skip
        out = np.zeros((len(bins), self.side**2))
        if len(self.bins):
            out[found] = self.patterns[pick[found]].astype(np.float64)
        half = self.side // 2  # the four sub-cells at the corner share a core no layer has
        for ci in (half - 1, half):
            out[~found, ci * self.side + half - 1 : ci * self.side + half + 1] = 0.25
        return out


@dataclass
class HaloLibrary:
    """Halo patches of training showers: each block outside its shower's core window with the
    8 blocks around it, ``patches [M, S*S]`` (``S = 3 * block`` sub-cells per side; the
    sub-cells' energies in MeV, mirrored to face outwards as block patterns are; sub-cells in
    the core window left out), ``lit [M]`` (lit blocks of the patch, 1-9), by ``bins [M]``
    sorted (the block's :class:`PatternLibrary` bin, which holds its energy within half a
    decade).

    Beyond the core window Geant4's halo blocks come in chains along tracks (30-60 mm from the
    axis 40 % of them have a lit neighbour), a network that places blocks given the shower
    alone almost never makes one (``docs/fidelity.md``, session 13). Each generated halo block
    is kept with probability ``E[1/lit]`` of its bin and replaced by a patch drawn with weight
    ``1/lit`` (a chain of ``k`` blocks is the centre of ``k`` training patches), so the number
    of lit blocks and the share of isolated ones stay Geant4's; overlapping patches are summed
    per sub-cell and each (shower, layer)'s halo energy is rescaled to the generated one. The
    patches keep their Geant4 energies up to that rescaling (scaling them by the generated
    block's energy instead widened the spread of halo point energies: more below 0.1 MeV and
    above 3 MeV than Geant4, validation worst view 0.720 against 0.654)."""

    pitch: float
    block: int
    bins: np.ndarray
    patches: np.ndarray
    lit: np.ndarray

    @property
    def side(self) -> int:
        return 3 * self.block

    @classmethod
    def from_showers(cls, showers: ak.Array, core: CoreLibrary) -> HaloLibrary:
        """The patches of every block outside the core windows (of ``core``) of ``showers``."""
        flat = flatten(showers)
        offsets, points = _usable(flat.offsets, flat.points)
        window = core._window(offsets, points)
        o_off, o_pts = _select(offsets, points, ~window.inside)
        b = find_blocks_flat(o_off, o_pts, core.pitch, core.block, (window.cx, window.cy))
        n, side = core.block, 3 * core.block
        owner = np.repeat(np.arange(len(o_off) - 1), np.diff(o_off))
        i = np.floor(np.asarray(o_pts["x"], np.float64) / core.pitch).astype(np.int64)
        j = np.floor(np.asarray(o_pts["y"], np.float64) / core.pitch).astype(np.int64)
        layer = np.asarray(o_pts["layer"]).astype(np.int64)
        keys = _cell_keys(owner, layer, i, j)
        order = np.argsort(keys)
        keys, e = keys[order], np.asarray(o_pts["E"], np.float64)[order]
        a = np.arange(side)
        gi = _patch_cells(b.bx[:, None, None], b.flip[:, :1, None], a[None, :, None], n)
        gj = _patch_cells(b.by[:, None, None], b.flip[:, 1:, None], a[None, None, :], n)
        want = _cell_keys(b.shower[:, None, None], b.layer[:, None, None], gi, gj)
        pos = np.minimum(np.searchsorted(keys, want), max(len(keys) - 1, 0))
        hit = (keys[pos] == want) if len(keys) else np.zeros(want.shape, bool)
        patches = np.where(hit, e[pos] if len(keys) else 0.0, 0.0).reshape(len(b.bin), -1)
        lit = (patches.reshape(-1, 3, n, 3, n) > 0).any(axis=(2, 4)).sum(axis=(1, 2))
        order = np.argsort(b.bin, kind="stable")
        return cls(core.pitch, core.block, b.bin[order], patches[order].astype(np.float32),
                   np.maximum(lit[order], 1).astype(np.int8))  # fmt: skip

    def subsample(self, cap: int, seed: int = 0) -> HaloLibrary:
        """At most ``cap`` patches of each bin, drawn without replacement."""
        k = _cap_per_bin(self.bins, cap, seed)
        return HaloLibrary(self.pitch, self.block, self.bins[k], self.patches[k], self.lit[k])

    def keep_probability(self, bins: np.ndarray) -> np.ndarray:
        """``[K]`` the chance a generated block of each of ``bins`` is kept: ``E[1/lit]`` of
        its bin's patches (1 for a bin the library lacks)."""
        ub, inv = np.unique(self.bins, return_inverse=True)
        mean_inv = np.bincount(inv, 1.0 / self.lit, len(ub)) / np.maximum(np.bincount(inv), 1)
        pos = np.minimum(np.searchsorted(ub, bins), max(len(ub) - 1, 0))
        found = (ub[pos] == bins) if len(ub) else np.zeros(len(bins), bool)
        return np.where(found, mean_inv[pos] if len(ub) else 1.0, 1.0)

    def draw(self, bins: np.ndarray, u: np.ndarray) -> np.ndarray:
        """``[K, S*S]`` patches, one of each of ``bins [K]`` drawn with weight ``1 / lit`` by
        ``u [K]`` in [0, 1); a bin the library lacks keeps the block alone, its energy in its
        centre sub-cell."""
        start = np.searchsorted(self.bins, bins)
        stop = np.searchsorted(self.bins, bins, side="right")
        found = stop > start
        w = 1.0 / self.lit
        cum = np.concatenate([[0.0], np.cumsum(w)])  # within a bin: cum[start..stop]
        target = cum[start] + np.asarray(u) * (cum[stop] - cum[start])
        pick = np.clip(
            np.searchsorted(cum, target, side="right") - 1, start, np.maximum(stop - 1, start)
        )
        out = np.zeros((len(bins), self.side**2))
        if len(self.bins):
            out[found] = self.patches[np.minimum(pick[found], len(self.bins) - 1)]
        c = self.side // 2
        out[~found, c * self.side + c] = 1.0
        return out

    def fill(
        self,
        offsets: np.ndarray,
        points: dict[str, np.ndarray],
        window: _Window,
        core: CoreLibrary,
        uniform: Callable[[np.ndarray], np.ndarray] | None,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Sub-cells of the blocks of flat clouds ``(offsets, points)`` that lie outside their
        windows (``window``, placed by ``core`` on all the clouds' points; ``points`` are the
        outside ones): blocks kept and replaced by patches as the class docstring says, each
        cloud's uniform numbers (``uniform``, as for :meth:`PatternLibrary.expand_flat`) first
        for the keep decisions, then for the patches; every (shower, layer) keeps its hottest
        block and its halo energy."""
        b = find_blocks_flat(offsets, points, self.pitch, self.block, (window.cx, window.cy))
        n_clouds, n, side = len(offsets) - 1, self.block, self.side
        k = np.bincount(b.shower, minlength=n_clouds)
        draw = (lambda m: np.full(int(m.sum()), 0.5)) if uniform is None else uniform
        u_keep, u_pick = np.asarray(draw(k), np.float64), np.asarray(draw(k), np.float64)
        keep = u_keep < self.keep_probability(b.bin)
        sl = b.shower * 1024 + b.layer
        hottest = np.lexsort((-b.energy, sl))
        first = np.concatenate([[True], sl[hottest][1:] != sl[hottest][:-1]]) if len(sl) else []
        keep[hottest[first]] = True
        kept = np.flatnonzero(keep)
        pat = self.draw(b.bin[kept], u_pick[kept])
        rows, slots = np.nonzero(pat > 0)
        blk = kept[rows]
        a, c = slots // side, slots % side
        gi = _patch_cells(b.bx[blk], b.flip[blk, 0], a, n)
        gj = _patch_cells(b.by[blk], b.flip[blk, 1], c, n)
        sh, lay, e = b.shower[blk], b.layer[blk], pat[rows, slots]
        ok = ~core.cells_inside(window, sh, gi, gj)  # the window is the cores'
        keys, inv = np.unique(_cell_keys(sh[ok], lay[ok], gi[ok], gj[ok]), return_inverse=True)
        energy = np.bincount(inv.ravel(), e[ok], len(keys))
        sh, lay, ci, cj = _cell_parts(keys)
        want = np.bincount(sl, b.energy, n_clouds * 1024)
        have = np.bincount(sh * 1024 + lay, energy, n_clouds * 1024)
        energy = energy * (want / np.maximum(have, 1e-300))[sh * 1024 + lay]
        pts = {
            "E": energy.astype(np.float32),
            "x": ((ci + 0.5) * self.pitch).astype(np.float32),
            "y": ((cj + 0.5) * self.pitch).astype(np.float32),
            "layer": lay.astype(np.asarray(points["layer"]).dtype),
        }
        return _offsets(np.bincount(sh, minlength=n_clouds)), pts


def _patch_cells(block: np.ndarray, flip: np.ndarray, a: np.ndarray, n: int) -> np.ndarray:
    """Lattice indices along one axis of slot ``a`` (0 .. 3n - 1, stored facing outwards) of
    the halo patch around block ``block`` (``n`` sub-cells per block), mirrored back where
    ``flip``; broadcasts."""
    return block * n - n + np.where(flip, 3 * n - 1 - a, a)


_SPAN = 1 << 20  # sub-cells per axis in a cell key (890 m at 0.848 mm)


def _cell_keys(shower, layer, i, j) -> np.ndarray:
    """One int64 per (shower, layer, sub-cell), ordered as those rows (layer < 1024)."""
    shower, layer = np.asarray(shower, np.int64), np.asarray(layer, np.int64)
    return ((shower * 1024 + layer) * _SPAN + np.asarray(i) + _SPAN // 2) * _SPAN + (
        np.asarray(j) + _SPAN // 2
    )


def _cell_parts(keys: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(shower, layer, i, j)`` of :func:`_cell_keys`."""
    return (keys // (1024 * _SPAN * _SPAN), keys // (_SPAN * _SPAN) % 1024,
            keys // _SPAN % _SPAN - _SPAN // 2, keys % _SPAN - _SPAN // 2)  # fmt: skip


def _sort_key(bins: np.ndarray, log_energy: np.ndarray) -> np.ndarray:
    """One float per core ordered as (group, log energy): groups 16 apart, log10 energies in
    [-6, 6] mapped into [0, 15)."""
    return bins.astype(np.float64) * 16 + (np.clip(log_energy, -6, 6) + 6) * 1.25


@dataclass
class _Window:
    """Per point: shower, inside its window, window sub-cell ``i, j``; per shower: corner
    ``gx, gy`` (sub-cells), mirror flags ``fx, fy`` and energy-weighted centre ``cx, cy``
    (mm)."""

    owner: np.ndarray
    inside: np.ndarray
    i: np.ndarray
    j: np.ndarray
    gx: np.ndarray
    gy: np.ndarray
    fx: np.ndarray
    fy: np.ndarray
    cx: np.ndarray
    cy: np.ndarray


def _cap_per_bin(bins: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``cap`` entries of each bin, drawn without replacement."""
    rng = np.random.default_rng(seed)
    keep = []
    for b in np.unique(bins):
        idx = np.flatnonzero(bins == b)
        keep.append(idx if len(idx) <= cap else np.sort(rng.choice(idx, cap, replace=False)))
    return np.concatenate(keep) if keep else np.zeros(0, np.int64)


def _offsets(counts: np.ndarray) -> np.ndarray:
    """``[N + 1]`` int64 offsets of clouds of ``counts [N]`` points."""
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)


def _centres(offsets: np.ndarray, points: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """``(owner [P], E, x, y [P] float64, cx, cy [N])``: each point's cloud, its energy and
    position, and each cloud's energy-weighted transverse centre (mm)."""
    counts = np.diff(np.asarray(offsets, np.int64))
    owner = np.repeat(np.arange(len(counts)), counts)
    e = np.asarray(points["E"], np.float64)
    x, y = np.asarray(points["x"], np.float64), np.asarray(points["y"], np.float64)
    w = np.maximum(np.bincount(owner, e, len(counts)), 1e-300)
    cx, cy = np.bincount(owner, e * x, len(counts)) / w, np.bincount(owner, e * y, len(counts)) / w
    return owner, e, x, y, cx, cy


def _select(
    offsets: np.ndarray, points: dict[str, np.ndarray], mask: np.ndarray
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Flat clouds of the points where ``mask`` is true."""
    owner = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    counts = np.bincount(owner[mask], minlength=len(offsets) - 1)
    return _offsets(counts), {k: np.asarray(v)[mask] for k, v in points.items()}


def _join(
    a_off: np.ndarray, a: dict[str, np.ndarray], b_off: np.ndarray, b: dict[str, np.ndarray]
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Flat clouds with each cloud's points of ``a`` then of ``b``."""
    n = len(a_off) - 1
    owner = np.concatenate([np.repeat(np.arange(n), np.diff(a_off)),
                            np.repeat(np.arange(n), np.diff(b_off))])  # fmt: skip
    order = np.argsort(owner, kind="stable")
    pts = {k: np.concatenate([a[k], b[k].astype(a[k].dtype)])[order] for k in a}
    return _offsets(np.diff(a_off) + np.diff(b_off)), pts


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
    return (offsets, points) if ok.all() else _select(offsets, points, ok)


class PatternBuffers(nn.Module):
    """A :class:`PatternLibrary` as buffers of a model (``bins [M]`` int64, ``patterns
    [M, B*B]`` float16; with a core library also ``core_bins [C]``, ``core_log_energy [C]``,
    ``core_inc_edges [G - 1]`` and the cores' shares, sparse: ``core_counts [C]`` lit
    sub-cells per core, then per lit sub-cell its slot ``core_slots [K]`` (int16) and share
    ``core_shares [K]`` (float32), a tenth of the dense ``[C, S*S]`` table; checkpoints of
    2026-12-05 hold that table as ``core_patterns`` in float16 and still load); with halo
    patches ``halo_bins [H]``, ``halo_lit [H]`` and the patches sparse as the cores
    (``halo_counts``, ``halo_slots``, ``halo_shares``), so a checkpoint carries it; sizes,
    ``block``, ``pitch`` and the core's width come from the checkpoint's meta (``meta``:
    :func:`library_meta`)."""

    def __init__(self, meta: dict) -> None:
        super().__init__()
        self.block, self.pitch = int(meta["block"]), float(meta["pitch"])
        self.core_width = int(meta.get("core_width", 0))
        n, n_core, side = (
            int(meta["n_patterns"]),
            int(meta.get("n_core", 0)),
            self.core_width * self.block,
        )
        self.register_buffer("bins", torch.zeros(n, dtype=torch.int64))
        self.register_buffer("patterns", torch.zeros(n, self.block**2, dtype=torch.float16))
        self.sparse_core = "core_lit" in meta
        if self.core_width:
            self.register_buffer("core_bins", torch.zeros(n_core, dtype=torch.int64))
            if self.sparse_core:
                self._register_sparse("core", n_core, int(meta["core_lit"]))
            else:
                dense = torch.zeros(n_core, side**2, dtype=torch.float16)
                self.register_buffer("core_patterns", dense)
            self.register_buffer("core_log_energy", torch.zeros(n_core, dtype=torch.float32))
            n_edges = int(meta.get("n_inc_edges", 0))
            self.register_buffer("core_inc_edges", torch.zeros(n_edges, dtype=torch.float64))
        self.n_halo = int(meta.get("n_halo", 0))
        if self.n_halo:  # halo patches, sparse as the cores
            self.register_buffer("halo_bins", torch.zeros(self.n_halo, dtype=torch.int64))
            self.register_buffer("halo_lit", torch.zeros(self.n_halo, dtype=torch.int8))
            self._register_sparse("halo", self.n_halo, int(meta["halo_lit_cells"]))
        self._cached: PatternLibrary | None = None

    def _register_sparse(self, name: str, rows: int, lit: int) -> None:
        """Buffers of a sparse ``[rows, S]`` table: ``{name}_counts [rows]`` int32 non-zero
        entries per row, then per entry its slot ``{name}_slots`` (int16) and value
        ``{name}_shares`` (float32), row by row."""
        self.register_buffer(f"{name}_counts", torch.zeros(rows, dtype=torch.int32))
        self.register_buffer(f"{name}_slots", torch.zeros(lit, dtype=torch.int16))
        self.register_buffer(f"{name}_shares", torch.zeros(lit, dtype=torch.float32))

    def _set_sparse(self, name: str, table: np.ndarray) -> None:
        """Fill the buffers of :meth:`_register_sparse` from the dense ``table [rows, S]``."""
        rows, slots = np.nonzero(table > 0)
        getattr(self, f"{name}_counts").copy_(
            torch.as_tensor(np.bincount(rows, minlength=len(table)))
        )
        getattr(self, f"{name}_slots").copy_(torch.as_tensor(slots.astype(np.int16)))
        getattr(self, f"{name}_shares").copy_(
            torch.as_tensor(table[rows, slots], dtype=torch.float32)
        )

    def _dense(self, name: str, width: int) -> np.ndarray:
        """The dense ``[rows, width]`` float64 table of the buffers of :meth:`_register_sparse`."""
        counts = getattr(self, f"{name}_counts").cpu().numpy().astype(np.int64)
        out = np.zeros((len(counts), width))
        slots = getattr(self, f"{name}_slots").cpu().numpy().astype(np.int64)
        out[np.repeat(np.arange(len(counts)), counts), slots] = (
            getattr(self, f"{name}_shares").cpu().numpy()
        )
        return out

    @classmethod
    def of(cls, library: PatternLibrary) -> PatternBuffers:
        out = cls(library_meta(library))
        out.bins.copy_(torch.as_tensor(library.bins))
        out.patterns.copy_(torch.as_tensor(library.patterns, dtype=torch.float16))
        if library.core is not None:
            c = library.core
            out.core_bins.copy_(torch.as_tensor(c.bins))
            out._set_sparse("core", c.patterns)
            out.core_log_energy.copy_(torch.as_tensor(c.log_energy))
            out.core_inc_edges.copy_(torch.as_tensor(c.inc_edges))
        if library.halo is not None:
            h = library.halo
            out.halo_bins.copy_(torch.as_tensor(h.bins))
            out.halo_lit.copy_(torch.as_tensor(h.lit))
            out._set_sparse("halo", h.patches)
        return out

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self._cached = None
        super()._load_from_state_dict(*args, **kwargs)

    def _core_shares(self) -> np.ndarray:
        """The cores' shares, dense ``[C, S*S]``."""
        if not self.sparse_core:
            return _shares(self.core_patterns)
        pat = self._dense("core", (self.core_width * self.block) ** 2)
        return pat / np.maximum(pat.sum(1, keepdims=True), 1e-300)

    def library(self) -> PatternLibrary:
        """The library (numpy; shares renormalised to sum to one after rounding), made once
        per loaded state."""
        if self._cached is None:
            core = None
            if self.core_width:
                bins = self.core_bins.cpu().numpy()
                log_e = self.core_log_energy.cpu().numpy()
                edges = self.core_inc_edges.cpu().numpy()
                core = CoreLibrary(
                    self.pitch, self.block, self.core_width, bins, self._core_shares(), log_e,
                    edges,
                )  # fmt: skip
            halo = None
            if self.n_halo:
                patches = self._dense("halo", (3 * self.block) ** 2).astype(np.float32)
                halo = HaloLibrary(self.pitch, self.block, self.halo_bins.cpu().numpy(), patches,
                                   self.halo_lit.cpu().numpy())  # fmt: skip
            self._cached = PatternLibrary(
                self.pitch, self.block, self.bins.cpu().numpy(), _shares(self.patterns), core,
                halo,
            )  # fmt: skip
        return self._cached


def _shares(patterns: torch.Tensor) -> np.ndarray:
    """float16 shares as float64 rows summing to one."""
    pat = patterns.cpu().float().numpy().astype(np.float64)
    return pat / np.maximum(pat.sum(1, keepdims=True), 1e-300)


def library_meta(library: PatternLibrary) -> dict:
    """What a checkpoint's meta records of its block library (``meta["blocks"]``)."""
    meta = {"block": library.block, "pitch": library.pitch, "n_patterns": len(library.bins)}
    if library.core is not None:
        c = library.core
        meta |= {"core_width": c.width, "n_core": len(c.bins), "n_inc_edges": len(c.inc_edges),
                 "core_lit": int(np.count_nonzero(c.patterns > 0))}  # fmt: skip
    if library.halo is not None:
        h = library.halo
        meta |= {"n_halo": len(h.bins), "halo_lit_cells": int(np.count_nonzero(h.patches > 0))}
    return meta


def training_library(
    path: str,
    block: int,
    cap: int,
    seed: int = 0,
    core_width: int = 0,
    core_cap: int = 0,
    halo_cap: int = 0,
) -> tuple[PatternLibrary, dict]:
    """The pattern library a two-level model carries, from the sub-cell showers of ``path``
    (its training split, any shower file): at most ``cap`` patterns per bin and, with
    ``core_width > 0``, ``core_cap`` cores per bin and (``halo_cap > 0``) ``halo_cap`` halo
    patches per bin (:meth:`PatternLibrary.subsample`), on the file's own lattice; and the
    limits its re-expanded points must obey (:class:`pointcalo.validity.PointLimits` as a
    dict, measured on those showers: sub-cells, not blocks)."""
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
    library = PatternLibrary.from_showers(
        showers, spec.lattice_pitch, block, core_width, halo=halo_cap > 0
    )
    library = library.subsample(cap, seed, core_cap, halo_cap)
    limits = measured_limits(spec, flat.points)
    return library, (limits.to_dict() if limits is not None else {})


def attach_library(
    state: dict,
    path: str,
    block: int,
    cap: int,
    seed: int = 0,
    core_width: int = 0,
    core_cap: int = 0,
    halo_cap: int = 0,
) -> dict:
    """A checkpoint ``state`` of a CaloClouds (or distilled CaloClouds) model trained on
    blocks of ``block x block`` sub-cells without its library (trained before the family
    knew blocks), made a two-level model: the library of ``path``'s sub-cell showers
    (:func:`training_library`) in its weights, meta and config, as training with
    ``model.blocks`` would have written them. Returns the new state (the input is not
    changed)."""
    import copy

    library, limits = training_library(path, block, cap, seed, core_width, core_cap, halo_cap)
    out = copy.deepcopy({k: v for k, v in state.items() if k != "checksum"})
    settings = {"blocks": block, "blocks_from": str(path), "block_patterns": cap,
                "core_window": core_width, "core_patterns": core_cap or cap,
                "halo_patches": halo_cap}  # fmt: skip
    model_cfg = out["config"]["model"]
    if model_cfg["name"] == "consistency":
        model_cfg = out["meta"]["teacher_config"]["model"]
    model_cfg.update(settings)
    out["meta"]["blocks"] = library_meta(library)
    out["meta"]["point_limits"] = limits
    out["model"] = {k: v for k, v in out["model"].items() if not k.startswith("blocks.")}
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
    return _offsets(np.bincount(cloud[keep], minlength=len(counts))), out
