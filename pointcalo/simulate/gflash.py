"""The Grindhammer-Peters parameterisation of electromagnetic showers (GFlash).

G. Grindhammer, S. Peters, "The parameterized simulation of electromagnetic showers in
homogeneous and sampling calorimeters", hep-ex/0001020; parameter values as in Geant4's
GVFlashHomoShowerTuning and GFlashSamplingShowerTuning. All functions are vectorised over
showers. ``y = E / E_c``; depths ``t`` in radiation lengths; radii in Moliere radii.

Longitudinal: ``dE/dt = E f(t)`` with the gamma density ``f(t) = beta (beta t)^(alpha - 1)
exp(-beta t) / Gamma(alpha)``, ``T = (alpha - 1) / beta`` the depth of the maximum. ``ln T``
and ``ln alpha`` are correlated normal variables per shower.

Radial: ``f(r) = p f_C(r) + (1 - p) f_T(r)`` with ``f_i(r) = 2 r R_i^2 / (r^2 + R_i^2)^2``;
``R_C``, ``R_T`` and ``p`` depend on ``tau = t / T``.
"""

from __future__ import annotations

import numpy as np


def longitudinal_parameters(
    y: np.ndarray, Z: float, Fs: float, ehat: float
) -> dict[str, np.ndarray]:
    """Means, widths and correlation of ``ln T`` and ``ln alpha`` in a sampling calorimeter."""
    lny = np.log(y)
    t_hom = np.maximum(lny - 0.812, 0.1)  # exp(<ln T_hom>)
    a_hom = np.maximum(0.81 + (0.458 + 2.26 / Z) * lny, 0.1)  # exp(<ln alpha_hom>)
    mean_ln_t = np.log(np.maximum(t_hom - 0.55 / Fs - 0.69 * (1 - ehat), 0.1))
    mean_ln_a = np.log(np.maximum(a_hom - 0.476 / Fs, 1.05))
    sig_ln_t = np.minimum(0.5, 1.0 / (-2.5 + 1.25 * lny))
    sig_ln_a = np.minimum(0.5, 1.0 / (-0.82 + 0.79 * lny))
    rho = 0.784 - 0.023 * lny
    return {
        "mean_ln_t": mean_ln_t,
        "mean_ln_a": mean_ln_a,
        "sig_ln_t": sig_ln_t,
        "sig_ln_a": sig_ln_a,
        "rho": rho,
    }


def sample_longitudinal(
    params: dict[str, np.ndarray], rng: np.random.Generator, sigma_scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Per-shower ``T`` (X0) and ``alpha`` with the correlated fluctuations of GFlash."""
    n = len(params["mean_ln_t"])
    z1, z2 = rng.standard_normal(n), rng.standard_normal(n)
    c1 = np.sqrt((1 + params["rho"]) / 2)
    c2 = np.sqrt((1 - params["rho"]) / 2)
    ln_t = params["mean_ln_t"] + sigma_scale * params["sig_ln_t"] * (c1 * z1 + c2 * z2)
    ln_a = params["mean_ln_a"] + sigma_scale * params["sig_ln_a"] * (c1 * z1 - c2 * z2)
    return np.maximum(np.exp(ln_t), 0.5), np.maximum(np.exp(ln_a), 1.1)


def gamma_density(t: np.ndarray, alpha: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """``beta (beta t)^(alpha - 1) exp(-beta t) / Gamma(alpha)`` (0 for ``t <= 0``)."""
    from scipy.special import gammaln

    bt = np.maximum(beta * t, 1e-300)
    log_f = np.log(beta) + (alpha - 1) * np.log(bt) - bt - gammaln(alpha)
    return np.where(t > 0, np.exp(log_f), 0.0)


def radial_parameters(
    energy_gev: np.ndarray, tau: np.ndarray, Z: float, Fs: float, ehat: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Core radius, tail radius (Moliere radii) and core weight at relative depth ``tau``."""
    ln_e = np.log(energy_gev)
    r_core = 0.0251 + 0.00319 * ln_e + (0.1162 - 0.000381 * Z) * tau
    k1 = 0.659 - 0.00309 * Z
    k4 = 0.3585 + 0.0412 * ln_e
    r_tail = k1 * (np.exp(-2.59 * (tau - 0.645)) + np.exp(k4 * (tau - 0.645)))
    p1, p2 = 2.632 - 0.00094 * Z, 0.401 + 0.00187 * Z
    p3 = 1.313 - 0.0686 * ln_e
    u = (p2 - tau) / p3
    weight = p1 * np.exp(u - np.exp(u))
    # sampling-calorimeter corrections
    r_core = r_core - 0.0203 * (1 - ehat) + 0.0397 / Fs * np.exp(-tau)
    r_tail = r_tail - 0.14 * (1 - ehat) - 0.495 / Fs * np.exp(-tau)
    weight = weight + (1 - ehat) * (0.348 - 0.642 / Fs * np.exp(-((tau - 1) ** 2)))
    return np.maximum(r_core, 1e-3), np.maximum(r_tail, 1e-3), np.clip(weight, 0.0, 1.0)
