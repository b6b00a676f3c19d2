"""Comparison plots of generated against reference observables (PNG, written atomically)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pointcalo.metrics.observables import PROFILES, SCALARS, Observables
from pointcalo.plots import pyplot as _pyplot
from pointcalo.plots import save_png as _save

#: The ratio panel's range; ratios outside it are marked at its edge.
RATIO_RANGE = (0.5, 1.5)


def _ratio_axes(plt, title: str, labels: tuple[str, str] = ("reference", "generated")):
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(5.5, 5), sharex=True, gridspec_kw={"height_ratios": [3, 1], "hspace": 0.05}
    )
    top.set_title(title)
    bottom.axhline(1.0, color="k", lw=0.8)
    bottom.set_ylim(*RATIO_RANGE)
    bottom.set_ylabel(f"{_short(labels[1])} / {_short(labels[0])}", fontsize=8)
    return fig, top, bottom


def _short(label: str) -> str:
    return Path(label).stem if label.endswith((".h5", ".hdf5", ".root")) else label


def _mark_clipped(ax, x: np.ndarray, ratio: np.ndarray, color: str = "C1") -> None:
    """Triangles at the ratio panel's edge where the ratio lies beyond it."""
    lo, hi = RATIO_RANGE
    pad = 0.04 * (hi - lo)
    up, down = ratio > hi, ratio < lo
    ax.plot(x[up], np.full(up.sum(), hi - pad), "^", color=color, ms=5, clip_on=False)
    ax.plot(x[down], np.full(down.sum(), lo + pad), "v", color=color, ms=5, clip_on=False)


def histogram_with_ratio(
    ref: np.ndarray,
    gen: np.ndarray,
    label: str,
    path: str | os.PathLike[str],
    *,
    bins: int = 40,
    log_x: bool = False,
    labels: tuple[str, str] = ("reference", "generated"),
    weights: tuple[np.ndarray | None, np.ndarray | None] = (None, None),
) -> Path:
    """Normalised histograms of ``ref`` and ``gen`` (optionally weighted) with Poisson error
    bands and a ratio panel."""
    plt = _pyplot()
    ref, gen = np.asarray(ref, np.float64), np.asarray(gen, np.float64)
    w_ref, w_gen = (
        np.ones(len(x)) if w is None else np.asarray(w, np.float64)
        for x, w in zip((ref, gen), weights, strict=True)
    )
    if log_x:
        ref, w_ref, gen, w_gen = ref[ref > 0], w_ref[ref > 0], gen[gen > 0], w_gen[gen > 0]
        lo, hi = np.percentile(ref, [0.1, 99.9]) if ref.size else (1e-3, 1.0)
        edges = np.geomspace(max(lo, 1e-6), max(hi, lo * 10), bins + 1)
    else:
        lo, hi = np.percentile(np.concatenate([ref, gen]), [0.5, 99.5])
        edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
    fig, top, bottom = _ratio_axes(plt, label, labels)
    dens = []
    for data, w, name, color in ((ref, w_ref, labels[0], "0.3"), (gen, w_gen, labels[1], "C1")):
        counts, _ = np.histogram(data, edges, weights=w)
        var, _ = np.histogram(data, edges, weights=w**2)
        norm = max(counts.sum(), 1) * np.diff(edges)
        d, err = counts / norm, np.sqrt(var) / norm
        dens.append((d, err))
        top.stairs(d, edges, color=color, label=f"{_short(name)} ({len(data)})", lw=1.5)
        top.fill_between(edges[:-1], d - err, d + err, step="post", color=color, alpha=0.25)
    (dr, er), (dg, eg) = dens
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(dr > 0, dg / dr, np.nan)
        rerr = np.abs(ratio) * np.sqrt(
            (eg / np.where(dg > 0, dg, 1)) ** 2 + (er / np.where(dr > 0, dr, 1)) ** 2
        )
    bottom.stairs(ratio, edges, color="C1")
    bottom.fill_between(edges[:-1], ratio - rerr, ratio + rerr, step="post", color="C1", alpha=0.25)
    _mark_clipped(bottom, 0.5 * (edges[1:] + edges[:-1]), ratio)
    top.set_ylabel("normalised")
    top.legend(frameon=False, fontsize=8)
    if log_x:
        top.set_xscale("log")
        top.set_yscale("log")
    bottom.set_xlabel(label)
    return _save(fig, Path(path))


