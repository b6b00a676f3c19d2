"""Distances between a generated and a reference distribution, each as (value, uncertainty).

- :func:`w1`: Wasserstein-1 of one observable after standardising both samples with the
  reference's mean and standard deviation, reported x100 as in CaloClouds II (Buhmann et al.,
  arXiv 2309.05704); mean and standard deviation over ``k`` disjoint batches.
- :func:`fpd`: Frechet physics distance, the Frechet distance between Gaussian fits of feature
  vectors extrapolated to infinite sample size (Kansal et al., arXiv 2211.10295, as in JetNet:
  features divided by the reference's maximum absolute value, a non-negative linear fit in
  1/N, the intercept's standard error as uncertainty).
- :func:`kpd`: kernel physics distance, the unbiased MMD^2 with the polynomial kernel
  ``(x.y / d + 1)^4`` (same reference and normalisation), the median over batches drawn with
  replacement and half the 16.3-83.7 % inter-quantile range as uncertainty.
- :func:`separation_power`: CaloChallenge's ``1/2 sum (p - q)^2 / (p + q)`` of normalised
  histograms with the reference's binning (Krause et al., arXiv 2410.21611).

Every function takes an explicit ``seed``; the same seed gives the same numbers.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg
from scipy.optimize import curve_fit
from scipy.stats import wasserstein_distance

from pointcalo.errors import PointcaloError

Value = tuple[float, float]


def _batches(n: int, k: int, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """``k`` disjoint random index batches of ``size`` from ``range(n)``."""
    if k * size > n:
        raise PointcaloError(f"need {k * size} showers for {k} batches of {size}, have {n}")
    perm = rng.permutation(n)
    return [perm[i * size : (i + 1) * size] for i in range(k)]


def batch_size(n_ref: int, n_gen: int, k: int, minimum: int = 10) -> int:
    """Largest batch size giving ``k`` disjoint batches of both samples; an error below
    ``minimum`` showers per batch."""
    size = min(n_ref, n_gen) // k
    if size < minimum:
        raise PointcaloError(
            f"too few showers for {k} batches of at least {minimum}: reference has {n_ref}, "
            f"generated {n_gen}; lower the number of batches or bring more showers"
        )
    return size


def _standardise(ref: np.ndarray, ref_w: np.ndarray | None) -> tuple[float, float]:
    mean = float(np.average(ref, weights=ref_w))
    std = float(np.sqrt(np.average((ref - mean) ** 2, weights=ref_w)))
    return mean, std if std > 0 else 1.0


def w1(
    ref: np.ndarray,
    gen: np.ndarray,
    *,
    ref_owner: np.ndarray | None = None,
    gen_owner: np.ndarray | None = None,
    ref_weights: np.ndarray | None = None,
    gen_weights: np.ndarray | None = None,
    n_ref: int | None = None,
    n_gen: int | None = None,
    k: int = 5,
    size: int | None = None,
    seed: int = 0,
) -> Value:
    """Standardised Wasserstein-1 distance x100 as (mean, std) over ``k`` disjoint batches.

    For per-shower observables pass ``ref [N]`` and ``gen [M]``. For values pooled over cells
    or points, also pass ``*_owner`` (the shower of each value) and ``n_ref``/``n_gen``: batches
    are drawn over showers and take all their values. ``*_weights`` weight the values (an
    energy-weighted profile, say). ``size`` is the number of showers per batch (default: as
    many as fit).
    """
    rng = np.random.default_rng(seed)
    ref, gen = np.asarray(ref, np.float64), np.asarray(gen, np.float64)
    n_ref = len(ref) if ref_owner is None else int(n_ref)
    n_gen = len(gen) if gen_owner is None else int(n_gen)
    size = size or batch_size(n_ref, n_gen, k)
    mean, std = _standardise(ref, ref_weights)
    ref_b = _batches(n_ref, k, size, rng)
    gen_b = _batches(n_gen, k, size, rng)
    values = []
    for rb, gb in zip(ref_b, gen_b, strict=True):
        r_sel = _select(rb, ref_owner, n_ref)
        g_sel = _select(gb, gen_owner, n_gen)
        rw = None if ref_weights is None else ref_weights[r_sel]
        gw = None if gen_weights is None else gen_weights[g_sel]
        if (rw is not None and rw.sum() <= 0) or (gw is not None and gw.sum() <= 0):
            raise PointcaloError("a batch has zero total weight; bring more showers")
        values.append(
            100.0
            * wasserstein_distance((ref[r_sel] - mean) / std, (gen[g_sel] - mean) / std, rw, gw)
        )
    return float(np.mean(values)), float(np.std(values))


def _select(showers: np.ndarray, owner: np.ndarray | None, n: int) -> np.ndarray:
    if owner is None:
        return showers
    member = np.zeros(n, bool)
    member[showers] = True
    return np.flatnonzero(member[owner])


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """Frechet distance between two Gaussians: ``|mu1 - mu2|^2 + tr(C1 + C2 - 2 sqrt(C1 C2))``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(cov1 @ cov2)
        if not np.all(np.isfinite(covmean)):  # singular product: offset the diagonals
            eps = 1e-6 * np.eye(len(cov1))
            covmean = linalg.sqrtm((cov1 + eps) @ (cov2 + eps))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1 + cov2 - 2 * covmean))


