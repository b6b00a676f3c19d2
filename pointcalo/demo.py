"""The main job on a built-in default: what ``make demo`` / ``pointcalo demo`` runs.

Steps (each later feature adds its own): load showers (the shipped Geant4 example unless a file
is given), validate and summarise them, convert them to ROOT and back and check the round trip,
plot an overview, and write a report (``report.md``, ``summary.json``, PNGs) into ``out``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import awkward as ak

from pointcalo import io
from pointcalo.data import example_path
from pointcalo.io.atomic import atomic_path
from pointcalo.plots import plot_overview
from pointcalo.showers import summary


def write_json(obj: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")
    return Path(path)


def run_demo(
    out: str | os.PathLike[str], data: str | os.PathLike[str] | None = None, log=print
) -> dict[str, Any]:
    """Run the main job; returns the report as a dict (also written to ``out/summary.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    src = Path(data) if data is not None else example_path()
    report: dict[str, Any] = {"input": str(src), "steps": {}}

    t0 = time.perf_counter()
    showers = io.read(src)
    report["steps"]["read_s"] = time.perf_counter() - t0
    report["summary"] = summary(showers)
    log(f"read {len(showers)} showers from {src}")

    t0 = time.perf_counter()
    root_path = io.write(showers, out / "showers.root")
    back = io.read(root_path)
    report["steps"]["root_round_trip_s"] = time.perf_counter() - t0
    report["root_round_trip_exact"] = bool(ak.array_equal(back, showers))
    log(f"converted to {root_path} and back: exact = {report['root_round_trip_exact']}")

    plot = plot_overview(showers, out / "overview.png", title=src.name)
    report["plots"] = [plot.name]
    log(f"plotted {plot}")

    write_json(report, out / "summary.json")
    _write_markdown(report, out / "report.md")
    log(f"report written to {out / 'report.md'}")
    return report


def _write_markdown(report: dict[str, Any], path: Path) -> None:
    s = report["summary"]
    lines = [
        "# pointcalo demo report",
        "",
        f"Input: `{report['input']}`",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| showers | {s['n_showers']} |",
        f"| points | {s['n_points']} |",
        f"| points per shower (min / mean / max) | {s['points_per_shower']['min']:.0f} / "
        f"{s['points_per_shower']['mean']:.0f} / {s['points_per_shower']['max']:.0f} |",
        f"| incident energy [GeV] (min / max) | {s['incident_energy_MeV']['min'] / 1e3:.1f} / "
        f"{s['incident_energy_MeV']['max'] / 1e3:.1f} |",
        f"| E_vis / E_inc (mean ± std) | {s['evis_over_einc']['mean']:.4f} ± "
        f"{s['evis_over_einc']['std']:.4f} |",
        f"| ROOT round trip exact | {report['root_round_trip_exact']} |",
        "",
        *(f"![{p}]({p})" for p in report["plots"]),
        "",
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))
