"""CaloChallenge 2022 voxel files: ``incident_energies [N, 1]`` and ``showers [N, voxels]``, MeV.

Voxels are flattened radial bin fastest, then angular bin, then layer, which is the order of
:class:`voxelize.grids.CylindricalGrid`, so ``project(points, calochallenge("2")).voxels`` can be
written here as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from voxelize.atomic import AtomicWriter, temporary_path
from voxelize.grids import Grid, GridError
from voxelize.presets import load_grid


def read_calochallenge(
    path: str | os.PathLike[str],
    grid: Grid | str | None = None,
    start: int = 0,
    stop: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(incident_energies [N], showers [N, voxels])`` in MeV, rows ``start:stop``.

    If ``grid`` is given, the number of voxels must match it.
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise GridError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise GridError(f"{path}: not an HDF5 file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise GridError(f"{path}: cannot open (truncated or corrupt?): {err}") from None
    with f:
        for key in ("incident_energies", "showers"):
            if key not in f:
                raise GridError(f"{path}: {key}: missing dataset (file has: {', '.join(f)})")
        e_ds, s_ds = f["incident_energies"], f["showers"]
        if s_ds.ndim != 2:
            raise GridError(f"{path}: showers: must be [N, voxels], got shape {s_ds.shape}")
        if e_ds.shape[0] != s_ds.shape[0]:
            raise GridError(
                f"{path}: incident_energies: {e_ds.shape[0]} rows but showers has {s_ds.shape[0]}"
            )
        if grid is not None:
            g = load_grid(grid)
            if s_ds.shape[1] != g.n_voxels:
                raise GridError(
                    f"{path}: showers: {s_ds.shape[1]} voxels, grid '{g.name}' has {g.n_voxels}"
                )
        energy = np.asarray(e_ds[start:stop], dtype=np.float64).reshape(-1)
        showers = np.asarray(s_ds[start:stop])
    if not np.all(np.isfinite(energy)):
        raise GridError(f"{path}: incident_energies: non-finite energies")
    if not np.all(np.isfinite(showers)):
        raise GridError(f"{path}: showers: non-finite energies")
    return energy, showers


class CaloChallengeWriter(AtomicWriter):
    """Streaming, atomic writer of CaloChallenge files: append ``(energies, showers)`` chunks;
    the file appears under its name only when closed without error."""

    def __init__(self, path: str | os.PathLike[str], n_voxels: int, attrs: dict | None = None):
        import h5py

        self.path = Path(path)
        self._tmp = temporary_path(self.path)
        self._file = h5py.File(self._tmp, "w")
        rows = max(1, min(1024, (1 << 22) // max(n_voxels, 1)))
        self._e = self._file.create_dataset(
            "incident_energies",
            (0, 1),
            maxshape=(None, 1),
            dtype=np.float64,
            chunks=(rows, 1),
            compression="gzip",
        )
        self._s = self._file.create_dataset(
            "showers",
            (0, n_voxels),
            maxshape=(None, n_voxels),
            dtype=np.float32,
            chunks=(rows, n_voxels),
            compression="gzip",
        )
        for key, value in (attrs or {}).items():
            self._file.attrs[key] = value
        self.n_voxels = n_voxels
        self.n_showers = 0

    def write(self, incident_energies: np.ndarray, showers: np.ndarray) -> None:
        energy = np.asarray(incident_energies, dtype=np.float64).reshape(-1, 1)
        showers = np.asarray(showers)
        if showers.ndim != 2 or showers.shape != (len(energy), self.n_voxels):
            raise GridError(
                f"{self.path}: showers must be [{len(energy)}, {self.n_voxels}], "
                f"got {showers.shape}"
            )
        self._check_space(energy.nbytes + len(energy) * self.n_voxels * 4)
        n = self.n_showers
        try:
            self._e.resize((n + len(energy), 1))
            self._s.resize((n + len(energy), self.n_voxels))
            self._e[n:] = energy
            self._s[n:] = showers
            self._file.flush()  # a full disk shows here, as an exception, not in h5py's cleanup
        except (OSError, RuntimeError) as err:
            self._write_failed(err)
        self.n_showers += len(energy)


def write_calochallenge(
    path: str | os.PathLike[str], incident_energies: np.ndarray, showers: np.ndarray
) -> Path:
    """Write a CaloChallenge file atomically (gzip, as the challenge's files are)."""
    showers = np.asarray(showers)
    if showers.ndim != 2:
        raise GridError(f"{path}: showers must be [N, voxels], got shape {showers.shape}")
    with CaloChallengeWriter(path, showers.shape[1]) as writer:
        writer.write(incident_energies, showers)
    return Path(path)