def fpd(
    ref: np.ndarray,
    gen: np.ndarray,
    *,
    min_samples: int | None = None,
    max_samples: int | None = None,
    num_points: int = 10,
    num_repeats: int = 5,
    seed: int = 0,
) -> Value:
    """Frechet physics distance of feature matrices ``[N, F]`` (scaled by the reference).

    The Frechet distance is measured on random subsets of ``num_points`` sizes between
    ``min_samples`` and ``max_samples``, fit linearly in ``1 / size`` and extrapolated to
    infinite size; the uncertainty is the standard error of the intercept.
    """
    rng = np.random.default_rng(seed)
    ref, gen = _scaled_pair(ref, gen)
    n = min(len(ref), len(gen))
    max_samples = min(max_samples or n, n)
    min_samples = min(min_samples or max(max_samples // 5, 2 * ref.shape[1] + 2), max_samples)
    if max_samples < 2 * ref.shape[1] + 2:
        raise PointcaloError(f"FPD needs more than {2 * ref.shape[1] + 2} showers, have {n}")
    sizes = np.linspace(min_samples, max_samples, num_points).astype(int)
    inv, vals = [], []
    for size in sizes:
        for _ in range(num_repeats):
            r = ref[rng.choice(len(ref), size, replace=False)]
            g = gen[rng.choice(len(gen), size, replace=False)]
            d = frechet_distance(
                r.mean(0), np.cov(r, rowvar=False), g.mean(0), np.cov(g, rowvar=False)
            )
            inv.append(1.0 / size)
            vals.append(d)
    x, y = np.asarray(inv), np.asarray(vals)
    coef, cov = curve_fit(
        lambda t, a, b: a + b * t,
        x,
        y,
        p0=[max(float(y.min()), 0.0), 0.0],
        bounds=([0.0, 0.0], [np.inf, np.inf]),
    )
    return float(coef[0]), float(np.sqrt(max(cov[0, 0], 0.0)))


def _mmd_poly(x: np.ndarray, y: np.ndarray, degree: int = 4) -> float:
    """Unbiased MMD^2 with the kernel ``(x.y / d + 1)^degree``."""
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** degree
    kyy = (y @ y.T / d + 1) ** degree
    kxy = (x @ y.T / d + 1) ** degree
    m, n = len(x), len(y)
    return float(
        (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
        + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
        - 2 * kxy.mean()
    )


def kpd(ref: np.ndarray, gen: np.ndarray, *, k: int = 10, size: int = 1000, seed: int = 0) -> Value:
    """Kernel physics distance: median and half the 16.3-83.7 % spread of the unbiased MMD^2
    over ``k`` batches of ``size`` showers drawn with replacement."""
    rng = np.random.default_rng(seed)
    ref, gen = _scaled_pair(ref, gen)
    size = min(size, len(ref), len(gen))
    if size < 2:
        raise PointcaloError("KPD needs at least 2 showers per sample")
    vals = [
        _mmd_poly(ref[rng.choice(len(ref), size)], gen[rng.choice(len(gen), size)])
        for _ in range(k)
    ]
    lo, hi = np.percentile(vals, [16.275, 83.725])
    return float(np.median(vals)), float((hi - lo) / 2)


def _scaled_pair(ref: np.ndarray, gen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both feature matrices divided by the reference's maximum absolute value per feature."""
    ref, gen = np.asarray(ref, np.float64), np.asarray(gen, np.float64)
    if ref.ndim != 2 or gen.ndim != 2 or ref.shape[1] != gen.shape[1]:
        raise PointcaloError(f"feature matrices must be [N, F] alike: {ref.shape} vs {gen.shape}")
    scale = np.abs(ref).max(0)
    scale = np.where(scale > 0, scale, 1.0)
    return ref / scale, gen / scale


def separation_power(
    ref: np.ndarray,
    gen: np.ndarray,
    *,
    bins: int = 30,
    k: int = 5,
    size: int | None = None,
    seed: int = 0,
) -> Value:
    """``1/2 sum_i (p_i - q_i)^2 / (p_i + q_i)`` of normalised histograms (0: identical,
    1: disjoint); ``bins`` bins over the reference's 0.5-99.5 % range plus an underflow and an
    overflow bin, so no value is lost; mean and std over ``k`` batches of ``size`` (default:
    the largest that fits) showers."""
    rng = np.random.default_rng(seed)
    ref, gen = np.asarray(ref, np.float64), np.asarray(gen, np.float64)
    lo, hi = np.percentile(ref, [0.5, 99.5])
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.concatenate([[-np.inf], np.linspace(lo, hi, bins + 1), [np.inf]])
    size = size or batch_size(len(ref), len(gen), k)
    vals = []
    for rb, gb in zip(
        _batches(len(ref), k, size, rng), _batches(len(gen), k, size, rng), strict=True
    ):
        p = np.histogram(ref[rb], edges)[0] / size
        q = np.histogram(gen[gb], edges)[0] / size
        both = (p + q) > 0
        vals.append(0.5 * float(np.sum((p[both] - q[both]) ** 2 / (p[both] + q[both]))))
    return float(np.mean(vals)), float(np.std(vals))
