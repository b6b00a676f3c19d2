"""Data shipped with pointcalo.

``example_photons.h5``: 160 real Geant4 photon showers (40 per 20 GeV bin, 10-90 GeV) from the
ILD-like Si-W calorimeter sample described in ``shared/data/README.md``; made by
``scripts/make_example_data.py``.
"""

from __future__ import annotations

from pathlib import Path

import awkward as ak

EXAMPLE_PHOTONS = Path(__file__).with_name("example_photons.h5")


def example_path() -> Path:
    """Path of the shipped example file (native HDF5 format)."""
    return EXAMPLE_PHOTONS


def load_example() -> ak.Array:
    """The shipped example showers in the data model."""
    from pointcalo.io import read_hdf5

    return read_hdf5(EXAMPLE_PHOTONS)
