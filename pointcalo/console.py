"""What the ``pointcalo`` command prints as tables: a shower file's summary and the shipped
models with their fidelity beside its floor. Rich tables on a wide terminal; one plain line
per row when the output is piped or narrower than the table (80 columns stay readable)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_summary(title: str, s: dict[str, Any]) -> None:
    """The summary of a shower file (:func:`pointcalo.showers.summary`) as a table."""
    table = Table(title=title, show_header=True)
    table.add_column("quantity")
    for col in ("min", "mean", "max"):
        table.add_column(col, justify="right")
    table.add_row("showers", "", str(s["n_showers"]), "")
    table.add_row("points", "", str(s["n_points"]), "")
    for key, label, scale in [
        ("points_per_shower", "points per shower", 1.0),
        ("incident_energy_MeV", "incident energy [GeV]", 1e-3),
        ("visible_energy_MeV", "visible energy [GeV]", 1e-3),
        ("point_energy_MeV", "point energy [MeV]", 1.0),
    ]:
        v = s[key]
        table.add_row(label, *(f"{v[k] * scale:.4g}" for k in ("min", "mean", "max")))
    r = s["evis_over_einc"]
    table.add_row("E_vis/E_inc", "", f"{r['mean']:.4f} ± {r['std']:.4f}", "")
    lo, hi = (str(v) for v in s["layers"]) if s["layers"] else ("", "")
    table.add_row("layers", lo, "", hi)
    table.add_row("point fields", "", ", ".join(s["point_fields"]), "")
    table.add_row("shower fields", "", ", ".join(s["shower_fields"]), "")
    Console().print(table)


def model_rows() -> list[dict[str, str]]:
    """One row per shipped model: name, family, conditions, worst-view AUC against Geant4
    with its floor, the point classifier's AUC, and the speed with its device."""
    from pointcalo import pretrained

    rows = []
    for name in pretrained.available():
        c = pretrained.card(name)
        fid, speed = c.get("fidelity", {}), c.get("speed", {})
        floor = fid.get("floor_by_view", {}).get(fid.get("worst_view"))
        point = fid.get("point_classifier_auc")
        rows.append(
            {
                "name": name,
                "family": str(c.get("family", "")),
                "conditions": ", ".join(c.get("conditions", ["incident_energy"])),
                "AUC (worst view)": f"{fid['auc_worst_view'][0]:.2f}" if fid else "",
                "floor": f"{floor[0]:.2f}" if floor else "",
                "point AUC": f"{point[0]:.2f}" if point else "",
                "showers/s": (
                    f"{speed['showers_per_s']:.0f} ({speed.get('device', '?')})" if speed else ""
                ),
            }
        )
    return rows


NOTE = (
    "AUC 0.5: indistinguishable from Geant4 (the floor is Geant4 against itself); 1: "
    "separated. Protocol and history: docs/fidelity.md; what each model is for: "
    "docs/models.md; model cards: pointcalo models --json"
)


def print_models(console: Console | None = None) -> None:
    """The shipped models (:func:`model_rows`) and the model families."""
    from pointcalo.models import registry

    console = console or Console()
    rows = model_rows()
    cols = list(rows[0]) if rows else []
    widths = [max(len(c), *(len(r[c]) for r in rows)) + 3 for c in cols]
    if console.is_terminal and sum(widths) + 4 <= console.width:
        table = Table(title="shipped models (pointcalo sample NAME ...); fidelity on Geant4 test")
        for col in cols:
            table.add_column(col, no_wrap=True)
        for row in rows:
            table.add_row(*row.values())
        console.print(table)
        console.print("model families: " + ", ".join(registry.names()), highlight=False)
        console.print(NOTE, highlight=False)
        return
    for row in rows:  # piped or narrow: one plain line per model, no wrapping
        rest = "; ".join(f"{k} {v}" for k, v in row.items() if k != "name" and v)
        print(f"{row['name']}: {rest}")
    print("model families: " + ", ".join(registry.names()))
    print(NOTE)
