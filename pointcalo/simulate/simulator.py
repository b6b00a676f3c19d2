"""Parametrised electromagnetic shower simulator (GFlash-style), calibrated on Geant4.

Per shower (photon or electron of energy E in a :class:`SamplingCalorimeter`):

1. Photons convert after a depth ``t0 ~ Exp(9/7 X0)``; electrons start at the front face.
2. ``ln T`` and ``ln alpha`` of the gamma-distribution longitudinal profile are drawn with the
   correlated fluctuations of Grindhammer and Peters (:mod:`pointcalo.simulate.gflash`).
3. A thin sensor samples the local energy density: the mean visible energy of sensor ``i`` is
   ``S * E * f(t_i - t0)`` (``t_i`` its depth in X0), so sparser sensors see less.
4. The visible energy is carried by charged-particle crossings of the sensor: their number is
   Poisson distributed (this gives the sampling fluctuations) and each deposits a Landau-like
   (Moyal) energy, or a fraction of it for particles that cross a sub-cell only in part. The
   leading particles (the converted pair, or the electron) add their own crossings near the
   axis in the first ``leading_depth`` X0 after the start, where the gamma profile is still
   small.
5. Each crossing's radius follows the GFlash core and tail radial profile at its relative depth
   ``tau = (t_i - t0) / T``, with part of the core narrower still (Geant4 puts more energy in
   the central millimetre than the two-component form can) and a depth slope of the radii
   (Geant4's early layers are wider, its late ones narrower, than GFlash's); its azimuth is
   uniform. The whole shower is displaced by a random transverse offset of its axis: the
   correlated wandering of the centroid that independent crossings cannot produce.
6. Crossings are summed on the sub-cell lattice of the sensors (0.848 mm in the ILD-like ECAL):
   one point per hit sub-cell ``(E, x, y, layer)``, as in the shared Geant4 sample.

The free constants (:class:`Calibration`) were fitted to the shared Geant4 sample by
``scripts/calibrate_simulator.py``. Vectorised with numpy; showers come in chunks, each with
its own random stream spawned from the seed, so a seed fixes the output.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace

import awkward as ak
import numpy as np

from pointcalo.errors import PointcaloError
from pointcalo.showers import make_showers
from pointcalo.simulate.geometry import SamplingCalorimeter
from pointcalo.simulate.gflash import (
    gamma_density,
    longitudinal_parameters,
    radial_parameters,
    sample_longitudinal,
)

PARTICLES = ("photon", "electron")
MOYAL_CAP = 40.0  # single deposits are capped at this many MPVs (delta rays leave the cell)


@dataclass(frozen=True)
class Calibration:
    """Constants of the simulator not fixed by the GFlash parameterisation.

    Attributes:
        sampling: ``S``, visible MeV per MeV of shower energy per X0 of profile density.
        t_shift: added to each shower's depth of maximum ``T`` (X0) at 50 GeV.
        t_slope: change of that shift per e-fold of energy (X0).
        alpha_scale: multiplies each shower's ``alpha``.
        sigma_scale: multiplies the widths of ``ln T`` and ``ln alpha``.
        core_scale, tail_scale: multiply the core and tail radii.
        core_weight_shift: added to the core weight ``p`` (clipped to [0, 1]).
        narrow_fraction, narrow_scale: fraction of the core crossings whose radius scale is
            ``narrow_scale`` times the core radius.
        leading_depth: depth (X0 after the start) over which the leading particles cross the
            sensors near the axis.
        radial_slope: radii are multiplied by ``1 + radial_slope * (tau - 1)`` (at least 0.2).
        axis_sigma: standard deviation (mm) of each shower's transverse axis offset in x and
            y.
        mip_mpv, mip_width: Moyal location and scale of one crossing's deposit (MeV).
        partial_fraction: fraction of crossings that deposit a uniform fraction of ``mip_mpv``.
    """

    sampling: float = 0.020465
    t_shift: float = 0.30851
    t_slope: float = 0.0448
    alpha_scale: float = 1.0391
    sigma_scale: float = 1.1461
    core_scale: float = 1.8033
    tail_scale: float = 1.3791
    core_weight_shift: float = -0.0009434
    narrow_fraction: float = 0.23234
    narrow_scale: float = 0.084626
    leading_depth: float = 2.4021
    radial_slope: float = -0.15156
    axis_sigma: float = 0.25857
    mip_mpv: float = 0.22652
    mip_width: float = 0.11625
    partial_fraction: float = 0.34656


#: Highest incident energy simulated (MeV): the calibration covers 10-90 GeV and a shower's
#: memory grows with its energy (1 TeV: about 40,000 points).
MAX_ENERGY = 1e6


@dataclass(eq=False)
class ShowerSimulator:
    """Simulate photon or electron showers as point clouds.

    Example::

        sim = ShowerSimulator()
        showers = sim.simulate(1000, energy=(10e3, 90e3), particle="photon", seed=1)
    """

    geometry: SamplingCalorimeter = None  # type: ignore[assignment]
    calibration: Calibration = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        self.geometry = self.geometry or SamplingCalorimeter()
        self.calibration = self.calibration or Calibration()
        self._eff = self.geometry.effective(0)
        self._t_sensor = self.geometry.sensor_depth_x0()
        self._n_side = math.ceil(self.geometry.half_width_mm / self.geometry.pitch_mm)

    # -- per-shower longitudinal development --------------------------------------------------
    def longitudinal(
        self, energy: np.ndarray, particle: str, rng: np.random.Generator
    ) -> dict[str, np.ndarray]:
        """Per shower: start depth ``t0``, ``T``, ``alpha`` and mean visible MeV per layer."""
        if particle not in PARTICLES:
            raise PointcaloError(f"particle must be one of {PARTICLES}, got {particle!r}")
        cal, eff = self.calibration, self._eff
        params = longitudinal_parameters(energy / eff["Ec"], eff["Z"], eff["Fs"], eff["ehat"])
        t_max, alpha = sample_longitudinal(params, rng, cal.sigma_scale)
        t_max = np.maximum(t_max + cal.t_shift + cal.t_slope * np.log(energy / 50e3), 0.5)
        alpha = np.maximum(alpha * cal.alpha_scale, 1.1)
        beta = (alpha - 1) / t_max
        n = len(energy)
        t0 = rng.exponential(9.0 / 7.0, n) if particle == "photon" else np.zeros(n)
        depth = self._t_sensor[None, :] - t0[:, None]
        visible = (
            cal.sampling * energy[:, None] * gamma_density(depth, alpha[:, None], beta[:, None])
        )
        n_leading = 2 if particle == "photon" else 1
        leading = n_leading * ((depth > 0) & (depth < cal.leading_depth))
        return {"t0": t0, "T": t_max, "alpha": alpha, "visible": visible, "leading": leading}

    # -- one chunk of showers ------------------------------------------------------------------
    def _chunk(self, energy: np.ndarray, particle: str, rng: np.random.Generator) -> ak.Array:
        cal, geo, eff = self.calibration, self.geometry, self._eff
        n, n_layers = len(energy), geo.n_layers
        lon = self.longitudinal(energy, particle, rng)
        crossings = rng.poisson(lon["visible"] / self._deposit_moments[0]) + lon["leading"]

        # radial profile parameters per (shower, layer), then one value per crossing
        tau = np.clip((self._t_sensor[None, :] - lon["t0"][:, None]) / lon["T"][:, None], 0, None)
        e_gev = np.broadcast_to(energy[:, None] / 1e3, tau.shape)
        r_core, r_tail, weight = radial_parameters(e_gev, tau, eff["Z"], eff["Fs"], eff["ehat"])
        weight = np.clip(weight + cal.core_weight_shift, 0.0, 1.0)
        depth_scale = np.maximum(1.0 + cal.radial_slope * (tau - 1.0), 0.2)
        r_core, r_tail = r_core * depth_scale, r_tail * depth_scale
        axis = rng.normal(0.0, cal.axis_sigma, (n, 2)).astype(np.float32)
        counts = crossings.ravel()
        cell = np.repeat(np.arange(n * n_layers, dtype=np.int64), counts)  # (shower, layer)
        # one uniform picks the component (narrow core, core, tail) and, rescaled within the
        # component's interval, gives the radius quantile
        u = rng.random(len(cell), dtype=np.float32)
        w = weight.ravel().astype(np.float32)[cell]
        w_narrow = w * np.float32(cal.narrow_fraction)
        component = (u >= w_narrow).astype(np.int64) + (u >= w)
        lo = np.where(component == 0, 0, np.where(component == 1, w_narrow, w))
        hi = np.where(component == 0, w_narrow, np.where(component == 1, w, 1))
        q = np.clip((u - lo) / np.maximum(hi - lo, 1e-6), 0.0, np.float32(0.999999))
        core = cal.core_scale * r_core
        radii = np.stack([cal.narrow_scale * core, core, cal.tail_scale * r_tail], -1).ravel()
        r_mm = (eff["RM"] * radii).astype(np.float32)[3 * cell + component]
        r = np.minimum(r_mm * np.sqrt(q / (1 - q)), np.float32(1e4))
        phi = rng.random(len(cell), dtype=np.float32) * np.float32(2 * math.pi)
        inv_pitch = np.float32(1.0 / geo.pitch_mm)
        shower = cell // n_layers
        ix = np.floor((r * np.cos(phi) + axis[shower, 0]) * inv_pitch).astype(np.int64)
        iy = np.floor((r * np.sin(phi) + axis[shower, 1]) * inv_pitch).astype(np.int64)
        ix += self._n_side
        iy += self._n_side
        side = 2 * self._n_side
        inside = (ix >= 0) & (ix < side) & (iy >= 0) & (iy < side)

        # count crossings per sub-cell by sorting the keys, then draw each point's deposit
        key = (cell[inside] * side + iy[inside]) * side + ix[inside]
        key.sort()
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        uniq = key[starts]
        n_cross = np.diff(np.r_[starts, len(key)])
        energy_pt = self._summed_deposits(n_cross, rng)
        ix_pt = uniq % side
        iy_pt = (uniq // side) % side
        cell_pt = uniq // (side * side)
        shower_pt, layer_pt = np.divmod(cell_pt, n_layers)
        per_shower = np.bincount(shower_pt, minlength=n)
        pitch = geo.pitch_mm
        return make_showers(
            energy.astype(np.float32),
            {
                "E": energy_pt.astype(np.float32),
                "x": ((ix_pt - self._n_side + 0.5) * pitch).astype(np.float32),
                "y": ((iy_pt - self._n_side + 0.5) * pitch).astype(np.float32),
                "layer": layer_pt.astype(np.int32),
            },
            counts=per_shower,
            allow_empty=True,  # below ~100 MeV a shower may leave nothing in the sensors
        )

    def _deposits(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Energy deposits (MeV) of ``n`` single crossings: Moyal, or uniform below the MPV."""
        cal = self.calibration
        z = rng.standard_normal(n, dtype=np.float32)
        moyal = cal.mip_mpv - cal.mip_width * np.log(np.maximum(z * z, np.float32(1e-12)))
        moyal = np.clip(moyal, np.float32(1e-3 * cal.mip_mpv), np.float32(MOYAL_CAP * cal.mip_mpv))
        u = rng.random(n, dtype=np.float32)
        partial = u < cal.partial_fraction
        # reuse u: given partial, u / f is uniform on [0, 1)
        return np.where(
            partial, u / np.float32(max(cal.partial_fraction, 1e-9)) * cal.mip_mpv, moyal
        )

    def _summed_deposits(self, n_cross: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Energy of points hit by ``n_cross`` crossings each: exact single-crossing deposits,
        and for several crossings a gamma variate with the sum's mean and variance."""
        mean, var = self._deposit_moments
        out = np.empty(len(n_cross), dtype=np.float32)
        one = n_cross == 1
        out[one] = self._deposits(int(one.sum()), rng)
        c = n_cross[~one].astype(np.float64)
        shape = c * mean**2 / var
        out[~one] = rng.gamma(shape, var / mean)
        return out

    @functools.cached_property
    def _deposit_moments(self) -> tuple[float, float]:
        """Mean and variance of one crossing's deposit, by a large fixed-seed sample."""
        d = self._deposits(1 << 20, np.random.default_rng(12345)).astype(np.float64)
        return float(d.mean()), float(d.var())

    # -- public API ----------------------------------------------------------------------------
    def iter_simulate(
        self,
        n: int,
        energy: float | tuple[float, float] = (10e3, 90e3),
        particle: str = "photon",
        seed: int = 0,
        chunk_size: int = 64,
    ) -> Iterator[ak.Array]:
        """Yield chunks of showers. ``energy`` in MeV: a value, or ``(low, high)`` uniform.

        Each chunk has its own random stream spawned from ``seed``: the same arguments give the
        same showers.
        """
        if n < 0:
            raise PointcaloError(f"number of showers must be >= 0, got {n}")
        lo, hi = (energy, energy) if np.isscalar(energy) else energy
        if not (0 < lo <= hi) or not math.isfinite(hi):
            raise PointcaloError(f"energy range must be 0 < low <= high MeV, got {energy!r}")
        if hi > MAX_ENERGY:
            raise PointcaloError(
                f"energy: {hi / 1e3:g} GeV is above the simulator's limit of "
                f"{MAX_ENERGY / 1e3:g} GeV (it is calibrated at 10-90 GeV; memory grows with "
                "the energy)"
            )
        if particle not in PARTICLES:
            raise PointcaloError(f"particle must be one of {PARTICLES}, got {particle!r}")
        streams = np.random.SeedSequence(seed).spawn(max(1, -(-n // chunk_size)))
        for i, start in enumerate(range(0, n, chunk_size)):
            rng = np.random.default_rng(streams[i])
            size = min(chunk_size, n - start)
            e = rng.uniform(lo, hi, size) if hi > lo else np.full(size, float(lo))
            yield self._chunk(e, particle, rng)

    def simulate(
        self,
        n: int,
        energy: float | tuple[float, float] = (10e3, 90e3),
        particle: str = "photon",
        seed: int = 0,
        chunk_size: int = 64,
        progress: Callable[[int], None] | None = None,
    ) -> ak.Array:
        """``n`` showers in the data model (see :meth:`iter_simulate`)."""
        chunks, done = [], 0
        for chunk in self.iter_simulate(n, energy, particle, seed, chunk_size):
            chunks.append(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done)
        if not chunks:
            return make_showers(np.zeros(0, np.float32), _empty_points(), counts=[])
        return ak.to_packed(ak.concatenate(chunks)) if len(chunks) > 1 else chunks[0]

    def with_calibration(self, **changes: float) -> ShowerSimulator:
        """A copy with some calibration constants changed."""
        return ShowerSimulator(self.geometry, replace(self.calibration, **changes))

    def describe(self) -> dict:
        """Geometry, effective quantities and calibration, for file attributes and reports."""
        return {
            "geometry": self.geometry.name,
            "effective": self._eff,
            "calibration": asdict(self.calibration),
        }


def _empty_points() -> dict[str, np.ndarray]:
    return {
        "E": np.zeros(0, np.float32),
        "x": np.zeros(0, np.float32),
        "y": np.zeros(0, np.float32),
        "layer": np.zeros(0, np.int32),
    }


def simulate(
    n: int,
    energy: float | tuple[float, float] = (10e3, 90e3),
    particle: str = "photon",
    seed: int = 0,
    **kwargs,
) -> ak.Array:
    """``n`` showers from the default (ILD-like, Geant4-calibrated) simulator."""
    return ShowerSimulator().simulate(n, energy, particle, seed, **kwargs)


def simulate_to_file(
    output: str,
    n: int,
    energy: float | tuple[float, float] = (10e3, 90e3),
    particle: str = "photon",
    seed: int = 0,
    progress: Callable[[int], None] | None = None,
) -> int:
    """``pointcalo simulate``: ``n`` showers of the default simulator written chunk by chunk
    into ``output`` (HDF5 files record the simulator, its calibration and the request);
    energies in MeV, at most :data:`MAX_ENERGY` (the calibration covers 10-90 GeV)."""
    import json

    from pointcalo import io

    top = max(energy if isinstance(energy, tuple) else (energy,))
    if top > MAX_ENERGY:
        raise PointcaloError(
            f"--energy: {top / 1e3:g} GeV is above the simulator's limit of "
            f"{MAX_ENERGY / 1e3:g} GeV (it is calibrated at 10-90 GeV)"
        )
    sim = ShowerSimulator()
    attrs = {
        "particle": particle,
        "seed": seed,
        "energy_MeV": json.dumps(energy),
        "simulation": "pointcalo parametrised simulator (GFlash, calibrated on Geant4)",
        "simulator": json.dumps(sim.describe()),
    }
    options = {"attrs": attrs} if io.format_of(output) == "hdf5" else {}
    with io.open_writer(output, **options) as writer:
        for chunk in sim.iter_simulate(n, energy, particle, seed):
            writer.write(chunk)
            if progress is not None:
                progress(writer.n_showers)
    return writer.n_showers
