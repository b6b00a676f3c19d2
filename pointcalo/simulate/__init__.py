"""Built-in shower sources: a GFlash-style parametrised simulator calibrated on Geant4."""

from __future__ import annotations

from pointcalo.simulate.geometry import SILICON, TUNGSTEN, Material, SamplingCalorimeter
from pointcalo.simulate.simulator import Calibration, ShowerSimulator, simulate, simulate_to_file

__all__ = [
    "SILICON",
    "TUNGSTEN",
    "Calibration",
    "Material",
    "SamplingCalorimeter",
    "ShowerSimulator",
    "simulate",
    "simulate_to_file",
]
