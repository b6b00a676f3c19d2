"""``pointcalo evaluate``: every distance of generated against reference showers, each beside
its floor, written as metrics.json, a markdown table and PNG plots.

The floor is what the same metric gives for two samples of the reference itself: the reference
is split at random into halves A and B; generated is compared with A, and B with A, using the
same number of showers per batch, so both numbers have the same finite-sample bias. A model
is as good as Geant4 on a metric when its value is at the floor within the uncertainties.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import awkward as ak
import numpy as np

import voxelize as vx
from pointcalo.conditions import CONDITIONS
from pointcalo.errors import PointcaloError, ShowerFormatError
from pointcalo.metrics import distances as dist
from pointcalo.metrics.classifier import classifier_auc
from pointcalo.metrics.observables import (
    MAX_SHOWERS,
    SCALARS,
    Observables,
    Pooled,
    compute,
    in_chunk,
    kept_chunks,
    kept_showers,
    pool_limit_for,
)

if TYPE_CHECKING:
    from pointcalo.metrics.point_classifier import PointSample

Log = Callable[[str], None]


def _pooled_profiles(obs: Observables) -> dict[str, Pooled]:
    """Energy-weighted layer index and ring radius per shower, as pooled distributions."""
    out = {}
    centres = 0.5 * (obs.radial_edges[1:] + obs.radial_edges[:-1])
    for name, key, x in (
        ("longitudinal", "layer_energy", np.arange(obs.profiles["layer_energy"].shape[1])),
        ("radial", "radial_energy", centres),
    ):
        prof = obs.profiles[key]
        n, k = prof.shape
        out[name] = Pooled(
            np.tile(x.astype(np.float64), n), np.repeat(np.arange(n), k), prof.reshape(-1)
        )
    if "pair_correlation" in obs.profiles:
        from pointcalo.metrics.point_structure import PAIR_CENTRES_LOG10

        prof = obs.profiles["pair_correlation"]
        n, k = prof.shape
        out["pair_distance"] = Pooled(
            np.tile(PAIR_CENTRES_LOG10, n), np.repeat(np.arange(n), k), prof.reshape(-1)
        )
    return out


def compare(
    ref: Observables,
    gen: Observables,
    *,
    k: int = 5,
    seed: int = 0,
    size: int,
    limit: int | None = None,
) -> dict:
    """All distances of ``gen`` against ``ref`` with ``size`` showers per batch; the
    classifiers see at most ``limit`` showers per class (a floor of two large reference
    halves is measured with as many showers as the generated sample's test it floors)."""
    out: dict[str, Any] = {"w1x100": {}, "separation_power": {}}
    for name in SCALARS:
        if name in ref.scalars and name in gen.scalars:
            r, g = ref.scalars[name], gen.scalars[name]
            out["w1x100"][name] = dist.w1(r, g, k=k, size=size, seed=seed)
            out["separation_power"][name] = dist.separation_power(r, g, k=k, size=size, seed=seed)
    pooled_r = {**ref.pooled, **_pooled_profiles(ref)}
    pooled_g = {**gen.pooled, **_pooled_profiles(gen)}
    for name in pooled_r:
        if name in pooled_g:
            r, g = pooled_r[name], pooled_g[name]
            for side, p in (("reference", r), ("generated", g)):
                if len(p.values) == 0 or (p.weights is not None and not np.any(p.weights > 0)):
                    raise EmptySampleError(f"{side} showers have no {name} to compare")
            out["w1x100"][name] = dist.w1(
                r.values,
                g.values,
                ref_owner=r.owner,
                gen_owner=g.owner,
                ref_weights=r.weights,
                gen_weights=g.weights,
                n_ref=ref.n_showers,
                n_gen=gen.n_showers,
                k=k,
                size=size,
                seed=seed,
            )
    # FPD / KPD on the few global features (a Frechet distance needs many more showers than
    # features); the classifier on the per-layer features (the headline) and on the global ones
    layer_r, layer_g, out["features"] = _common_features(ref, gen, "per_layer")
    out["classifier_auc"] = classifier_auc(layer_r, layer_g, seed=seed, limit=limit)
    fr, fg, out["features_global"] = _common_features(ref, gen, "global")
    out["fpd"] = dist.fpd(fr, fg, seed=seed)
    out["kpd"] = dist.kpd(fr, fg, size=min(1000, size * k), seed=seed)
    out["classifier_auc_global"] = classifier_auc(fr, fg, seed=seed, limit=limit)
    # conditions both samples carry and that vary (a constant one, e.g. zero at normal
    # incidence, tells nothing)
    names = sorted(
        k for k in set(ref.conditions) & set(gen.conditions) if np.ptp(ref.conditions[k]) > 0
    )
    if names:  # the per-layer features with the showers' conditions as inputs: a sample that
        # has the right marginals but ignores a condition (its shapes do not follow the angle)
        # fails this one
        fr, fg = (
            np.concatenate([f, *(CONDITIONS[k].encode(o.conditions[k]) for k in names)], 1)
            for f, o in ((layer_r, ref), (layer_g, gen))
        )
        out["classifier_auc_conditioned"] = classifier_auc(fr, fg, seed=seed, limit=limit)
        out["conditions"] = names
    if ref.voxels is not None and gen.voxels is not None:
        # log(1 + E/MeV) tames the dynamic range of cell energies; voxels that almost never
        # hold energy in either sample are dropped (most of a 30x30x30 grid: the classifier's
        # cost grows with the voxels it is given)
        keep = voxels_in_use(ref.voxels, gen.voxels)
        out["voxel_classifier_auc"] = classifier_auc(
            np.log1p(ref.voxels[:, keep]), np.log1p(gen.voxels[:, keep]), seed=seed,
            max_iter=100, limit=limit,
        )  # fmt: skip
    return out


class EmptySampleError(PointcaloError):
    """A sample has nothing to compare in one observable (no cell above the threshold inside
    the grid: an untrained model, or showers on another grid)."""


def _common_features(
    ref: Observables, gen: Observables, kind: str
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The feature matrices of ``ref`` and ``gen`` restricted to the features both have."""
    fr, names = ref.feature_matrix(kind)
    fg, names_g = gen.feature_matrix(kind)
    common = [i for i, n in enumerate(names) if n in names_g]
    fg = fg[:, [names_g.index(names[i]) for i in common]]
    return fr[:, common], fg, [names[i] for i in common]


def voxels_in_use(ref: np.ndarray, gen: np.ndarray, min_fraction: float = 0.005) -> np.ndarray:
    """``[V]`` mask of the voxels holding energy in at least ``min_fraction`` of the showers of
    ``ref [N, V]`` or of ``gen [M, V]`` (a voxel lit only by the generated showers is kept:
    that alone tells them apart)."""
    return ((ref > 0).mean(0) >= min_fraction) | ((gen > 0).mean(0) >= min_fraction)


def _check_compatible(ref: Observables, gen: Observables) -> None:
    if ref.grid != gen.grid:
        raise PointcaloError(
            f"reference is on grid '{ref.grid.name}' but generated on '{gen.grid.name}': "
            "project both onto the same grid"
        )
    if ref.threshold != gen.threshold:
        raise PointcaloError(f"cell thresholds differ: {ref.threshold} MeV vs {gen.threshold} MeV")
    for side, obs in (("reference", ref), ("generated", gen)):
        units = obs.meta.get("units")
        if units is not None and "MeV" not in str(units):
            raise PointcaloError(f"{side}: units '{units}' are not MeV / mm")


def evaluate(
    reference: ak.Array | Observables,
    generated: ak.Array | Observables,
    *,
    grid: vx.Grid | str = "ild",
    threshold: float = 0.1,
    k: int = 5,
    seed: int = 0,
    out: str | os.PathLike[str] | None = None,
    log: Log | None = None,
    labels: tuple[str, str] = ("reference", "generated"),
    voxel_classifier: bool = False,
    train: ak.Array | Observables | None = None,
    points: tuple[PointSample, PointSample] | None = None,
    floor_cache: dict | None = None,
) -> dict[str, Any]:
    """Compare generated with reference showers (or precomputed observables).

    Args:
        grid, threshold: grid and cell threshold (MeV) of the observables.
        k: batches for the uncertainties (W1, separation power).
        seed: seed of every random choice (halves, batches, classifier folds).
        out: folder for metrics.json, summary.md and PNGs (nothing written if None).
        log: progress messages (default: silent).
        voxel_classifier: also train the classifier on the voxels themselves (slow on large
            grids; needs showers, or observables computed with ``keep_voxels=True``).
        train: the model's training showers (or their observables): adds the memorisation
            check (:mod:`pointcalo.metrics.memorisation`) of generated against reference
            showers.
        points: point samples (:func:`pointcalo.metrics.point_classifier.point_sample`) of
            the reference and the generated showers, in the order of their observables: adds
            the graph-network classifier test on the raw points
            (:mod:`pointcalo.metrics.point_classifier`), generated vs reference half A and
            half B vs half A (its floor).
        floor_cache: a dict kept between calls with the same reference, seed and ``k``
            (:func:`pointcalo.metrics.compare.compare_samples` keeps one): the floors are
            computed once and reused, not once per generated sample.

    Returns:
        The metrics as a dict; each distance is ``[value, uncertainty]`` under ``generated``
        and ``floor``.
    """
    log = log or (lambda msg: None)
    if k < 1:
        raise PointcaloError(f"evaluate: k (batches) must be >= 1, got {k}")
    grid = vx.load_grid(grid)
    obs = []
    for side, data in (("reference", reference), ("generated", generated)):
        if isinstance(data, Observables):
            obs.append(data)
        else:
            log(f"observables of {side} ({len(data)} showers) on {grid.name}")
            obs.append(compute(data, grid=grid, threshold=threshold, keep_voxels=voxel_classifier))
    ref, gen = obs
    _check_compatible(ref, gen)
    rng = np.random.default_rng(seed)
    perm = rng.permutation(ref.n_showers)
    half_a, half_b = (
        ref.subset(np.sort(perm[: ref.n_showers // 2])),
        ref.subset(np.sort(perm[ref.n_showers // 2 :])),
    )
    size = dist.batch_size(min(half_a.n_showers, half_b.n_showers), gen.n_showers, k)
    log(f"distances: generated vs reference half A, {k} batches of {size} showers")
    try:
        vs_gen = compare(half_a, gen, k=k, seed=seed, size=size)
    except EmptySampleError as err:
        raise PointcaloError(
            f"{labels[1]}: {err} (is any of its energy above {threshold} MeV inside grid "
            f"'{gen.grid.name}'?)"
        ) from None
    cache = floor_cache if floor_cache is not None else {}
    limit = min(half_a.n_showers, gen.n_showers)  # the classifiers' showers per class
    if ("distances", size, limit) not in cache:
        log("distances: reference half B vs half A (the floor)")
        cache[("distances", size, limit)] = compare(
            half_a, half_b, k=k, seed=seed, size=size, limit=limit
        )
    floor = cache[("distances", size, limit)]
    metrics: dict[str, Any] = {
        "grid": grid.name,
        "alignment": ref.meta.get("alignment", "centred"),
        "threshold_MeV": threshold,
        "n_reference": ref.n_showers,
        "n_generated": gen.n_showers,
        "n_in_files": [int(o.meta.get("n_showers_in_file", o.n_showers)) for o in (ref, gen)],
        "batches": k,
        "showers_per_batch": size,
        "seed": seed,
        "labels": list(labels),
        "features": vs_gen["features"],
        "features_global": vs_gen["features_global"],
    }
    for family in ("w1x100", "separation_power"):
        metrics[family] = {
            name: {"generated": list(vs_gen[family][name]), "floor": list(floor[family][name])}
            for name in vs_gen[family]
        }
    for name in ("fpd", "kpd", "classifier_auc", "classifier_auc_global", "voxel_classifier_auc"):
        if name in vs_gen:
            metrics[name] = {"generated": list(vs_gen[name]), "floor": list(floor[name])}
    if "classifier_auc_conditioned" in vs_gen and "classifier_auc_conditioned" in floor:
        metrics["classifier_auc_conditioned"] = {
            "generated": list(vs_gen["classifier_auc_conditioned"]),
            "floor": list(floor["classifier_auc_conditioned"]),
            "conditions": vs_gen["conditions"],
        }
    if points is not None:
        from pointcalo.metrics.point_classifier import point_classifier_auc

        ref_pts, gen_pts = points
        if ref_pts.n_showers != ref.n_showers or gen_pts.n_showers != gen.n_showers:
            raise PointcaloError(
                f"point samples have {ref_pts.n_showers} / {gen_pts.n_showers} showers, "
                f"observables {ref.n_showers} / {gen.n_showers}"
            )
        pa = ref_pts.subset(np.sort(perm[: ref.n_showers // 2]))
        pb = ref_pts.subset(np.sort(perm[ref.n_showers // 2 :]))
        log("point classifier (EdgeConv on raw points): generated vs reference half A")
        pc_gen = point_classifier_auc(pa, gen_pts, seed=seed, log=log)
        if "points" not in cache:
            log("point classifier: reference half B vs half A (the floor)")
            cache["points"] = point_classifier_auc(pa, pb, seed=seed, log=log)
        pc_floor = cache["points"]
        metrics["point_classifier_auc"] = {
            "generated": [pc_gen["auc"], pc_gen["auc_std"]],
            "floor": [pc_floor["auc"], pc_floor["auc_std"]],
            "points_per_shower": pc_gen["points_per_shower"],
            "seconds": pc_gen["seconds"] + pc_floor["seconds"],
            "showers_per_class": [pc_gen["showers"], pc_floor["showers"]],
        }
    memo = None
    if train is not None:
        from pointcalo.metrics.memorisation import memorisation

        if not isinstance(train, Observables):
            log(f"observables of the training showers ({len(train)})")
            train = compute(train, grid=grid, threshold=threshold)
        _check_compatible(ref, train)
        memo = memorisation(train, ref, gen)
        metrics["memorisation"] = {k: v for k, v in memo.items() if not isinstance(v, np.ndarray)}
    if out is not None:
        from pointcalo.io.atomic import write_json
        from pointcalo.metrics.plots import all_plots

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        log("plots")
        metrics["plots"] = all_plots(ref, gen, out, labels)
        if memo is not None:
            from pointcalo.metrics.plots import memorisation_plot

            metrics["plots"].append(memorisation_plot(memo, out / "memorisation.png").name)
        write_json(metrics, out / "metrics.json")
        write_markdown(metrics, out / "summary.md")
        log(f"wrote {out / 'metrics.json'} and {out / 'summary.md'}")
    return metrics


def _fmt(v: list[float], scale: float = 1.0, digits: int = 2) -> str:
    return f"{v[0] * scale:.{digits}f} ± {v[1] * scale:.{digits}f}"


def markdown_table(metrics: dict[str, Any]) -> str:
    """The summary table: each distance of generated beside the reference floor."""
    gen_label = metrics.get("labels", ["reference", "generated"])[1]
    lines = [
        f"| observable | W1 x100 ({gen_label}) | W1 x100 floor | separation power "
        f"({gen_label}) | separation power floor |",
        "|---|---|---|---|---|",
    ]
    sep = metrics["separation_power"]
    for name, w in metrics["w1x100"].items():
        s = sep.get(name)
        sep_cols = (
            f"{_fmt(s['generated'], digits=4)} | {_fmt(s['floor'], digits=4)}" if s else "– | –"
        )
        lines.append(f"| {name} | {_fmt(w['generated'])} | {_fmt(w['floor'])} | {sep_cols} |")
    lines += [
        "",
        "| metric | " + gen_label + " | floor |",
        "|---|---|---|",
        f"| FPD | {_fmt(metrics['fpd']['generated'], digits=4)} | "
        f"{_fmt(metrics['fpd']['floor'], digits=4)} |",
        f"| KPD | {_fmt(metrics['kpd']['generated'], digits=5)} | "
        f"{_fmt(metrics['kpd']['floor'], digits=5)} |",
        f"| classifier AUC (per-layer features) | "
        f"{_fmt(metrics['classifier_auc']['generated'], digits=3)} | "
        f"{_fmt(metrics['classifier_auc']['floor'], digits=3)} |",
    ]
    if "classifier_auc_global" in metrics:
        v = metrics["classifier_auc_global"]
        lines.append(
            f"| classifier AUC (global features, earlier versions) | "
            f"{_fmt(v['generated'], digits=3)} | {_fmt(v['floor'], digits=3)} |"
        )
    if "voxel_classifier_auc" in metrics:
        v = metrics["voxel_classifier_auc"]
        lines.append(
            f"| classifier AUC on voxels | {_fmt(v['generated'], digits=3)} | "
            f"{_fmt(v['floor'], digits=3)} |"
        )
    if "point_classifier_auc" in metrics:
        v = metrics["point_classifier_auc"]
        lines.append(
            f"| point classifier AUC (EdgeConv, {v['points_per_shower']} points per shower) | "
            f"{_fmt(v['generated'], digits=3)} | {_fmt(v['floor'], digits=3)} |"
        )
    if "memorisation" in metrics:
        m = metrics["memorisation"]
        lines.append(
            f"| memorisation: median distance to training, generated / reference | "
            f"{m['median_ratio']:.3f} | 1 |"
        )
        lines.append(
            f"| memorisation: generated closer to training than any reference shower | "
            f"{100 * m['fraction_closer']:.1f} % | 0 % |"
        )
    return "\n".join(lines)


def _subset_note(metrics: dict[str, Any]) -> str:
    """`` (a fixed random subset of 325000 / 3250 in the files)`` when a file was capped."""
    used = (metrics["n_reference"], metrics["n_generated"])
    files = metrics.get("n_in_files", used)
    if list(files) == list(used):
        return ""
    return f" (a fixed random subset of the files' {files[0]} / {files[1]}: --max-showers)"


def write_markdown(metrics: dict[str, Any], path: Path) -> None:
    from pointcalo.io.atomic import atomic_path

    text = [
        "# pointcalo evaluation",
        "",
        f"Grid `{metrics['grid']}` ({metrics.get('alignment', 'centred')} on the shower axis), "
        f"cell threshold {metrics['threshold_MeV']} MeV; "
        f"{metrics['n_reference']} reference and {metrics['n_generated']} generated showers"
        f"{_subset_note(metrics)}; uncertainties from {metrics['batches']} batches of "
        f"{metrics['showers_per_batch']} showers (seed {metrics['seed']}). The floor "
        "compares two disjoint halves of the reference with the same batch size.",
        "",
        markdown_table(metrics),
        "",
        "Per-layer features (the classifier's headline): " + ", ".join(metrics["features"]),
        "",
        "Global features (FPD, KPD, the global classifier): "
        + ", ".join(metrics.get("features_global", [])),
        "",
        *(f"![{p}]({p})" for p in metrics.get("plots", [])),
        "",
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(text))


def check_voxels(path: Path, energy: np.ndarray, voxels: np.ndarray) -> None:
    """CaloChallenge voxel files are held to the same rules as point files: incident energies
    positive and finite, voxel energies finite and non-negative."""
    energy = np.asarray(energy)
    if energy.dtype.kind not in "fiu":
        raise ShowerFormatError(path, "incident_energies", f"must hold numbers, got {energy.dtype}")
    if not np.all(np.isfinite(energy)) or np.any(energy <= 0):
        raise ShowerFormatError(path, "incident_energies", "must be positive and finite")
    for start in range(0, len(voxels), 4096):  # chunked: bounded memory
        v = np.asarray(voxels[start : start + 4096])
        if not np.all(np.isfinite(v)):
            raise ShowerFormatError(path, "showers", "non-finite voxel energies")
        if np.any(v < 0):
            raise ShowerFormatError(path, "showers", "negative voxel energies")


def load_observables(
    path: str | os.PathLike[str],
    grid: vx.Grid,
    threshold: float,
    log: Log | None = None,
    keep_voxels: bool = False,
    chunk_size: int = 512,
    *,
    alignment: str = "centred",
    alignment_seed: int = 0,
    lattice: float | None = None,
    point_structure: bool = True,
    max_showers: int | None = MAX_SHOWERS,
) -> Observables:
    """Observables of a file: a shower file (HDF5/ROOT points, projected onto ``grid``) or a
    CaloChallenge-layout voxel file (``incident_energies``, ``showers``) already on ``grid``.
    ``alignment``, ``alignment_seed``, ``lattice``, ``point_structure``: as in
    :func:`pointcalo.metrics.observables.compute` (voxel files: ``centred`` only).
    ``max_showers``: a file with more showers is evaluated on a fixed uniform random subset of
    that many (:func:`~pointcalo.metrics.observables.kept_showers`; None or 0: all of them);
    ``meta["n_showers_in_file"]`` says how many it has.

    The file is streamed ``chunk_size`` showers at a time and only the per-shower observables
    (and a bounded sample of cell and point energies per shower) are kept, so memory is bounded
    by the chunk and ``max_showers``, not the file: files larger than memory work, and pooled
    cell and point energies are capped per file (:func:`pool_limit_for`)."""
    import h5py

    from pointcalo import io
    from pointcalo.metrics.observables import concat

    path = Path(path)
    is_voxels = False
    units = None
    if path.suffix.lower() in (".h5", ".hdf5", ".hdf") and path.exists() and h5py.is_hdf5(path):
        with h5py.File(path) as f:
            is_voxels = "showers" in f and "incident_energies" in f
            units = f.attrs.get("units")
            file_grid = f.attrs.get("grid")
            n_rows = len(f["incident_energies"]) if is_voxels else 0
    parts: list[Observables] = []
    if is_voxels:
        from voxelize.calochallenge_files import read_calochallenge

        if alignment != "centred":
            raise ShowerFormatError(
                path, "showers", f"voxels are on their grid already: no '{alignment}' alignment"
            )
        if file_grid is not None and str(file_grid) != grid.name:
            raise ShowerFormatError(
                path, "grid", f"voxels are on grid '{file_grid}', evaluation is on '{grid.name}'"
            )
        kept = kept_showers(n_rows, max_showers)
        limit = pool_limit_for(n_rows if kept is None else len(kept))
        used = 0
        for start in range(0, max(n_rows, 1), chunk_size):
            try:
                energy, voxels = read_calochallenge(path, grid, start, start + chunk_size)
            except vx.GridError as err:
                raise PointcaloError(str(err)) from None
            except (ValueError, TypeError):
                raise ShowerFormatError(path, "incident_energies", "must hold numbers") from None
            check_voxels(path, energy, voxels)
            sel = in_chunk(kept, start, len(energy))
            if sel is not None:
                energy, voxels = energy[sel], voxels[sel]
            parts.append(
                compute(
                    voxels=voxels,
                    incident_energy=energy,
                    grid=grid,
                    threshold=threshold,
                    keep_voxels=keep_voxels,
                    pool_limit=limit,
                    first_index=used,
                )
            )
            used += len(energy)
        n_file = n_rows
    else:
        with io.open_reader(path) as reader:
            n_file = reader.n_showers
            kept = kept_showers(n_file, max_showers)
            limit = pool_limit_for(n_file if kept is None else len(kept))
            if log:
                of = "" if kept is None else f"{len(kept)} drawn at random of "
                log(f"observables of {path} ({of}{n_file} showers) on {grid.name}")
            for chunk, used in kept_chunks(reader, kept, chunk_size):
                try:
                    obs = compute(
                        chunk,
                        grid=grid,
                        threshold=threshold,
                        keep_voxels=keep_voxels,
                        pool_limit=limit,
                        first_index=used,
                        alignment=alignment,
                        alignment_seed=alignment_seed,
                        lattice=lattice,
                        point_structure=point_structure,
                    )
                except vx.GridError as err:
                    raise ShowerFormatError(path, "points/layer", str(err)) from None
                parts.append(obs)
    if not parts:
        raise ShowerFormatError(path, None, "no showers")
    obs = concat(parts)
    obs.meta["n_showers_in_file"] = n_file
    if units is not None:
        obs.meta["units"] = units.decode() if isinstance(units, bytes) else str(units)
    return obs
