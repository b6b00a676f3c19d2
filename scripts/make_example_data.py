"""Make the example dataset shipped in pointcalo/data from the shared Geant4 sample.

Usage: python scripts/make_example_data.py [../shared/data/g4_ild_photons.h5]

Takes 4 x 40 showers, evenly spread over the four incident-energy bins of the sample's README,
so the example covers 10-90 GeV. Deterministic.
"""

from __future__ import annotations

import sys
from pathlib import Path

import awkward as ak
import h5py
import numpy as np

from pointcalo.io import read_hdf5, write_hdf5

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared/data/g4_ild_photons.h5"
DST = ROOT / "pointcalo/data/example_photons.h5"
PER_BIN = 40


def main() -> None:
    showers = read_hdf5(SRC)
    with h5py.File(SRC) as f:
        attrs = {k: f.attrs[k] for k in f.attrs if k != "n_showers"}
    energy = ak.to_numpy(showers.incident_energy)
    picks = []
    for lo in (10e3, 30e3, 50e3, 70e3):
        idx = np.flatnonzero((energy >= lo) & (energy < lo + 20e3))
        picks.append(idx[:PER_BIN])
    sel = np.sort(np.concatenate(picks))
    attrs["source"] = f"first {PER_BIN} showers per 20 GeV bin of {SRC.name}"
    write_hdf5(showers[sel], DST, attrs=attrs)
    print(f"wrote {len(sel)} showers to {DST} ({DST.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
