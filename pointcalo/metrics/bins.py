"""Fidelity per bin of a condition: the comparison of :func:`.compare.compare_views` repeated
on the showers of each bin of a per-shower field (``theta`` of angled showers, the particle,
the incident energy), so a model that is good on average but poor at large angles shows it.
``pointcalo compare --by theta=0,0.26,0.52,0.79``."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from pointcalo.errors import PointcaloError
from pointcalo.metrics.observables import Observables


def parse_by(text: str) -> tuple[str, list[float]]:
    """``--by NAME=e0,e1,...``: a per-shower field and at least two increasing bin edges (in
    the field's stored unit: MeV for ``incident_energy``, rad for angles)."""
    name, _, edges = text.partition("=")
    try:
        values = [float(v) for v in edges.split(",")]
    except ValueError:
        values = []
    if not name or len(values) < 2 or any(b <= a for a, b in itertools.pairwise(values)):
        raise PointcaloError(f"--by: expected NAME=e0,e1,... with increasing edges, got {text!r}")
    return name, values


def field_values(path: str, name: str, max_showers: int | None = None) -> np.ndarray:
    """Per-shower values of field ``name`` of a shower file (one-line error when absent), of
    the showers an evaluation with ``max_showers`` keeps (:func:`kept_showers`)."""
    from pointcalo import io
    from pointcalo.metrics.observables import kept_showers

    values = io.read_fields(path, [name], "--by")[name]
    kept = kept_showers(len(values), max_showers)
    return values if kept is None else values[kept]


def compare_by_bins(
    views: dict[str, tuple[Observables, dict[str, Observables]]],
    values: dict[str, np.ndarray],
    name: str,
    edges: list[float],
    *,
    k: int = 5,
    seed: int = 0,
    log=None,
    reference_label: str = "the reference",
) -> dict[str, Any]:
    """For each bin ``[lo, hi)`` of field ``name`` (the last bin includes ``hi``), the
    comparison of every sample against the reference on every view, restricted to the
    showers in the bin (``values``: ``"reference"`` and each label -> the field per shower).
    Bins with fewer than ``2 k`` reference or sample showers are reported as too small."""
    from pointcalo.metrics.compare import compare_views

    bins = []
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        last = i == len(edges) - 2

        def inside(v: np.ndarray, lo=lo, hi=hi, last=last) -> np.ndarray:
            return np.flatnonzero((v >= lo) & ((v <= hi) if last else (v < hi)))

        ref_idx = inside(values["reference"])
        entry: dict[str, Any] = {"range": [lo, hi], "n_reference": len(ref_idx)}
        sub = {}
        for view, (ref, samples) in views.items():
            kept = {lab: o.subset(inside(values[lab])) for lab, o in samples.items()}
            kept = {lab: o for lab, o in kept.items() if o.n_showers >= 20 * k}
            if len(ref_idx) >= 20 * k and kept:
                sub[view] = (ref.subset(ref_idx), kept)
        if not sub:
            entry["too_small"] = True
            bins.append(entry)
            continue
        if log is not None:
            log(f"{name} in [{lo:g}, {hi:g}]: {len(ref_idx)} reference showers")
        r = compare_views(sub, k=k, seed=seed, log=log, reference_label=reference_label)
        entry["headline"] = {
            lab: {"auc": h["classifier_auc_worst"], "view": h["worst_view"]}
            for lab, h in r["headline"].items()
        }
        worst_floor = max((f["classifier_auc"] for f in r["floor"].values()), key=lambda a: a[0])
        entry["floor"] = worst_floor
        entry["verdicts"] = {lab: v["status"] for lab, v in r["verdicts"].items()}
        bins.append(entry)
    return {"condition": name, "edges": edges, "bins": bins}


def bins_table(by: dict[str, Any]) -> str:
    """Markdown: each sample's worst-view AUC per bin, and the floor."""
    name, bins = by["condition"], by["bins"]
    head = ["sample", *(f"{name} {b['range'][0]:g}-{b['range'][1]:g}" for b in bins)]
    labels = list(dict.fromkeys(lab for b in bins for lab in b.get("headline", {})))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lab in labels:
        cells = [lab]
        for b in bins:
            h = b.get("headline", {}).get(lab)
            cells.append(
                "–"
                if h is None
                else f"{h['auc'][0]:.3f} ± {h['auc'][1]:.3f} ({b['verdicts'][lab]})"
            )
        lines.append("| " + " | ".join(cells) + " |")
    floor = ["floor"] + [
        "too few showers" if b.get("too_small") else f"{b['floor'][0]:.3f} ± {b['floor'][1]:.3f}"
        for b in bins
    ]
    lines.append("| " + " | ".join(floor) + " |")
    lines.append("| reference showers | " + " | ".join(str(b["n_reference"]) for b in bins) + " |")
    return "\n".join(lines)