def profile_with_ratio(
    ref: np.ndarray,
    gen: np.ndarray,
    x: np.ndarray,
    xlabel: str,
    ylabel: str,
    path: str | os.PathLike[str],
    *,
    log_y: bool = True,
    labels: tuple[str, str] = ("reference", "generated"),
) -> Path:
    """Mean profiles ``[N, K] -> [K]`` with standard errors and their ratio."""
    plt = _pyplot()
    fig, top, bottom = _ratio_axes(plt, f"mean {ylabel} vs {xlabel}", labels)
    means = []
    for data, name, color in ((ref, _short(labels[0]), "0.3"), (gen, _short(labels[1]), "C1")):
        m = data.mean(0)
        e = data.std(0) / np.sqrt(max(len(data), 1))
        means.append((m, e))
        top.errorbar(x, m, yerr=e, fmt="o-", ms=3, color=color, label=name)
    (mr, er), (mg, eg) = means
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(mr > 0, mg / mr, np.nan)
        rerr = np.abs(ratio) * np.sqrt(
            (eg / np.where(mg > 0, mg, 1)) ** 2 + (er / np.where(mr > 0, mr, 1)) ** 2
        )
    bottom.errorbar(x, ratio, yerr=rerr, fmt="o", ms=3, color="C1")
    _mark_clipped(bottom, np.asarray(x, np.float64), ratio)
    top.set_ylabel(ylabel)
    if log_y:
        top.set_yscale("log")
    top.legend(frameon=False, fontsize=8)
    bottom.set_xlabel(xlabel)
    return _save(fig, Path(path))


def mean_images(ref: Observables, gen: Observables, path: str | os.PathLike[str]) -> Path:
    """Mean shower image (log10 MeV) in up to six layers, reference above generated."""
    plt = _pyplot()
    grid = ref.grid
    layer_e = ref.profiles["layer_energy"].mean(0)
    layers = [int(i) for i in np.argsort(layer_e)[::-1][:6]]
    layers.sort()
    fig, ax = plt.subplots(2, len(layers), figsize=(2.4 * len(layers), 5), squeeze=False)
    lo, hi = grid.layer_offset[:-1], grid.layer_offset[1:]
    for j, layer in enumerate(layers):
        for i, (obs, name) in enumerate(((ref, "reference"), (gen, "generated"))):
            img = obs.mean_image[lo[layer] : hi[layer]].reshape(grid.layer_shape(layer))
            ax[i, j].imshow(np.log10(img + 1e-4), origin="lower", aspect="auto", vmin=-4)
            ax[i, j].set_title(f"{name}, layer {layer}", fontsize=8)
            ax[i, j].set_xticks([])
            ax[i, j].set_yticks([])
    fig.suptitle(f"mean shower image on {grid.name} (log10 MeV)")
    fig.tight_layout()
    return _save(fig, Path(path))


