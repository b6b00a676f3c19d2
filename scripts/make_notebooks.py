"""Write the notebooks in notebooks/ from the cell sources below (outputs are not stored).

Usage: python scripts/make_notebooks.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "01_showers.ipynb": [
        (
            "md",
            """# Showers as awkward arrays

pointcalo keeps every set of showers in one data model: an awkward array
`N * {incident_energy, points: var * {E, x, y, layer}}` in MeV and mm. This notebook loads the
160 Geant4 photon showers shipped with the package and analyses them with awkward-array
idioms: no padding, no loops over showers.""",
        ),
        (
            "code",
            """import awkward as ak
import matplotlib.pyplot as plt
import numpy as np

import pointcalo
from pointcalo.data import load_example

showers = load_example()
showers.type.show()""",
        ),
        (
            "code",
            """summary = pointcalo.summary(showers)
{k: summary[k] for k in ("n_showers", "n_points", "points_per_shower", "evis_over_einc")}""",
        ),
        (
            "md",
            "## Points per shower and visible energy\n\n`ak.num` counts points, `ak.sum` sums energies per shower.",
        ),
        (
            "code",
            """n_points = ak.num(showers.points, axis=1)
e_vis = ak.sum(showers.points.E, axis=1)
ratio = e_vis / showers.incident_energy
assert ak.all(n_points > 0)
fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
ax[0].scatter(showers.incident_energy / 1e3, n_points, s=5)
ax[0].set(xlabel="incident energy [GeV]", ylabel="points per shower")
ax[1].hist(ak.to_numpy(ratio), bins=30, histtype="step")
ax[1].set(xlabel="E_vis / E_inc", ylabel="showers")
fig.tight_layout()
float(ak.mean(ratio))""",
        ),
        (
            "md",
            "## Energy per layer\n\nGroup points by layer with a boolean mask per layer; the longitudinal profile peaks near the shower maximum.",
        ),
        (
            "code",
            """layers = np.arange(30)
per_layer = np.stack(
    [ak.to_numpy(ak.sum(showers.points.E[showers.points.layer == i], axis=1)) for i in layers],
    axis=1,
)  # [N, 30] MeV
# energy is conserved by the regrouping
np.testing.assert_allclose(per_layer.sum(axis=1), ak.to_numpy(e_vis), rtol=1e-5)
low = ak.to_numpy(showers.incident_energy) < 30e3
high = ak.to_numpy(showers.incident_energy) > 70e3
fig, ax = plt.subplots(figsize=(5, 3.5))
for sel, label in [(low, "10-30 GeV"), (high, "70-90 GeV")]:
    profile = per_layer[sel].mean(axis=0)
    ax.plot(layers, profile / profile.sum(), "o-", ms=3, label=label)
ax.set(xlabel="layer", ylabel="fraction of E_vis", yscale="log")
ax.legend()
shower_max = {lab: int(np.argmax(per_layer[s].mean(axis=0))) for s, lab in [(low, "low"), (high, "high")]}
shower_max""",
        ),
        (
            "md",
            "Higher-energy showers reach their maximum deeper (logarithmic growth with energy):",
        ),
        ("code", """assert shower_max["high"] >= shower_max["low"]"""),
        (
            "md",
            "## Selections and the torch boundary\n\nSlices stay in the data model; `to_torch` gives the flat batch models consume.",
        ),
        (
            "code",
            """# ak.max is None for an empty list, so the mask is option-typed: fill it to get a plain mask
hot = showers[ak.fill_none(ak.max(showers.points.E, axis=1) > 10, False)]
batch = pointcalo.to_torch(hot)
print(len(hot), batch.points.shape, batch.ptr[:4], batch.cond[:2])
assert ak.array_equal(pointcalo.from_torch(batch), hot)""",
        ),
    ],
}


def build(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for kind, src in cells:
        maker = nbformat.v4.new_markdown_cell if kind == "md" else nbformat.v4.new_code_cell
        nb.cells.append(maker(src))
    return nb


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        path = ROOT / "notebooks" / name
        nbformat.write(build(cells), path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
