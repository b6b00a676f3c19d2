"""Sampling calorimeter geometry for the built-in shower simulator.

A calorimeter is a stack of layers, each an absorber followed by an active (sensor) layer.
Effective material quantities of the absorber/active mixture follow GFlash (Grindhammer and
Peters, hep-ex/0001020; Geant4's GFlashSamplingShowerParameterisation): mass-weighted Z,
effective radiation length X0_eff, Moliere radius R_M,eff, critical energy E_c,eff, the sampling
frequency F_s = X0_eff / (d_absorber + d_active) and e/mip ratio e_hat = 1 / (1 + 0.007 (Z_a -
Z_p)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ES_MEV = 21.2  # scale energy of multiple scattering (MeV), for Moliere radii


@dataclass(frozen=True)
class Material:
    """A material: name, Z, A (g/mol), density (g/cm^3), radiation length (mm)."""

    name: str
    Z: float
    A: float
    density: float
    X0: float

    @property
    def critical_energy(self) -> float:
        """Critical energy in MeV (GFlash: 2.66 (X0 [g/cm^2] Z / A)^1.1)."""
        x0_gcm2 = self.X0 / 10.0 * self.density
        return 2.66 * (x0_gcm2 * self.Z / self.A) ** 1.1


TUNGSTEN = Material("W", 74.0, 183.84, 19.3, 3.504)
SILICON = Material("Si", 14.0, 28.0855, 2.33, 93.7)


@dataclass(frozen=True)
class SamplingCalorimeter:
    """Layers of ``absorber_mm[i]`` absorber followed by ``active_mm`` of active material.

    Points are recorded in the active layers on a square sub-cell lattice of ``pitch_mm``
    whose sub-cell centres sit at ``(k + 1/2) * pitch_mm``, inside ``|x|, |y| <
    half_width_mm``. The default is the ILD-like Si-W ECAL of the shared Geant4 sample.
    """

    absorber_mm: tuple[float, ...] = (2.1,) * 20 + (4.2,) * 10
    active_mm: float = 0.5
    absorber: Material = TUNGSTEN
    active: Material = SILICON
    pitch_mm: float = 5.088 / 6
    half_width_mm: float = 150.0
    name: str = "ILD-like Si-W ECAL"
    meta: dict = field(default_factory=dict, compare=False)

    @property
    def n_layers(self) -> int:
        return len(self.absorber_mm)

    def sensor_depth_mm(self) -> np.ndarray:
        """Depth of the middle of each active layer from the front face (mm), ``[L]``."""
        pitch = np.asarray(self.absorber_mm) + self.active_mm
        front = np.concatenate([[0.0], np.cumsum(pitch)[:-1]])
        return front + np.asarray(self.absorber_mm) + self.active_mm / 2

    def sensor_depth_x0(self) -> np.ndarray:
        """Depth of the middle of each active layer in radiation lengths, ``[L]``."""
        a = np.asarray(self.absorber_mm) / self.absorber.X0
        s = self.active_mm / self.active.X0
        before = np.concatenate([[0.0], np.cumsum(a + s)[:-1]])
        return before + a + s / 2

    def effective(self, layer: int = 0) -> dict[str, float]:
        """GFlash effective quantities of the absorber/active mixture of ``layer``."""
        d1, d2 = self.absorber_mm[layer], self.active_mm
        m1, m2 = self.absorber, self.active
        w1 = d1 * m1.density / (d1 * m1.density + d2 * m2.density)
        w2 = 1.0 - w1
        rho = (d1 * m1.density + d2 * m2.density) / (d1 + d2)
        x0 = 1.0 / (w1 * rho / (m1.X0 * m1.density) + w2 * rho / (m2.X0 * m2.density))
        ec_over_x0 = w1 * m1.critical_energy / m1.X0 + w2 * m2.critical_energy / m2.X0
        return {
            "Z": w1 * m1.Z + w2 * m2.Z,
            "X0": x0,
            "RM": ES_MEV / ec_over_x0,
            "Ec": x0 * ec_over_x0,
            "Fs": x0 / (d1 + d2),
            "ehat": 1.0 / (1.0 + 0.007 * (m1.Z - m2.Z)),
        }
