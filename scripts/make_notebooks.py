"""Write the notebooks in notebooks/ from the cell sources below, executed so a reader on the
web sees their tables and plots (``--no-execute``: sources only).

Usage: python scripts/make_notebooks.py [--no-execute]
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
    "02_voxelize.ipynb": [
        (
            "md",
            """# One shower, three grids

`voxelize` projects point clouds onto any detector grid, so point-cloud and grid models meet on
the same metrics. Here one Geant4 photon shower (shipped with pointcalo) is drawn as points and
as voxels on the ILD-like grid, the CaloGAN grid and the CaloChallenge dataset-2 cylinder.
Energy that misses a grid is reported, never lost.""",
        ),
        (
            "code",
            """import awkward as ak
import matplotlib.pyplot as plt
import numpy as np

import voxelize as vx
from pointcalo.data import load_example

showers = load_example()
shower = showers[int(np.argmax(ak.to_numpy(showers.incident_energy)))]
pts = shower.points
e_total = float(np.sum(ak.to_numpy(pts.E), dtype=np.float64))
print(f"{shower.incident_energy / 1e3:.1f} GeV photon, {len(pts)} points, E_vis = {e_total:.1f} MeV")""",
        ),
        ("md", "## ILD-like grid: 30 layers of 30 x 30 cells of 5.088 mm"),
        (
            "code",
            """ild = vx.ild()
proj = vx.project(shower, ild, dtype=np.float64)
# energy conservation: inside + outside = total
assert abs(proj.voxels.sum() + proj.outside.sum() - e_total) < 1e-6 * e_total
layer = 12
sel = ak.to_numpy(pts.layer) == layer
fig, ax = plt.subplots(1, 2, figsize=(10, 4.2))
ax[0].scatter(ak.to_numpy(pts.x)[sel], ak.to_numpy(pts.y)[sel], c=np.log10(ak.to_numpy(pts.E)[sel]), s=4)
ax[0].set(title=f"points, layer {layer}", xlabel="x [mm]", ylabel="y [mm]", xlim=(-75, 80), ylim=(-75, 80))
extent = [ild.x_min[0], ild.x_min[0] + 30 * ild.dx[0]] * 2
img = proj.layer(layer)[0]
ax[1].imshow(np.log10(img + 1e-3), origin="lower", extent=extent)
ax[1].set(title=f"ILD voxels, layer {layer}", xlabel="x [mm]")
fig.tight_layout()
print(f"outside the 30x30 grid: {proj.outside[0]:.2f} MeV of {e_total:.1f}")""",
        ),
        (
            "md",
            "## CaloGAN grid: 3 layers with different granularity\n\nThe 30 ILD layers are grouped into CaloGAN's three layers with an explicit layer map.",
        ),
        (
            "code",
            """calogan = vx.calogan()
layer_map = np.repeat([0, 1, 2], [8, 14, 8])  # ILD layers 0-7, 8-21, 22-29
cg = vx.project(shower, calogan, layer_map=layer_map, dtype=np.float64)
fig, ax = plt.subplots(1, 3, figsize=(12, 3.6))
for i in range(3):
    ax[i].imshow(cg.layer(i)[0], origin="lower", aspect="auto", extent=[-240, 240, -240, 240])
    ax[i].set(title=f"CaloGAN layer {i}: {calogan.layer_shape(i)}", xlabel="x [mm]")
fig.tight_layout()
np.testing.assert_allclose(cg.voxels.sum() + cg.outside.sum(), e_total, rtol=1e-9)""",
        ),
        (
            "md",
            "## CaloChallenge dataset 2: a cylinder of 45 layers x 16 angles x 9 radii\n\nLayers are matched by depth: each ILD sensor goes to the 3.4 mm dataset-2 layer at its depth.",
        ),
        (
            "code",
            """cc = vx.calochallenge("2")
cp = vx.project(shower, cc, layer_map="depth", source_depth=ild.layer_depth, dtype=np.float64)
layer = int(np.argmax(cp.voxels[0].reshape(45, -1).sum(1)))
image = cp.layer(layer)[0]  # [16 angles, 9 radii]
alpha = np.linspace(-np.pi, np.pi, 17)
fig = plt.figure(figsize=(4.5, 4.5))
ax = fig.add_subplot(projection="polar")
ax.pcolormesh(alpha, cc.r_edges[layer], np.log10(image.T + 1e-3))
ax.set_title(f"dataset-2 layer {layer}")
print(f"{cc.n_voxels} voxels; outside the cylinder: {cp.outside[0]:.2f} MeV")
np.testing.assert_allclose(cp.voxels.sum() + cp.outside.sum(), e_total, rtol=1e-9)""",
        ),
        (
            "md",
            "## And back: voxels to points\n\n`to_points` turns voxels into points (cell centres, or spread inside cells); projecting them again gives the same voxels.",
        ),
        (
            "code",
            """cloud = vx.to_points(cp.voxels, cc, mode="uniform", points_per_voxel=4)
