"""The main job on a built-in default: what ``make demo`` / ``pointcalo demo`` runs.

Steps: simulate photon showers with the built-in parametrised simulator (the default
dataset; or read a file given with ``data``), validate and summarise them, convert them to ROOT
and back and check the round trip, project them onto the ILD, CaloGAN and CaloChallenge
dataset-2 grids (checking energy conservation); then the fidelity check (:func:`fidelity_step`):
the shipped models, a frozen-shower library and the simulator against Geant4 showers no
model was trained or tuned on, under the evaluation protocol (three grid alignments and the
cylindrical grid, the per-layer classifier, point-level distances), with a verdict for each;
optionally train and sample a small EPiC-GAN (``train_steps``); plot, and write a report
(``report.md`` with the verdicts first, ``summary.json``, PNGs) into ``out``.
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
from pointcalo.errors import PointcaloError
from pointcalo.io.atomic import atomic_path, write_json
from pointcalo.plots import plot_overview, pyplot, save_png
from pointcalo.showers import summary


def run_demo(
    out: str | os.PathLike[str],
    data: str | os.PathLike[str] | None = None,
    log=print,
    n_showers: int = 1000,
    seed: int = 1,
    train_steps: int = 0,
    n_reference: int = 900,
    all_models: bool = False,
) -> dict[str, Any]:
    """Run the main job; returns the report as a dict (also written to ``out/summary.json``).

    Without ``data``, ``n_showers`` photons of 10-90 GeV are simulated (``seed``) into
    ``out/simulated.h5``. The fidelity check uses ``n_reference`` Geant4 test showers
    (:func:`fidelity_step`; ``all_models`` also samples the slow shipped models). With
    ``train_steps`` > 0 a small EPiC-GAN is trained on the showers, sampled and evaluated.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"steps": {}}
    t0 = start = time.perf_counter()
    say = log

    def log(msg: str) -> None:  # every line with the seconds since the start
        say(f"[{time.perf_counter() - start:4.0f} s] {msg}")

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
    report["fidelity"] = fidelity_step(
        out / "fidelity", seed, log, n_reference=n_reference, all_models=all_models
    )
    report["steps"]["fidelity_s"] = time.perf_counter() - t0
    report["steps"]["total_s"] = time.perf_counter() - start

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


#: The Geant4 sample of the fidelity check and its fixed split (``pointcalo split``).
GEANT4_SAMPLE = "g4_ild_photons.h5"
#: The fewest reference showers the floor can be measured on.
MIN_REFERENCE = 100
#: A shipped model slower than this (showers/s on its card) is not sampled unless asked.
SLOW = 50.0


def find_shared_data(name: str = GEANT4_SAMPLE) -> Path | None:
    """The shared Geant4 sample ``name``: in ``$POINTCALO_DATA``, in ``../shared/data`` of the
    working directory, or beside a checkout of pointcalo; None when it is nowhere."""
    here = Path(__file__).resolve().parents[1]
    folders = [os.environ.get("POINTCALO_DATA"), Path.cwd() / ".." / "shared" / "data"]
    folders.append(here.parent / "shared" / "data")
    for folder in folders:
        if folder and (Path(folder) / name).is_file():
            return (Path(folder) / name).resolve()
    return None


def geant4_showers(n_reference: int, log) -> tuple[ak.Array, ak.Array | None, str]:
    """``(reference, training showers, where they come from)``: ``n_reference`` showers of the
    test part of the shipped split of the shared Geant4 sample (spread over it) and the first
    2,000 of its training part; without the shared sample, the 160 Geant4 showers shipped with
    pointcalo and no training showers (too few for a verdict: the report says so)."""
    import json

    import numpy as np

    from pointcalo.config import PRESETS_DIR

    path = find_shared_data()
    if path is None:
        example = io.read(example_path())
        log("the shared Geant4 sample is not here: using the 160 showers shipped with pointcalo")
        return example, None, f"{example_path().name} (shipped with pointcalo)"
    split = json.loads((PRESETS_DIR / "splits" / f"{Path(GEANT4_SAMPLE).stem}.json").read_text())
    showers = io.read(path)
    test = np.asarray(split["test"])
    pick = test[np.linspace(0, len(test) - 1, min(n_reference, len(test))).round().astype(int)]
    log(f"Geant4 reference: {len(pick)} test showers of {path} (fixed split, never trained on)")
    return showers[np.unique(pick)], showers[np.asarray(split["train"][:2000])], str(path)