def all_plots(
    ref: Observables,
    gen: Observables,
    out: Path,
    labels: tuple[str, str] = ("reference", "generated"),
) -> list[str]:
    """Every comparison plot into ``out`` (legends and ratios named by ``labels``, e.g.
    Geant4 and the model); returns the file names."""
    names = []
    for key, label in SCALARS.items():
        if key in ref.scalars and key in gen.scalars:
            names.append(
                histogram_with_ratio(
                    ref.scalars[key],
                    gen.scalars[key],
                    label,
                    out / f"hist_{key}.png",
                    labels=labels,
                ).name
            )
    for key, label in (
        ("cell_energy", "cell energy [MeV]"),
        ("point_energy", "point energy [MeV]"),
        ("nn_distance", "distance to the nearest point of the layer [mm]"),
    ):
        if key in ref.pooled and key in gen.pooled:
            names.append(
                histogram_with_ratio(
                    ref.pooled[key].values,
                    gen.pooled[key].values,
                    label,
                    out / f"hist_{key}.png",
                    log_x=key != "nn_distance",
                    weights=(ref.pooled[key].weights, gen.pooled[key].weights),
                    labels=labels,
                ).name
            )
    centres = 0.5 * (ref.radial_edges[1:] + ref.radial_edges[:-1])
    for key, (xlabel, ylabel) in PROFILES.items():
        x = centres if key == "radial_energy" else np.arange(ref.profiles[key].shape[1])
        names.append(
            profile_with_ratio(
                ref.profiles[key],
                gen.profiles[key],
                x,
                xlabel,
                ylabel,
                out / f"profile_{key}.png",
                log_y=key in ("layer_energy", "layer_hits", "radial_energy"),
                labels=labels,
            ).name
        )
    if "pair_correlation" in ref.profiles and "pair_correlation" in gen.profiles:
        from pointcalo.metrics.point_structure import PAIR_CENTRES_LOG10

        names.append(
            profile_with_ratio(
                ref.profiles["pair_correlation"],
                gen.profiles["pair_correlation"],
                PAIR_CENTRES_LOG10,
                "log10 distance between two points of a layer [mm]",
                "share of sum E_i E_j",
                out / "profile_pair_correlation.png",
                log_y=True,
                labels=labels,
            ).name
        )
    names.append(mean_images(ref, gen, out / "mean_images.png").name)
    return names


