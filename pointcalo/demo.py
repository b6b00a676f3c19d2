"""The main job on a built-in default: what ``make demo`` / ``pointcalo demo`` runs.

Steps (each later feature adds its own): simulate photon showers with the built-in
parametrised simulator (the default dataset; or read a file given with ``data``), validate and
summarise them, convert them to ROOT and back and check the round trip, project them onto the
ILD, CaloGAN and CaloChallenge dataset-2 grids (checking energy conservation), evaluate them
against the Geant4 showers shipped with pointcalo, each metric beside the Geant4 floor
(``out/evaluate``), sample the shipped pretrained models and compare them with a frozen-shower
library and the simulator on one table (``out/compare``), train and sample a small EPiC-GAN,
plot, and write a report (``report.md``, ``summary.json``, PNGs) into ``out``.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from typing import Any

import awkward as ak

from pointcalo import io
from pointcalo.data import example_path
from pointcalo.io.atomic import atomic_path, write_json
from pointcalo.plots import plot_overview, pyplot, save_png
from pointcalo.showers import summary


def run_demo(
    out: str | os.PathLike[str],
    data: str | os.PathLike[str] | None = None,
    log=print,
    n_showers: int = 1000,
    seed: int = 1,
    train_steps: int = 100,
) -> dict[str, Any]:
    """Run the main job; returns the report as a dict (also written to ``out/summary.json``).

    Without ``data``, ``n_showers`` photons of 10-90 GeV are simulated (``seed``) into
    ``out/simulated.h5``. A small EPiC-GAN is trained on the showers for ``train_steps`` steps
    (0: skip), sampled and evaluated too.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"steps": {}}
    t0 = time.perf_counter()
    if data is None:
        from pointcalo.simulate import ShowerSimulator

        src = out / "simulated.h5"
        sim = ShowerSimulator()
        with io.open_writer(src, attrs={"particle": "photon", "seed": seed}) as writer:
            for chunk in sim.iter_simulate(n_showers, (10e3, 90e3), "photon", seed):
                writer.write(chunk)
        report["steps"]["simulate_s"] = time.perf_counter() - t0
        report["simulated_showers_per_s"] = n_showers / report["steps"]["simulate_s"]
        log(
            f"simulated {n_showers} photons of 10-90 GeV into {src} "
            f"({report['simulated_showers_per_s']:.0f} showers/s)"
        )
        t0 = time.perf_counter()
    else:
        src = Path(data)
    report["input"] = str(src)
    showers = io.read(src, allow_empty=True)
    report["steps"]["read_s"] = time.perf_counter() - t0
    report["summary"] = summary(showers)
    log(f"read {len(showers)} showers from {src}")

    t0 = time.perf_counter()
    root_path = io.write(showers, out / "showers.root")
    back = io.read(root_path)
    report["steps"]["root_round_trip_s"] = time.perf_counter() - t0
    report["root_round_trip_exact"] = bool(ak.array_equal(back, showers))
    log(f"converted to {root_path} and back: exact = {report['root_round_trip_exact']}")

    t0 = time.perf_counter()
    report["voxelize"] = voxelize_step(showers, out / "voxels.png")
    report["steps"]["voxelize_s"] = time.perf_counter() - t0
    for name, v in report["voxelize"].items():
        log(
            f"voxelized onto {name}: {v['n_voxels']} voxels, "
            f"outside {100 * v['outside_fraction']:.3f} %, "
            f"energy conserved to {v['max_relative_error']:.1e}"
        )

    t0 = time.perf_counter()
    from pointcalo.metrics.report import evaluate, markdown_table

    if data is None:  # the simulator against the Geant4 showers shipped with pointcalo
        reference, generated = io.read(example_path()), showers
        labels = ("Geant4 (shipped example)", "pointcalo simulate")
    else:  # a file of unknown origin: one half against the other
        reference, generated = showers[0::2], showers[1::2]
        labels = ("even showers", "odd showers")
    metrics = evaluate(reference, generated, k=2, seed=0, out=out / "evaluate", labels=labels)
    report["steps"]["evaluate_s"] = time.perf_counter() - t0
    report["evaluate"] = {
        "table": markdown_table(metrics),
        "folder": "evaluate",
        "labels": list(labels),
    }
    log(
        f"evaluated {labels[1]} against {labels[0]}: classifier AUC "
        f"{metrics['classifier_auc']['generated'][0]:.3f} "
        f"(floor {metrics['classifier_auc']['floor'][0]:.3f}); see {out / 'evaluate'}"
    )

    t0 = time.perf_counter()
    report["pretrained"] = pretrained_step(out / "compare", seed, log)
    report["steps"]["pretrained_s"] = time.perf_counter() - t0

    if train_steps > 0:
        report["model"] = model_step(src, out, train_steps, seed, log)

    plot = plot_overview(showers, out / "overview.png", title=src.name)
    report["plots"] = [plot.name, "voxels.png"]
    log(f"plotted {plot}")

    write_json(report, out / "summary.json")
    _write_markdown(report, out / "report.md")
    log(f"report written to {out / 'report.md'}")
    return report