again = vx.project({"E": cloud.E, "x": cloud.x, "y": cloud.y, "layer": cloud.layer, "ptr": cloud.ptr}, cc)
np.testing.assert_allclose(again.voxels, cp.voxels, rtol=1e-5, atol=1e-6)
len(cloud.E), int((cp.voxels > 0).sum())""",
        ),
    ],
    "03_train_and_compare.ipynb": [
        (
            "md",
            """# Train a point-cloud model and compare it with the reference

The whole loop in a few minutes on a laptop CPU: showers from the built-in simulator, an
EPiC-GAN (Buhmann, Kasieczka, Thaler, arXiv 2301.08128) trained with pointcalo's engine,
showers sampled from the checkpoint, and the comparison with the metrics every model is judged
by, each beside its reference floor. The model is tiny and trained for a few steps only, so it
is far from the floor: the point is the workflow. `pointcalo train configs/epic_gan.yaml` does
the same at scale.""",
        ),
        (
            "code",
            """import tempfile
from pathlib import Path

import numpy as np

from pointcalo.config import load_config, preset_path
from pointcalo.metrics import evaluate
from pointcalo.generation import generate, load_model, sample_conditions
from pointcalo.showers import make_showers
from pointcalo.simulate import ShowerSimulator
from pointcalo.clouds import from_showers
from pointcalo.train.engine import train

work = Path(tempfile.mkdtemp())
reference = ShowerSimulator().simulate(400, energy=(10e3, 20e3), seed=1)
print(len(reference), "reference showers")""",
        ),
        (
            "md",
            "## Train\n\nThe config is typed and validated; here the preset is shrunk for a quick run.",
        ),
        (
            "code",
            """cfg = load_config(preset_path("epic_gan")).with_overrides(
    model={"point_dim": 16, "hidden": 32, "layers": 2, "critic_layers": 1},
    train={"steps": 40, "batch_size": 16, "warmup_steps": 5, "log_every": 5,
           "checkpoint_every": 20, "out": str(work / "run"), "device": "cpu"},
    data={"val_fraction": 0.0},
)
checkpoint = train(cfg, data=from_showers(reference), progress=False)
log = (work / "run" / "log.jsonl").read_text().splitlines()
print(log[-1])""",
        ),
        (
            "md",
            "## Sample\n\nEvery shower has its own random stream: the same seed gives the same showers whatever the batch size.",
        ),
        (
            "code",
            """m = load_model(checkpoint)
energy = sample_conditions(200, 10e3, 20e3, seed=2)
clouds = generate(m.model, m.net, m.normalizer, energy, m.cfg, seed=2)
generated = make_showers(energy.astype(np.float32), clouds.points, offsets=clouds.offsets)
again = generate(m.model, m.net, m.normalizer, energy[:10], m.cfg, seed=2, batch_size=3)
assert np.array_equal(again.offsets, clouds.offsets[:11])
generated.type.show()""",
        ),
        (
            "md",
            "## Compare\n\nEach distance is printed beside its floor: the same metric for two halves of the reference.",
        ),
        (
            "code",
            """metrics = evaluate(reference, generated, k=2, seed=0, out=work / "evaluate")
for name in ("e_ratio", "n_hits", "cog_z", "n_points"):
    w = metrics["w1x100"][name]
    print(f"{name:9s} W1x100 {w['generated'][0]:7.1f} +- {w['generated'][1]:5.1f}   "
          f"floor {w['floor'][0]:5.1f} +- {w['floor'][1]:4.1f}")
print("classifier AUC", metrics["classifier_auc"])""",
        ),
    ],
    "04_point_vs_grid.ipynb": [
        (
            "md",
            """# Point models and grid models on one grid