def memorisation_plot(memo: dict, path: str | os.PathLike[str]) -> Path:
    """Distances to the nearest training shower: generated against reference (test)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    d_gen, d_test = memo["d_gen"], memo["d_test"]
    hi = float(np.percentile(np.concatenate([d_gen, d_test]), 99))
    edges = np.linspace(0, max(hi, 1e-6), 41)
    ax.hist(d_test, edges, histtype="step", density=True, label="reference (unseen)", color="k")
    ax.hist(d_gen, edges, histtype="step", density=True, label="generated", color="C1")
    ax.set_xlabel("distance to the nearest training shower (standardised features)")
    ax.set_ylabel("density")
    ax.set_title(
        f"median ratio {memo['median_ratio']:.2f}; closer than any reference: "
        f"{100 * memo['fraction_closer']:.1f} %"
    )
    ax.legend()
    return _save(fig, Path(path))


def response_plot(
    ref: Observables,
    samples: dict[str, Observables],
    path: str | os.PathLike[str],
    reference: str = "reference",
    bins: int = 8,
) -> Path:
    """Response (mean E_vis / E_inc) and resolution (its standard deviation over its mean)
    against the incident energy, in ``bins`` bins of the reference's energy range, for the
    reference (black) and every sample; error bars are the statistical errors of each bin."""
    plt = _pyplot()
    e = ref.incident_energy / 1e3
    edges = np.linspace(e.min(), e.max() + 1e-9, bins + 1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6, 6), sharex=True)
    for i, (label, obs) in enumerate([(reference, ref), *samples.items()]):
        which = np.digitize(obs.incident_energy / 1e3, edges) - 1
        ratio = obs.scalars["e_ratio"]
        mean, err, res, res_err = (np.full(bins, np.nan) for _ in range(4))
        for b in range(bins):
            r = ratio[which == b]
            if len(r) > 2 and r.mean() > 0:
                mean[b], err[b] = r.mean(), r.std(ddof=1) / np.sqrt(len(r))
                res[b] = r.std(ddof=1) / r.mean()
                res_err[b] = res[b] / np.sqrt(2 * (len(r) - 1))
        style = {"color": "k", "marker": "o"} if i == 0 else {"marker": ".", "alpha": 0.8}
        top.errorbar(centres, mean, err, label=label, capsize=2, **style)
        bottom.errorbar(centres, res, res_err, capsize=2, **style)
    top.set(ylabel="response: mean E_vis / E_inc", title="response and resolution")
    bottom.set(xlabel="incident energy [GeV]", ylabel="resolution: std / mean of E_vis / E_inc")
    top.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, Path(path))


def amplification_plot(
    name: str, result: dict, n_train: int, path: str | os.PathLike[str], label: str = "generated"
) -> Path:
    """One observable's error against sample size (:mod:`pointcalo.metrics.amplification`):
    Geant4 (expected line; drawn points where a pool was given), the generated sample's
    curve, its plateau and the ``n_eff`` where the Geant4 line meets it."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    curves = result["curves"]
    expected = curves["geant4_expected"]
    sizes = [*curves["generated"]["sizes"]]
    if "geant4" in curves:
        sizes += curves["geant4"]["sizes"]
    n_eff = result["n_eff"]
    top = max(sizes) * 4 if n_eff == "inf" else max(max(sizes), float(n_eff)) * 4
    n = np.geomspace(min(sizes), top, 100)
    a, n_t = expected["a"], expected["n_truth"]
    ax.plot(n, a * (1 / n + 1 / n_t), "k-", lw=1, label="Geant4, expected")
    if "geant4" in curves:
        ax.plot(curves["geant4"]["sizes"], curves["geant4"]["mse"], "ko", ms=4, label="Geant4")
    g = curves["generated"]
    ax.plot(g["sizes"], g["mse"], "o-", color="C1", ms=4, label=_short(label))
    ax.axhline(max(curves["plateau"], 1e-12), color="C1", ls="--", lw=1)
    ax.axvline(n_train, color="C0", ls=":", lw=1, label=f"training showers N = {n_train:,}")
    if n_eff != "inf":
        ax.axvline(float(n_eff), color="C1", ls=":", lw=1)
    factor = result["factor"]
    text = "beyond the truth's resolution" if factor == "inf" else f"x{factor:.2f}"
    lo, hi = result["factor_interval"]
    lo_t = "inf" if lo == "inf" else f"{lo:.2f}"
    hi_t = "inf" if hi == "inf" else f"{hi:.2f}"
    ax.set_title(f"{name}: amplification {text} (16-84 %: {lo_t} - {hi_t})", fontsize=9)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("showers in the sample")
    ax.set_ylabel(f"MSE of {result['bins']} quantile-bin shares")
    ax.legend(fontsize=7)
    return _save(fig, Path(path))


def amplification_layers_plot(
    results: dict[str, dict], path: str | os.PathLike[str], label: str = "generated"
) -> Path:
    """The amplification factor of each per-layer observable (``<profile>_<layer>``) with its
    16-84 % interval; where the upper bound is beyond the truth's resolution, a triangle."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    layers, fac, lo, hi = [], [], [], []
    for name, r in results.items():
        layers.append(int(name.rpartition("_")[2]))
        f, (a, b) = r["factor"], r["factor_interval"]
        fac.append(np.inf if f == "inf" else f)
        lo.append(np.inf if a == "inf" else a)
        hi.append(np.inf if b == "inf" else b)
    layers, fac, lo, hi = map(np.asarray, (layers, fac, lo, hi))
    finite = np.isfinite(fac) & np.isfinite(hi)
    top = float(np.max(hi[finite])) * 2 if finite.any() else 10.0
    f, lo_f, hi_f = fac[finite], lo[finite], hi[finite]
    ax.errorbar(
        layers[finite], f, yerr=[np.clip(f - lo_f, 0, None), np.clip(hi_f - f, 0, None)],
        fmt="o", color="C1", ms=4, label=_short(label),
    )  # fmt: skip
    up = ~finite
    ax.plot(layers[up], np.full(up.sum(), top), "^", color="C1", ms=6)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_ylabel("amplification n_eff / N (layer energy)")
    ax.set_title(
        "per-layer energy; triangles: upper bound beyond what the truth resolves", fontsize=9
    )
    ax.legend(fontsize=7)
    return _save(fig, Path(path))
