"""Sparse per-shower sums: the voxels a shower's points hit and the energy in each.

``sparse_sums(slot, energy, ptr, n_slots)`` returns ``(shower, slot, energy)`` of every slot hit
by at least one point, sorted by shower then slot, with the energies summed in point order
(float64), so the sums are bit-identical to ``numpy.bincount`` over the dense ``[N, n_slots]``
block.

Two implementations give identical output:

- a compiled loop (numba, the ``fast`` extra): per shower, one pass over its points adds
  their energies into an ``[n_slots]`` accumulator that stays in cache and records the slots
  touched (without a branch), whose few hundred entries are then radix-sorted, emitted and
  reset. No pass over untouched slots, no table bigger than one shower's grid.
- numpy: one scatter of point positions into an ``[N * n_slots]`` int32 table picks one
  representative point per hit slot, only the distinct slots are sorted, and a bincount over
  them gives the sums.

numba is optional (``pip install pointcalo[fast]``); without it the numpy path runs.
``VOXELIZE_NUMBA=0`` in the environment forces the numpy path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache

import numpy as np

Sums = tuple[np.ndarray, np.ndarray, np.ndarray]


def sparse_sums(slot: np.ndarray, energy: np.ndarray, ptr: np.ndarray, n_slots: int) -> Sums:
    """Summed energy per hit slot of each shower.

    Args:
        slot: ``[P]`` int64 slot of each point in ``[0, n_slots)``.
        energy: ``[P]`` float64 energies (MeV).
        ptr: ``[N + 1]`` int64 offsets; shower ``i`` owns points ``ptr[i]:ptr[i + 1]``.
        n_slots: slots per shower.

    Returns:
        ``shower [H]`` int64, ``slot [H]`` int64, ``energy [H]`` float64 for the ``H`` hit
        (shower, slot) pairs, sorted by shower then slot.
    """
    kernel = _compiled()
    if kernel is not None:
        return kernel(slot, energy, ptr, n_slots)
    return _numpy_sums(slot, energy, ptr, n_slots)


def using_numba() -> bool:
    """Whether :func:`sparse_sums` runs the compiled loop."""
    return _compiled() is not None


def _numpy_sums(slot: np.ndarray, energy: np.ndarray, ptr: np.ndarray, n_slots: int) -> Sums:
    n_showers = len(ptr) - 1
    key = np.repeat(np.arange(n_showers, dtype=np.int64), np.diff(ptr)) * n_slots + slot
    owner = np.empty(n_showers * n_slots, np.int32)
    pos = np.arange(len(key), dtype=np.int32)
    owner[key] = pos  # one position per distinct key survives
    first = owner[key]
    rep = np.flatnonzero(first == pos)
    distinct = key[rep]
    order = np.argsort(distinct)
    rank = np.empty(len(key), np.int32)
    rank[rep[order]] = np.arange(len(order), dtype=np.int32)
    sums = np.bincount(rank[first], weights=energy, minlength=len(order))
    keys = distinct[order]
    return keys // n_slots, keys % n_slots, sums


@cache
def _compiled() -> Callable[..., Sums] | None:
    if os.environ.get("VOXELIZE_NUMBA", "1") == "0":
        return None
    try:
        import numba
    except ImportError:
        return None

    @numba.njit(cache=True, nogil=True)
    def radix_sort(a, tmp, count):  # pragma: no cover - compiled
        """Sorts non-negative ints ``a`` (LSD radix, 8 bits a pass; returns a or tmp)."""
        hi = 0
        for value in a:
            hi = max(hi, value)
        src, dst, shift = a, tmp[: len(a)], 0
        while (hi >> shift) > 0:
            count[:] = 0
            for value in src:
                count[((value >> shift) & 255) + 1] += 1
            for b in range(256):
                count[b + 1] += count[b]
            for value in src:
                d = (value >> shift) & 255
                dst[count[d]] = value
                count[d] += 1
            src, dst, shift = dst, src, shift + 8
        return src

    @numba.njit(cache=True, nogil=True)
    def kernel(slot, energy, ptr, n_slots):  # pragma: no cover - compiled
        n = len(slot)
        acc = np.zeros(n_slots)
        hit = np.zeros(n_slots, np.uint8)
        touched, tmp, count = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(257, np.int64)
        shower, voxel, sums = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n)
        k = 0
        for s in range(len(ptr) - 1):
            m = 0
            for p in range(ptr[s], ptr[s + 1]):
                v = slot[p]
                touched[m] = v  # kept only if v is new: no branch to mispredict
                m += 1 - hit[v]
                hit[v] = 1
                acc[v] += energy[p]
            for v in radix_sort(touched[:m], tmp, count):
                shower[k], voxel[k], sums[k] = s, v, acc[v]
                acc[v], hit[v] = 0.0, 0
                k += 1
        return shower[:k], voxel[:k], sums[:k]

    return kernel