voxelize puts every kind of model on the same footing: Geant4 showers, a point-cloud model's
showers and a grid model's voxels are projected onto one grid and judged by the same metrics.
Here: the shipped Geant4 example, the shipped one-step point model `ild-photon-cm`, and two grid
models of pointcalo (a conditional VAE and a WGAN-GP, `configs/grid_vae.yaml`,
`configs/grid_gan.yaml`) on the cylindrical grid matched to the ILD-like ECAL
(`ild-cylindrical`: 30 layers x 16 angular x 9 radial bins). The grid models are trained for a
few steps only, so they are far from the floor: the point is the workflow; trained numbers are
in `docs/fidelity.md`.""",
        ),
        (
            "code",
            """import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import voxelize as vx
from pointcalo import io, pretrained
from pointcalo.clouds import from_showers
from pointcalo.config import load_config, preset_path
from pointcalo.data import example_path
from pointcalo.metrics import compute
from pointcalo.metrics.compare import compare_samples, comparison_table
from pointcalo.generation import generate, load_model
from pointcalo.showers import make_showers
from pointcalo.train.engine import train

work = Path(tempfile.mkdtemp())
grid = vx.load_grid("ild-cylindrical")
reference = io.read(example_path())
energy = np.asarray(reference.incident_energy, np.float64)
print(len(reference), "Geant4 showers;", grid.name, grid.n_voxels, "voxels")""",
        ),
        (
            "md",
            "## Generate\n\nThe point model by its shipped name; the grid models trained briefly on the same showers.",
        ),
        (
            "code",
            """def showers_of(checkpoint, seed=1):
    m = load_model(checkpoint)
    clouds = generate(m.model, m.net, m.normalizer, energy, m.cfg, seed=seed)
    return make_showers(energy.astype(np.float32), clouds.points, offsets=clouds.offsets)


samples = {"ild-photon-cm (points)": showers_of(pretrained.resolve("ild-photon-cm"))}
for name in ("grid_vae", "grid_gan"):
    cfg = load_config(preset_path(name)).with_overrides(
        model={"channels": 4, "latent": 8},
        train={"steps": 30, "batch_size": 16, "warmup_steps": 5, "checkpoint_every": 30,
               "out": str(work / name), "device": "cpu"},
        data={"val_fraction": 0.0},
    )
    checkpoint = train(cfg, data=from_showers(reference), progress=False, log=lambda m: None)
    samples[f"{name} (voxels)"] = showers_of(checkpoint)
print({k: len(v) for k, v in samples.items()})""",
        ),
        (
            "md",
            "## The same shower on the grid\n\nEnergy per angular and radial bin, summed over the layers, for the first Geant4 shower and the first generated shower of each model (same incident energy).",
        ),
        (
            "code",
            """voxels = {"Geant4": vx.project(reference, grid).voxels}
voxels.update({k: vx.project(v, grid).voxels for k, v in samples.items()})
n_alpha, n_r = grid.layer_shape(0)
alpha = np.linspace(-np.pi, np.pi, n_alpha + 1)
fig, axes = plt.subplots(1, len(voxels), subplot_kw={"projection": "polar"}, figsize=(14, 3.6))
for ax, (label, v) in zip(axes, voxels.items()):
    image = v[0].reshape(grid.n_layers, n_alpha, n_r).sum(0)  # [alpha, r], MeV
    ax.pcolormesh(alpha, grid.r_edges[0], np.log10(image.T + 1e-2), vmin=-2, vmax=3)
    ax.set_title(f"{label}\\n{image.sum():.0f} MeV", fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout()""",
        ),
        (
            "md",
            "## One table\n\nEvery sample against the Geant4 showers on the grid (observables of the voxels, so point-level features do not enter), each W1 as a multiple of its floor.",
        ),
        (
            "code",
            """observables = {k: compute(voxels=v, incident_energy=energy, grid=grid) for k, v in voxels.items()}
ref = observables.pop("Geant4")
result = compare_samples(ref, observables, k=2, seed=0)
print(comparison_table(result))""",
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


def execute(nb: nbformat.NotebookNode) -> None:
    """Run every cell in a scratch folder (what the notebook writes stays out of the repo)."""
    import os
    import tempfile

    import nbclient

    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures inline

    with tempfile.TemporaryDirectory() as tmp:
        resources = {"metadata": {"path": tmp}}
        nbclient.NotebookClient(
            nb, timeout=900, kernel_name="python3", resources=resources
        ).execute()


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-execute", action="store_true", help="write the sources only")
    args = ap.parse_args()
    for name, cells in NOTEBOOKS.items():
        path = ROOT / "notebooks" / name
        nb = build(cells)
        if not args.no_execute:
            execute(nb)
        nbformat.write(nb, path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
