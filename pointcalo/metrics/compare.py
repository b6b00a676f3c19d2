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

#: The metrics whose floor the comparison reports (the same for every sample of a view).
FLOOR_KEYS = (
    "classifier_auc",
    "classifier_auc_global",
    "fpd",
    "separation_power",
    "voxel_classifier_auc",
    "point_classifier_auc",
    "classifier_auc_conditioned",
)


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
    floor: dict[str, Any] = {}
    cache: dict = {}  # the reference's floors, computed once for all samples
    for label, obs in samples.items():
        if log:
            log(f"evaluating {label}")
        pts = (points["reference"], points[label]) if points and label in points else None
        m = evaluate(
            reference,
            obs,
            k=k,
            seed=seed,
            train=train,
            labels=("reference", label),
            points=pts,
            floor_cache=cache,
        )
        rows[label] = {
            "classifier_auc": m["classifier_auc"]["generated"],
            "classifier_auc_global": m["classifier_auc_global"]["generated"],
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
        if "classifier_auc_conditioned" in m:
            rows[label]["classifier_auc_conditioned"] = m["classifier_auc_conditioned"]["generated"]
        if "point_classifier_auc" in m:
            rows[label]["point_classifier_auc"] = m["point_classifier_auc"]["generated"]
            rows[label]["point_classifier_seconds"] = m["point_classifier_auc"]["seconds"]
        for name in FLOOR_KEYS:  # shared by every sample; the classifiers' where asked for
            if name in m:
                floor.setdefault(name, m[name])
    result = {
        "n_reference": reference.n_showers,
        "floor": {
            "classifier_auc": floor["classifier_auc"]["floor"],
            "classifier_auc_global": floor["classifier_auc_global"]["floor"],
            "fpd": floor["fpd"]["floor"],
            "separation_power": {
                name: v["floor"][0] for name, v in floor["separation_power"].items()
            },
            **{
                name: floor[name]["floor"]
                for name in (
                    "voxel_classifier_auc",
                    "point_classifier_auc",
                    "classifier_auc_conditioned",
                )
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


#: Grid-free observables of the points, shown on the headline table.
POINT_OBSERVABLES: tuple[tuple[str, str], ...] = (
    ("nn_distance", "nearest-neighbour distance"),
    ("pair_distance", "pair correlation"),
    ("point_energy", "point energy"),
)


def compare_views(
    views: dict[str, tuple[Observables, dict[str, Observables]]],
    *,
    train: Observables | None = None,
    k: int = 5,
    seed: int = 0,
    speed: dict[str, float] | None = None,
    out: str | os.PathLike[str] | None = None,
    log=None,
    points: dict[str, Any] | None = None,
    reference_label: str = "the reference",
) -> dict[str, Any]:
    """Every sample against the reference (called ``reference_label`` in the verdicts,
    :mod:`.verdict`) on several views of the showers (grid alignments
    and grids: view name -> ``(reference observables, label -> sample observables)``), and
    the headline table: per sample the worst view's classifier AUC, the AUC on each view, the
    grid-free point observables' W1 / floor (from the first view, where they are computed),
    the point classifier (first view) and the worst W1 / floor over every view and observable.
    ``train`` (observables on the first view) adds the memorisation ratio."""
    first = next(iter(views))
    per_view: dict[str, Any] = {}
    for view, (ref, samples) in views.items():
        if log:
            log(f"view '{view}': {len(samples)} samples against {ref.n_showers} reference showers")
        per_view[view] = compare_samples(
            ref,
            samples,
            train=train if view == first else None,
            k=k,
            seed=seed,
            speed=speed,
            log=log,
            points=points if view == first else None,
        )
    labels = list(dict.fromkeys(label for _, s in views.values() for label in s))
    headline: dict[str, Any] = {}
    for label in labels:
        rows = {v: r["samples"][label] for v, r in per_view.items() if label in r["samples"]}
        worst_view = max(rows, key=lambda v: rows[v]["classifier_auc"][0])
        w1 = [
            (ratio, v, name) for v, r in rows.items() for name, ratio in r["w1_over_floor"].items()
        ]
        worst_w1 = max(w1) if w1 else (float("nan"), "", "")
        base = rows.get(first, {})
        voxel = [
            (r["voxel_classifier_auc"], v) for v, r in rows.items() if "voxel_classifier_auc" in r
        ]
        headline[label] = {
            "classifier_auc_worst": rows[worst_view]["classifier_auc"],
            "worst_view": worst_view,
            "classifier_auc": {v: r["classifier_auc"] for v, r in rows.items()},
            "point_w1_over_floor": {
                name: base["w1_over_floor"][name]
                for name, _ in POINT_OBSERVABLES
                if name in base.get("w1_over_floor", {})
            },
            "worst_w1_over_floor": {
                "value": worst_w1[0],
                "view": worst_w1[1],
                "observable": worst_w1[2],
            },
            "point_classifier_auc": base.get("point_classifier_auc"),
            "classifier_auc_conditioned": base.get("classifier_auc_conditioned"),
            "voxel_classifier_auc_worst": max(voxel, key=lambda a: a[0][0]) if voxel else None,
            "memorisation_ratio": base.get("memorisation_ratio"),
            "showers_per_s": (speed or {}).get(label),
        }
    result = {
        "views": list(views),
        "n_reference": views[first][0].n_showers,
        "n_reference_in_file": int(
            views[first][0].meta.get("n_showers_in_file", views[first][0].n_showers)
        ),
        "floor": {v: r["floor"] for v, r in per_view.items()},
        "headline": headline,
        "by_view": per_view,
    }
    from pointcalo.metrics.verdict import verdict

    result["verdicts"] = {label: verdict(result, label, reference_label) for label in headline}
    if out is not None:
        from pointcalo.io.atomic import atomic_path, write_json

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        write_json(result, out / "compare.json")
        text = [headline_table(result), "", "## Verdicts", ""]
        text += [f"- {v['text']}" for v in result["verdicts"].values()]
        for view, r in per_view.items():
            text += ["", f"## View '{view}'", "", comparison_table(r)]
        with atomic_path(out / "compare.md") as tmp:
            tmp.write_text("\n".join(text) + "\n")
        headline_plot(result, out / "compare.png")
        from pointcalo.metrics.plots import response_plot

        ref0, samples0 = views[first]
        response_plot(ref0, samples0, out / "response.png", reference=reference_label)
    return result


def headline_table(result: dict[str, Any]) -> str:
    """Markdown: the headline (worst view) figures of every sample, and the floors."""
    views = result["views"]
    head = ["sample", "AUC (worst view)", *(f"AUC {v}" for v in views)]
    has_points = any(h.get("point_classifier_auc") for h in result["headline"].values())
    has_cond = any(h.get("classifier_auc_conditioned") for h in result["headline"].values())
    has_voxels = any(h.get("voxel_classifier_auc_worst") for h in result["headline"].values())
    if has_voxels:
        head.append("voxel AUC (worst view)")
    if has_points:
        head.append("point AUC")
    if has_cond:
        head.append("AUC with conditions (first view)")
    head += [f"{title} W1/floor" for _, title in POINT_OBSERVABLES]
    head += ["worst W1/floor (view, observable)", "memo ratio", "showers/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, h in result["headline"].items():
        auc = h["classifier_auc_worst"]
        cells = [label, f"**{auc[0]:.3f} ± {auc[1]:.3f}** ({h['worst_view']})"]
        for v in views:
            a = h["classifier_auc"].get(v)
            cells.append("–" if a is None else f"{a[0]:.3f} ± {a[1]:.3f}")
        if has_voxels:
            vw = h.get("voxel_classifier_auc_worst")
            cells.append("–" if vw is None else f"{vw[0][0]:.3f} ± {vw[0][1]:.3f} ({vw[1]})")
        if has_points:
            p = h.get("point_classifier_auc")
            cells.append("–" if p is None else f"{p[0]:.3f} ± {p[1]:.3f}")
        if has_cond:
            c = h.get("classifier_auc_conditioned")
            cells.append("–" if c is None else f"{c[0]:.3f} ± {c[1]:.3f}")
        for name, _ in POINT_OBSERVABLES:
            r = h["point_w1_over_floor"].get(name)
            cells.append("–" if r is None else f"{r:.2f}")
        w = h["worst_w1_over_floor"]
        cells.append(f"{w['value']:.2f} ({w['view']}, {w['observable']})")
        memo = h.get("memorisation_ratio")
        cells.append("–" if memo is None else f"{memo:.3f}")
        speed = h.get("showers_per_s")
        cells.append("–" if speed is None else f"{speed:.3g}")
        lines.append("| " + " | ".join(cells) + " |")
    floors = [result["floor"][v]["classifier_auc"] for v in views]
    worst = max(floors, key=lambda a: a[0])
    floor = ["floor (reference vs reference)", f"{worst[0]:.3f} ± {worst[1]:.3f}"]
    floor += [f"{a[0]:.3f} ± {a[1]:.3f}" for a in floors]
    if has_voxels:
        vf = [result["floor"][v]["voxel_classifier_auc"] for v in views
              if "voxel_classifier_auc" in result["floor"][v]]  # fmt: skip
        vf_worst = max(vf, key=lambda a: a[0]) if vf else None
        floor.append("–" if vf_worst is None else f"{vf_worst[0]:.3f} ± {vf_worst[1]:.3f}")
    if has_points:
        p = result["floor"][views[0]].get("point_classifier_auc")
        floor.append("–" if p is None else f"{p[0]:.3f} ± {p[1]:.3f}")
    if has_cond:
        c = result["floor"][views[0]].get("classifier_auc_conditioned")
        floor.append("–" if c is None else f"{c[0]:.3f} ± {c[1]:.3f}")
    floor += ["1"] * len(POINT_OBSERVABLES) + ["1", "1", "–"]
    lines.append("| " + " | ".join(floor) + " |")
    return "\n".join(lines)


def headline_plot(result: dict[str, Any], path: Path) -> Path:
    """Classifier AUC of every sample on every view, with the floor band."""
    from pointcalo.plots import pyplot, save_png

    plt = pyplot()
    views = result["views"]
    rows = result["headline"]
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(len(rows), 1)
    for i, (label, h) in enumerate(rows.items()):
        x = [j + i * width for j, v in enumerate(views) if v in h["classifier_auc"]]
        y = [h["classifier_auc"][v][0] for v in views if v in h["classifier_auc"]]
        e = [h["classifier_auc"][v][1] for v in views if v in h["classifier_auc"]]
        ax.bar(x, y, width, yerr=e, label=label)
    for j, v in enumerate(views):
        f = result["floor"][v]["classifier_auc"]
        ax.hlines(f[0], j - width / 2, j + 0.8 - width / 2, colors="k", lw=1.5)
    ax.set_xticks(np.arange(len(views)) + 0.4 - width / 2, views)
    ax.set_ylim(0.4, 1.02)
    ax.set_ylabel("classifier AUC (per-layer features)")
    ax.set_title("each sample against Geant4 on every view (black: Geant4 vs Geant4)")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return save_png(fig, path, dpi=110)