def model_step(src: Path, out: Path, steps: int, seed: int, log) -> dict[str, Any]:
    """Train a small EPiC-GAN on ``src``, sample as many showers, evaluate against Geant4."""
    import numpy as np

    from pointcalo.config import load_config, preset_path
    from pointcalo.generation import generate, load_model, sample_conditions
    from pointcalo.metrics.report import evaluate, markdown_table
    from pointcalo.showers import make_showers
    from pointcalo.train.engine import train

    cfg = load_config(preset_path("epic_gan")).with_overrides(
        data={"path": str(src), "max_showers": 2000},
        train={
            "steps": steps,
            "batch_size": 16,
            "out": str(out / "epic_gan"),
            "eval_every": 0,
            "checkpoint_every": max(1, steps),
            "seed": seed,
            "warmup_steps": min(20, steps),
        },
    )
    t0 = time.perf_counter()
    ckpt = train(cfg, log=log, progress=False)
    train_s = time.perf_counter() - t0
    loaded = load_model(ckpt)
    n = 200
    cond = sample_conditions(n, 10e3, 90e3, seed)
    t0 = time.perf_counter()
    clouds = generate(
        loaded.model,
        loaded.net,
        loaded.normalizer,
        cond,
        loaded.cfg,
        seed=seed,
        limits=loaded.limits,
    )
    sample_s = time.perf_counter() - t0
    generated = make_showers(cond.astype(np.float32), clouds.points, offsets=clouds.offsets)
    io.write(generated, out / "epic_gan" / "generated.h5")
    metrics = evaluate(
        io.read(example_path()),
        generated,
        k=2,
        seed=0,
        out=out / "epic_gan" / "evaluate",
        labels=("Geant4 (shipped example)", f"EPiC-GAN ({steps} steps)"),
    )
    log(
        f"trained EPiC-GAN for {steps} steps in {train_s:.0f} s; sampled {n} showers at "
        f"{n / sample_s:.0f} showers/s; classifier AUC "
        f"{metrics['classifier_auc']['generated'][0]:.3f}"
    )
    return {
        "checkpoint": str(ckpt),
        "train_s": train_s,
        "steps": steps,
        "showers_per_s": n / sample_s,
        "table": markdown_table(metrics),
    }


def pretrained_step(out: Path, seed: int, log) -> dict[str, Any]:
    """The shipped pretrained models beside the baselines, against Geant4.

    The shipped Geant4 example is split in two: the even showers build a frozen-shower
    library (the baseline every model must beat), the odd ones are the reference. Every shipped
    model, the library and the built-in simulator generate showers at the reference's
    energies; one table compares them (classifier AUC, every W1 / floor, the memorisation
    ratio against the library's showers, showers/s on this machine).
    """
    import numpy as np

    from pointcalo import pretrained
    from pointcalo.clouds import from_showers
    from pointcalo.config import load_config, preset_path
    from pointcalo.generation import generate, load_model
    from pointcalo.metrics.compare import compare_samples, comparison_table
    from pointcalo.metrics.observables import compute
    from pointcalo.showers import make_showers
    from pointcalo.simulate import ShowerSimulator
    from pointcalo.train.engine import train

    example = io.read(example_path())
    stored, reference = example[0::2], example[1::2]
    energy = np.asarray(reference.incident_energy, np.float64)
    cfg = load_config(preset_path("library")).with_overrides(
        data={"val_fraction": 0.0}, train={"out": str(out / "library")}
    )
    library = train(cfg, data=from_showers(stored), progress=False, log=lambda m: None)
    samples, speed = {}, {}
    for label, path in [
        *((name, str(pretrained.PRETRAINED_DIR / f"{name}.pt")) for name in pretrained.available()),
        ("library", library),
    ]:
        m = load_model(path)
        t0 = time.perf_counter()
        clouds = generate(m.model, m.net, m.normalizer, energy, m.cfg, seed=seed, limits=m.limits)
        speed[label] = len(energy) / (time.perf_counter() - t0)
        samples[label] = make_showers(
            energy.astype(np.float32), clouds.points, offsets=clouds.offsets, allow_empty=True
        )
        log(f"sampled {len(energy)} showers from {label} ({speed[label]:.0f} showers/s)")
    t0 = time.perf_counter()
    samples["simulator"] = ShowerSimulator().simulate(len(energy), (10e3, 90e3), seed=seed)
    speed["simulator"] = len(energy) / (time.perf_counter() - t0)
    result = compare_samples(
        compute(reference),
        {label: compute(s) for label, s in samples.items()},
        train=compute(stored),
        k=2,
        seed=0,
        speed=speed,
        out=out,
    )
    table = comparison_table(result)
    log(f"compared {', '.join(samples)} with Geant4; see {out / 'compare.md'}")
    return {"table": table, "folder": out.name, "models": pretrained.available()}


