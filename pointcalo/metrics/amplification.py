"""How many Geant4 showers a generated sample is worth: statistical amplification.

A generator trained on ``N`` showers can write ``M >> N``, but what it adds is bounded by what
it learnt. Following "GANplification" (Butter, Diefenbacher, Kasieczka, Nachman, Plehn,
arXiv:2008.06545) and "Calomplification" (Bieringer et al., arXiv:2202.07352), one observable
at a time:

- ``K`` quantile bins of the truth ``T`` (Geant4 showers the model never saw; ``p_b`` the
  share of ``T`` in bin ``b``, about ``1/K``);
- the error of a sample ``X`` of ``m`` showers is the mean squared difference of its bin
  shares from the truth's, ``MSE(X) = (1/K) sum_b (f_X,b - p_b)^2``;
- for ``n`` Geant4 showers (multinomial counts) ``E[MSE] = a (1/n + 1/N_T)``, with
  ``a = (1/K) sum_b p_b (1 - p_b)`` and ``a / N_T`` the truth's own noise, common to every
  sample compared with it;
- a generator whose distribution is off by ``beta^2`` (in the same bins) gives
  ``E[MSE] = beta^2 + a_g / M + a / N_T``: at large ``M`` its error stops falling.

The generated sample is worth the ``n_eff`` Geant4 showers that give the same error as its
plateau: ``a (1/n_eff + 1/N_T) = beta^2 + a / N_T``, so ``n_eff = a / beta^2``, with
``beta^2`` estimated as ``MSE(G) - a_g / M - a / N_T`` (unbiased). The amplification factor is
``n_eff / N``. A plateau at or below the truth's noise means the truth cannot resolve the
model's error: ``n_eff`` is then only bounded from below (reported as infinite, with the
bootstrap's lower percentile as the bound). Uncertainties: bootstrap over truth and generated
showers (both resampled with replacement, bins recomputed).

The curves (error against sample size: Geant4 drawn from a pool of Geant4 showers the truth
does not hold, generated drawn from the generated sample) are what the plots show; the factor
comes from the formulas above, which those curves check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pointcalo.errors import PointcaloError

#: Observables of the default study (scalars of :class:`Observables`, and ``layer_energy``:
#: one observable per layer).
DEFAULT_OBSERVABLES = ("e_ratio", "cog_z", "width", "n_hits", "layer_energy")


def quantile_edges(truth: np.ndarray, bins: int) -> np.ndarray:
    """Inner edges of ``bins`` quantile bins of ``truth`` (repeated edges, from ties in
    discrete observables, merged: fewer, unequal bins)."""
    q = np.quantile(truth, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return np.unique(q)


def shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each bin cut by the inner ``edges`` (``[len(edges) + 1]``)."""
    idx = np.searchsorted(edges, values, side="right")
    return np.bincount(idx, minlength=len(edges) + 1) / max(len(values), 1)


def mse(values: np.ndarray, edges: np.ndarray, truth_shares: np.ndarray) -> float:
    """Mean over bins of the squared difference of bin shares from the truth's."""
    return float(np.mean((shares(values, edges) - truth_shares) ** 2))


def _plateau(
    truth: np.ndarray, gen: np.ndarray, bins: int, noise_terms: int = 1
) -> tuple[float, float]:
    """``(beta^2, a)``: the generated distribution's squared bin error beyond sampling noise,
    and the Geant4 noise coefficient ``a``, for one truth and one generated sample.
    ``noise_terms=2`` for a bootstrap resample: resampling adds the samples' noise once more
    (the bootstrap's "true" distributions are the samples themselves, noise included)."""
    edges = quantile_edges(truth, bins)
    p = shares(truth, edges)
    f = shares(gen, edges)
    k = len(p)
    a = float(np.sum(p * (1 - p)) / k)
    a_g = float(np.sum(f * (1 - f)) / k)
    beta2 = float(np.mean((f - p) ** 2)) - noise_terms * (a_g / len(gen) + a / len(truth))
    return beta2, a


@dataclass(frozen=True)
class Amplification:
    """One observable's result: ``n_eff`` Geant4 showers the generated sample is worth
    (``inf``: its error is below what the truth resolves), its bootstrap 16/84 % interval,
    ``factor = n_eff / n_train`` likewise, and the curves (sizes, mean MSE) behind the plot."""

    n_eff: float
    n_eff_interval: tuple[float, float]
    factor: float
    factor_interval: tuple[float, float]
    bins: int
    curves: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        def num(v: float) -> float | str:
            return "inf" if not np.isfinite(v) else float(v)

        return {
            "n_eff": num(self.n_eff),
            "n_eff_interval": [num(v) for v in self.n_eff_interval],
            "factor": num(self.factor),
            "factor_interval": [num(v) for v in self.factor_interval],
            "bins": self.bins,
            "curves": self.curves,
        }


def _n_eff(beta2: float, a: float) -> float:
    return a / beta2 if beta2 > 0 else np.inf


def error_curve(
    values: np.ndarray,
    truth: np.ndarray,
    bins: int,
    sizes: np.ndarray,
    repeats: int,
    rng: np.random.Generator,
) -> list[float]:
    """Mean MSE against ``truth`` of ``repeats`` draws (without replacement) of each size."""
    edges = quantile_edges(truth, bins)
    p = shares(truth, edges)
    return [
        float(np.mean([mse(rng.choice(values, int(m), replace=False), edges, p)
                       for _ in range(repeats)]))
        for m in sizes
    ]  # fmt: skip