def fidelity_step(
    out: Path, seed: int, log, n_reference: int = 900, all_models: bool = False
) -> dict[str, Any]:
    """The shipped models beside the baselines, against Geant4 showers no model saw.

    The reference is :func:`geant4_showers`'s; every shipped model (fast ones unless
    ``all_models``), a frozen-shower library built from Geant4 training showers (the baseline
    every model must beat) and the built-in simulator generate showers at the reference's
    energies; :func:`pointcalo.metrics.files.compare_files` scores them on every view under
    the evaluation protocol and gives each a verdict (:mod:`pointcalo.metrics.verdict`).
    """
    from pointcalo import pretrained
    from pointcalo.clouds import from_showers
    from pointcalo.config import load_config, preset_path
    from pointcalo.generation import sample_to_file
    from pointcalo.metrics.compare import headline_table
    from pointcalo.metrics.files import compare_files
    from pointcalo.simulate import simulate_to_file
    from pointcalo.train.engine import train

    if n_reference < MIN_REFERENCE:
        raise PointcaloError(
            f"--reference-showers: at least {MIN_REFERENCE} (the floor splits them in two, "
            f"5 batches of 10 each), got {n_reference}"
        )
    out.mkdir(parents=True, exist_ok=True)
    reference, stored, source = geant4_showers(n_reference, log)
    ref_path = io.write(reference, out / "geant4_reference.h5")
    models, skipped, train_path = [], {}, None
    if stored is not None:  # the baseline: a frozen-shower library of Geant4 training showers
        train_path = io.write(stored, out / "geant4_train.h5")
        cfg = load_config(preset_path("library")).with_overrides(
            data={"val_fraction": 0.0}, train={"out": str(out / "library")}
        )
        library = train(cfg, data=from_showers(stored), progress=False, log=lambda m: None)
    other = {}  # models of other showers (angles, particles, detectors): on their own test split
    for name in pretrained.available():
        card = pretrained.card(name)
        rate = card.get("speed", {}).get("showers_per_s", 0.0)
        other_detector = card.get("detector", "ild") != "ild"
        if other_detector or set(card.get("conditions") or {}) - {"incident_energy"}:
            other[name] = card.get("fidelity", {})
        elif all_models or rate >= SLOW:
            models.append((name, name))
        else:
            skipped[name] = card.get("fidelity", {})
    if stored is not None:
        models.append(("library", str(library)))
    paths, speed = {}, {}
    for label, model in models:
        t0 = time.perf_counter()
        done = sample_to_file(
            model, str(out / f"{label}.h5"), energies_from=str(ref_path), seed=seed
        )
        speed[label] = done.count / (time.perf_counter() - t0)
        paths[label] = done.output
        log(f"sampled {done.count} showers from {label} ({speed[label]:.0f} showers/s)")
    t0 = time.perf_counter()
    energy = (10e3, 90e3)
    paths["simulator"] = str(out / "simulator.h5")
    simulate_to_file(paths["simulator"], len(reference), energy, "photon", seed)
    speed["simulator"] = len(reference) / (time.perf_counter() - t0)
    result = compare_files(
        str(ref_path), list(paths.values()), labels=list(paths), speed=speed, out=str(out),
        train=str(train_path) if train_path else None, reference_label="Geant4", log=log,
    )  # fmt: skip
    for v in result["verdicts"].values():
        log(v["text"])
    return {
        "reference": source,
        "n_reference": len(reference),
        "table": headline_table(result),
        "verdicts": {k: v for k, v in result["verdicts"].items()},
        "skipped": skipped,
        "other_showers": other,
        "folder": out.name,
    }


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
        im = ax[i].imshow(np.log10(image + 1e-3), origin="lower", aspect="auto")
        ax[i].set(title=f"{name}: mean of layer {layer}", xlabel="cell column", ylabel="cell row")
        fig.colorbar(im, ax=ax[i], label="log10 mean energy per cell [MeV]")
    fig.suptitle("mean shower image in the layer with most energy (log10 MeV)")
    fig.tight_layout()
    save_png(fig, png)
    return result


TOO_FEW = (
    "**Too few Geant4 showers here for a verdict**: the shared Geant4 sample "
    "(`../shared/data`, or `$POINTCALO_DATA`) resolves 0.05 in AUC; these do not."
)


def _write_markdown(report: dict[str, Any], path: Path) -> None:
    s, fid = report["summary"], report["fidelity"]
    few = fid["n_reference"] < 500
    lines = [
        "# pointcalo demo report",
        "",
        f"## Verdicts: each model against {fid['n_reference']} Geant4 showers it never saw",
        "",
        f"Reference: `{fid['reference']}`. Every sample is generated at the reference's incident "
        "energies and scored on three alignments of the ILD grid to the shower axis and on the "
        "cylindrical grid; the headline is the worst view. AUC 0.5: the per-layer classifier "
        "cannot tell the sample from Geant4; 1: it always can. Floor: Geant4 against itself.",
        "",
        *([TOO_FEW, ""] if few else []),
        *(f"- {v['text']}" for v in fid["verdicts"].values()),
        *(
            f"- {name}: not sampled here (slow on a CPU; `pointcalo demo --all-models`); its "
            f"card says AUC {f['auc_worst_view'][0]:.3f} on its worst view, on the test split"
            for name, f in fid["skipped"].items()
            if f.get("auc_worst_view")
        ),
        *(
            f"- {name}: a model of other showers (angles, particles, another detector), not "
            "scored against these normal-incidence photons; its card has its figures on its own "
            "test split"
            for name in fid.get("other_showers", {})
        ),
        "",
        "What the figures mean, how they were measured and how they changed: "
        "`docs/fidelity.md`; what each model is good for: `docs/models.md`.",
        "",
        fid["table"],
        "",
        f"Per view, with every observable: `{fid['folder']}/compare.md`, plot "
        f"`{fid['folder']}/compare.png`; response and resolution against the incident energy: "
        f"`{fid['folder']}/response.png`.",
        "",
        "## The data path on the default showers",
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
        f"Steps (s): {', '.join(f'{k[:-2]} {v:.0f}' for k, v in report['steps'].items())}.",
        "",
        *(f"![{p}]({p})" for p in report["plots"]),
        "",
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))