def voxelize_step(showers: ak.Array, png: Path) -> dict[str, Any]:
    """Project onto three grids; return per-grid energy bookkeeping and plot mean images."""
    import numpy as np

    import voxelize as vx

    total = ak.to_numpy(ak.sum(ak.values_astype(showers.points.E, np.float64), axis=1))
    ild = vx.ild()
    jobs = {
        "ild": (ild, {}),
        "calogan": (vx.calogan(), {"layer_map": np.repeat([0, 1, 2], [8, 14, 8])}),
        "calochallenge-2": (
            vx.calochallenge("2"),
            {"layer_map": "depth", "source_depth": ild.layer_depth},
        ),
    }
    plt = pyplot()
    result: dict[str, Any] = {}
    fig, ax = plt.subplots(1, 3, figsize=(12, 3.8))
    for i, (name, (grid, kw)) in enumerate(jobs.items()):
        proj = vx.project(showers, grid, dtype=np.float64, **kw)
        inside = proj.voxels.sum(1)
        result[name] = {
            "n_voxels": grid.n_voxels,
            "outside_fraction": float(proj.outside.sum() / total.sum()),
            "max_relative_error": float(np.max(np.abs(inside + proj.outside - total) / total)),
        }
        mean = proj.voxels.mean(0)
        edges = grid.layer_offset
        layer = int(np.argmax([mean[lo:hi].sum() for lo, hi in itertools.pairwise(edges)]))
        image = proj.layer(layer).mean(0)
        ax[i].imshow(np.log10(image + 1e-3), origin="lower", aspect="auto")
        ax[i].set(title=f"{name}: mean of layer {layer}", xlabel="column", ylabel="row")
    fig.suptitle("mean shower image in the layer with most energy (log10 MeV)")
    fig.tight_layout()
    save_png(fig, png)
    return result


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
        "| grid | voxels | energy outside | energy conserved to |",
        "|---|---|---|---|",
        *(
            f"| {name} | {v['n_voxels']} | {100 * v['outside_fraction']:.3f} % | "
            f"{v['max_relative_error']:.1e} |"
            for name, v in report["voxelize"].items()
        ),
        "",
        "## Evaluation: {} against {}".format(*reversed(report["evaluate"]["labels"])),
        "",
        "Each distance beside its floor (two halves of the reference); full report in "
        "`evaluate/summary.md`.",
        "",
        report["evaluate"]["table"],
        "",
        "## Shipped models beside the baselines, against Geant4",
        "",
        "The shipped Geant4 example split in two: even showers build the frozen-shower library, "
        "odd showers are the reference; every sample is generated at the reference's energies. "
        "W1 as a multiple of its floor; memo ratio: median distance to the nearest library "
        "shower, generated over reference (about 1: no copying). Plot: `compare/compare.png`.",
        "",
        report["pretrained"]["table"],
        "",
        *(
            [
                f"## A small EPiC-GAN ({report['model']['steps']} training steps, not "
                "converged) against Geant4",
                "",
                f"Trained in {report['model']['train_s']:.0f} s on the showers above; samples "
                f"{report['model']['showers_per_s']:.0f} showers/s. Full report in "
                "`epic_gan/evaluate/summary.md`.",
                "",
                report["model"]["table"],
                "",
            ]
            if "model" in report
            else []
        ),
        *(f"![{p}]({p})" for p in report["plots"]),
        "",
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))
