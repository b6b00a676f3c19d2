"""Overview plots of a set of showers (PNG), used by ``pointcalo demo`` and notebooks."""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np

from pointcalo.io.atomic import atomic_path
from pointcalo.showers import flatten, segment_sum


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend (the one set of plot helpers:
    this and :func:`save_png`, used by every plot of pointcalo)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | os.PathLike[str], dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG atomically (temporary file, then rename) and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    pyplot().close(fig)
    return Path(path)


def layer_energy(showers: ak.Array, n_layers: int | None = None) -> np.ndarray:
    """Energy per layer per shower in MeV, ``[N, n_layers]``."""
    flat = flatten(showers)
    layers = flat.points["layer"].astype(np.int64)
    n_layers = n_layers or (int(layers.max()) + 1 if layers.size else 0)
    shower = np.repeat(np.arange(flat.n_showers), flat.counts)
    flat_index = shower * n_layers + layers
    out = np.bincount(flat_index, weights=flat.points["E"], minlength=flat.n_showers * n_layers)
    return out.reshape(flat.n_showers, n_layers)


def plot_overview(showers: ak.Array, path: str | os.PathLike[str], title: str = "") -> Path:
    """Four panels: points per shower, E_vis/E_inc, mean longitudinal profile, one shower.

    Written atomically as PNG; returns the path.
    """
    plt = pyplot()
    flat = flatten(showers)
    inc = flat.fields["incident_energy"].astype(np.float64)
    evis = segment_sum(flat.points["E"].astype(np.float64), flat.offsets)
    fig, ax = plt.subplots(2, 2, figsize=(10, 8))
    ax[0, 0].hist(flat.counts, bins=40, histtype="step", color="k")
    ax[0, 0].set(xlabel="points per shower", ylabel="showers")
    ax[0, 1].hist(evis / inc, bins=40, histtype="step", color="k")
    ax[0, 1].set(xlabel=r"$E_\mathrm{vis}/E_\mathrm{inc}$", ylabel="showers")
    profile = layer_energy(showers)
    mean = profile.mean(axis=0)
    err = profile.std(axis=0) / np.sqrt(max(len(profile), 1))
    layers = np.arange(len(mean))
    ax[1, 0].errorbar(layers, mean, yerr=err, fmt="o", ms=3, color="k")
    ax[1, 0].set(xlabel="layer", ylabel="mean energy per layer [MeV]", yscale="log")
    i = int(np.argmax(inc))
    sl = slice(flat.offsets[i], flat.offsets[i + 1])
    sc = ax[1, 1].scatter(
        flat.points["layer"][sl],
        flat.points["x"][sl],
        s=2,
        c=np.log10(flat.points["E"][sl] + 1e-6),
        cmap="viridis",
    )
    fig.colorbar(sc, ax=ax[1, 1], label=r"$\log_{10}(E/\mathrm{MeV})$")
    ax[1, 1].set(xlabel="layer", ylabel="x [mm]", title=f"shower {i}: {inc[i] / 1e3:.1f} GeV")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_png(fig, path, dpi=110)