def amplification(
    truth: np.ndarray,
    generated: np.ndarray,
    n_train: int,
    *,
    pool: np.ndarray | None = None,
    bins: int = 20,
    boots: int = 100,
    repeats: int = 10,
    seed: int = 0,
) -> Amplification:
    """The amplification of one observable (module docstring): ``truth`` ``[N_T]`` Geant4
    values the model never saw, ``generated`` ``[M]``, ``n_train`` the showers it was trained
    on; ``pool`` ``[P]``: other Geant4 values for the plot's Geant4 curve (optional)."""
    truth = np.asarray(truth, np.float64)
    generated = np.asarray(generated, np.float64)
    for name, v in (("truth", truth), ("generated", generated)):
        if len(v) < 2 * bins:
            raise PointcaloError(f"amplify: {name} has {len(v)} showers, {2 * bins} needed")
        if not np.all(np.isfinite(v)):
            raise PointcaloError(f"amplify: {name} holds non-finite values")
    if n_train < 1:
        raise PointcaloError(f"amplify: --n-train must be >= 1, got {n_train}")
    rng = np.random.default_rng(seed)
    beta2, a = _plateau(truth, generated, bins)
    theta = beta2 / a  # 1 / n_eff: finite (and possibly negative) where n_eff is not
    boot = []
    for _ in range(boots):
        t = rng.choice(truth, len(truth))
        g = rng.choice(generated, len(generated))
        b2, a_b = _plateau(t, g, bins, noise_terms=2)
        boot.append(b2 / a_b)
    hi_theta, lo_theta = np.percentile(boot, [84, 16]) if boots else (theta, theta)
    interval = (
        1 / hi_theta if hi_theta > 0 else np.inf,
        1 / lo_theta if lo_theta > 0 else np.inf,
    )
    n_eff = _n_eff(beta2, a)
    sizes_g = np.unique(np.geomspace(2 * bins, len(generated), 8).astype(int))
    curves: dict[str, Any] = {
        "generated": {
            "sizes": sizes_g.tolist(),
            "mse": error_curve(generated, truth, bins, sizes_g, repeats, rng),
        },
        "geant4_expected": {"a": a, "n_truth": len(truth)},
        "plateau": beta2 + a / len(truth),
    }
    if pool is not None and len(pool) >= 4 * bins:
        pool = np.asarray(pool, np.float64)
        sizes_p = np.unique(np.geomspace(2 * bins, len(pool) // 2, 8).astype(int))
        curves["geant4"] = {
            "sizes": sizes_p.tolist(),
            "mse": error_curve(pool, truth, bins, sizes_p, repeats, rng),
        }
    return Amplification(
        n_eff,
        interval,
        n_eff / n_train,
        (interval[0] / n_train, interval[1] / n_train),
        bins,
        curves,
    )


def observable_values(obs: Any, names: list[str] | tuple[str, ...]) -> dict[str, np.ndarray]:
    """Per-shower values of each observable ``name`` of :class:`Observables` ``obs``: a scalar
    (``e_ratio``, ``cog_z``, ``width``, ``n_hits``, ...) or ``layer_energy`` (one observable
    per layer, ``layer_energy_<i>``, for the layers where the truth has energy)."""
    out = {}
    for name in names:
        if name in obs.scalars:
            out[name] = obs.scalars[name]
        elif name in obs.profiles and name.startswith("layer_"):
            for i in range(obs.profiles[name].shape[1]):
                out[f"{name}_{i}"] = obs.profiles[name][:, i]
        else:
            known = sorted(obs.scalars) + [p for p in obs.profiles if p.startswith("layer_")]
            raise PointcaloError(f"--observables: unknown '{name}'; known: {', '.join(known)}")
    return out


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    """Per scalar observable its factor and interval; per-layer observables (``<profile>_<i>``)
    as the median over layers of each."""

    def val(v):
        return np.inf if v == "inf" else float(v)

    summary: dict[str, Any] = {}
    groups: dict[str, list[dict]] = {}
    for name, r in results.items():
        head, _, tail = name.rpartition("_")
        if name.startswith("layer_") and tail.isdigit():
            groups.setdefault(head, []).append(r)
        else:
            summary[name] = {"factor": r["factor"], "interval": r["factor_interval"]}
    for head, rs in groups.items():
        med = [
            float(np.median([val(x) for x in column]))
            for column in zip(*[(r["factor"], *r["factor_interval"]) for r in rs], strict=True)
        ]
        summary[f"{head} (median of {len(rs)} layers)"] = {
            "factor": "inf" if np.isinf(med[0]) else med[0],
            "interval": ["inf" if np.isinf(v) else v for v in med[1:]],
        }
    return summary


def markdown_report(report: dict[str, Any]) -> str:
    """Markdown of :func:`pointcalo.metrics.files.amplify_files`'s report: the protocol and
    a row per observable."""

    def fmt(v) -> str:
        return "beyond resolution" if v == "inf" else f"{v:.2f}"

    lines = [
        f"# How many Geant4 showers is `{report['generated']}` worth?",
        "",
        f"Model trained on N = {report['n_train']:,} showers; {report['n_generated']:,} "
        f"generated showers against {report['n_truth']:,} Geant4 showers it never saw "
        f"(`{Path(report['truth']).name}`), {report['bins']} quantile bins of the truth, "
        f"{report['bootstrap']} bootstrap resamplings (16-84 %). Amplification = n_eff / N, "
        "n_eff = the Geant4 sample size with the same binned error as the generated sample's "
        "plateau. 'beyond resolution': the generated error is below what this truth resolves.",
        "",
        "| observable | amplification | 16-84 % |",
        "|---|---|---|",
    ]
    for name, s in report["summary"].items():
        lo, hi = s["interval"]
        lines.append(f"| {name} | {fmt(s['factor'])} | {fmt(lo)} - {fmt(hi)} |")
    if report["left_out"]:
        lines += ["", f"Left out (truth mostly empty): {', '.join(report['left_out'])}."]
    return "\n".join(lines)
