"""Several generated samples against one reference on one table (``pointcalo compare``).

Each sample is evaluated with :func:`pointcalo.metrics.report.evaluate` against the same
reference (same halves, batches and seed, so the floors are shared); the table lists per
sample the classifier AUC, the voxel and point classifiers' AUCs (if asked for), every W1 as a
multiple of its floor, the CaloChallenge separation power of every observable (the table
shows the largest; arXiv 2410.21611, sec. 4), FPD, the memorisation ratio (with a training
file) and, where given, the generation speed. Written as markdown, JSON and one summary plot
(W1 / floor per observable, AUC).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from pointcalo.metrics.observables import Observables


def compare_samples(
    reference: Observables,
    samples: dict[str, Observables],
    *,
    train: Observables | None = None,
    k: int = 5,
    seed: int = 0,
    speed: dict[str, float] | None = None,
    out: str | os.PathLike[str] | None = None,
    log=None,
    points: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Metrics of every sample (label -> observables) against ``reference``; ``points``
    (label -> point sample, and ``"reference"``) adds the point classifier's AUC."""
    from pointcalo.metrics.report import evaluate

    rows: dict[str, Any] = {}
    for label, obs in samples.items():
        if log:
            log(f"evaluating {label}")
        pts = (points["reference"], points[label]) if points else None
        m = evaluate(
            reference, obs, k=k, seed=seed, train=train, labels=("reference", label), points=pts
        )
        rows[label] = {
            "classifier_auc": m["classifier_auc"]["generated"],
            "w1_over_floor": {
                name: v["generated"][0] / max(v["floor"][0], 1e-12)
                for name, v in m["w1x100"].items()
            },
            "separation_power": {
                name: v["generated"][0] for name, v in m["separation_power"].items()
            },
            "fpd": m["fpd"]["generated"],
            "memorisation_ratio": m.get("memorisation", {}).get("median_ratio"),
            "showers_per_s": (speed or {}).get(label),
        }
        if "voxel_classifier_auc" in m:
            rows[label]["voxel_classifier_auc"] = m["voxel_classifier_auc"]["generated"]
        if "point_classifier_auc" in m:
            rows[label]["point_classifier_auc"] = m["point_classifier_auc"]["generated"]
            rows[label]["point_classifier_seconds"] = m["point_classifier_auc"]["seconds"]
        floor = m
    result = {
        "n_reference": reference.n_showers,
        "floor": {
            "classifier_auc": floor["classifier_auc"]["floor"],
            "fpd": floor["fpd"]["floor"],
            "separation_power": {
                name: v["floor"][0] for name, v in floor["separation_power"].items()
            },
            **{
                name: floor[name]["floor"]
                for name in ("voxel_classifier_auc", "point_classifier_auc")
                if name in floor
            },
        },
        "samples": rows,
    }
    if out is not None:
        from pointcalo.io.atomic import atomic_path, write_json

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(result, out / "compare.json")
        with atomic_path(out / "compare.md") as tmp:
            tmp.write_text(comparison_table(result) + "\n")
        summary_plot(result, out / "compare.png")
    return result


def comparison_table(result: dict[str, Any]) -> str:
    """Markdown: one row per sample and one for the floor."""
    rows = result["samples"]
    names = list(next(iter(rows.values()))["w1_over_floor"])
    extra = [
        (key, title)
        for key, title in (
            ("voxel_classifier_auc", "voxel AUC"),
            ("point_classifier_auc", "point AUC"),
        )
        if key in result["floor"]
    ]
    head = ["sample", "AUC", *(title for _, title in extra)]
    head += [*(f"{n} W1/floor" for n in names), "worst W1/floor", "worst sep. power"]
    head += ["memo ratio", "showers/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, r in rows.items():
        ratios = r["w1_over_floor"]
        cells = [label, f"{r['classifier_auc'][0]:.3f} ± {r['classifier_auc'][1]:.3f}"]
        for key, _ in extra:
            cells.append(f"{r[key][0]:.3f} ± {r[key][1]:.3f}")
        cells += [f"{ratios[n]:.2f}" for n in names]
        cells.append(f"{max(ratios.values()):.2f}")
        cells.append(_worst(r["separation_power"]))
        memo = r.get("memorisation_ratio")
        cells.append("–" if memo is None else f"{memo:.3f}")
        speed = r.get("showers_per_s")
        cells.append("–" if speed is None else f"{speed:.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    auc = result["floor"]["classifier_auc"]
    floor = ["floor (reference vs reference)", f"{auc[0]:.3f} ± {auc[1]:.3f}"]
    for key, _ in extra:
        floor.append(f"{result['floor'][key][0]:.3f} ± {result['floor'][key][1]:.3f}")
    floor += ["1"] * len(names) + ["1", _worst(result["floor"]["separation_power"]), "1", "–"]
    lines.append("| " + " | ".join(floor) + " |")
    return "\n".join(lines)


def _worst(sep: dict[str, float]) -> str:
    """The largest separation power and its observable, e.g. ``0.012 (radial)``."""
    name = max(sep, key=sep.get)
    return f"{sep[name]:.3g} ({name})"


def summary_plot(result: dict[str, Any], path: Path) -> Path:
    """W1 / floor per observable for every sample (log scale), AUC in the legend."""
    from pointcalo.plots import pyplot, save_png

    plt = pyplot()
    rows = result["samples"]
    names = list(next(iter(rows.values()))["w1_over_floor"])
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / max(len(rows), 1)
    for i, (label, r) in enumerate(rows.items()):
        vals = [max(r["w1_over_floor"][n], 1e-2) for n in names]
        ax.bar(
            np.arange(len(names)) + i * width,
            vals,
            width,
            label=f"{label} (AUC {r['classifier_auc'][0]:.2f})",
        )
    ax.axhline(1, color="k", lw=1)
    ax.axhline(3, color="k", ls="--", lw=1)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=30, ha="right")
    ax.set_ylabel("W1 / floor")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, path, dpi=110)
