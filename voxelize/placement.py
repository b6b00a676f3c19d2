"""Local shower coordinates <-> global detector coordinates (the fast-simulation interface).

A shower is generated in its local frame: ``x``, ``y`` transverse and ``z`` the depth along
the shower axis from the calorimeter's front face, in mm. Placing it in the detector needs the
impact point ``p0`` (global mm, on the front face) and the unit direction ``d`` of the axis:

    global = p0 + x * u + y * v + z * d

with ``(u, v, d)`` a right-handed orthonormal frame. ``u`` is ``up x d`` normalised (``up``
default: global +y, or +x when ``d`` is along y), and ``v = d x u``; for ``d = +z`` and the
default ``up`` this is the identity (u = +x, v = +y), so local and global coincide up to ``p0``.
"""

from __future__ import annotations

import numpy as np

from voxelize.grids import GridError


def frame(direction: np.ndarray, up: np.ndarray | None = None) -> np.ndarray:
    """``[3, 3]`` rotation whose columns are ``u, v, d`` for the given axis direction."""
    d = np.asarray(direction, dtype=np.float64)
    norm = np.linalg.norm(d)
    if d.shape != (3,) or not np.isfinite(norm) or norm == 0:
        raise GridError(f"direction must be a finite non-zero 3-vector, got {direction!r}")
    d = d / norm
    if up is None:
        up = np.array([0.0, 1.0, 0.0]) if abs(d[1]) < 0.999 else np.array([1.0, 0.0, 0.0])
    u = np.cross(np.asarray(up, dtype=np.float64), d)
    if np.linalg.norm(u) < 1e-9:
        raise GridError(f"up {up!r} is parallel to the direction {direction!r}")
    u /= np.linalg.norm(u)
    v = np.cross(d, u)
    return np.stack([u, v, d], axis=1)


def local_to_global(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    impact: np.ndarray,
    direction: np.ndarray,
    up: np.ndarray | None = None,
) -> np.ndarray:
    """Global positions ``[P, 3]`` (mm) of local points ``x, y, z`` (each ``[P]``, mm)."""
    rot = frame(direction, up)
    local = np.stack(
        [np.asarray(x, np.float64), np.asarray(y, np.float64), np.asarray(z, np.float64)], axis=1
    )
    return local @ rot.T + np.asarray(impact, dtype=np.float64)


def global_to_local(
    positions: np.ndarray,
    impact: np.ndarray,
    direction: np.ndarray,
    up: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local ``x, y, z`` (mm) of global ``positions [P, 3]``: the inverse of local_to_global."""
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise GridError(f"positions must be [P, 3], got shape {pos.shape}")
    local = (pos - np.asarray(impact, dtype=np.float64)) @ frame(direction, up)
    return local[:, 0], local[:, 1], local[:, 2]
