"""Evaluating shower files: what ``pointcalo evaluate`` and ``pointcalo compare`` do with the
paths they are given (observables of each file on each view of the grid, the optional
memorisation and point-classifier inputs), before the metrics of :mod:`.report` and
:mod:`.compare` score them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import voxelize
from pointcalo.errors import PointcaloError
from pointcalo.io.calochallenge import voxel_file_grid
from pointcalo.metrics.alignment import ALIGNMENTS, file_lattice
from pointcalo.metrics.report import load_observables


def grid_named(option: str, spec: str) -> voxelize.Grid:
    """The voxelize grid ``spec`` names (a preset or a file); an unknown or malformed grid is
    a one-line error naming ``option``."""
    try:
        return voxelize.load_grid(spec)
    except voxelize.GridError as err:
        raise PointcaloError(f"{option}: {err}") from None


@dataclass(frozen=True)
class PointClassifierInput:
    """How the point classifier samples each shower: ``points`` per shower, nearest the axis
    (``core``: whole neighbourhoods) or ``uniform``."""

    points: int = 256
    mode: str = "core"

    def samples(self, paths: dict[str, str], seed: int) -> dict:
        """Its input of each file (torch-geometric only when asked for)."""
        from pointcalo.metrics.point_classifier import point_sample_file

        return {
            k: point_sample_file(p, self.points, seed, mode=self.mode) for k, p in paths.items()
        }


def evaluate_files(
    reference: str,
    generated: str,
    *,
    grid: str = "ild",
    threshold: float = 0.1,
    batches: int = 5,
    seed: int = 0,
    out: str = "runs/evaluate",
    alignment: str = "centred",
    voxel_classifier: bool = False,
    train: str | None = None,
    point_classifier: PointClassifierInput | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """``pointcalo evaluate``: one generated file against a reference on one view of ``grid``
    (``alignment`` of the grid to the shower axis); writes the report into ``out`` and
    returns its metrics (:func:`pointcalo.metrics.report.evaluate`)."""
    from pointcalo.metrics.report import evaluate

    g = grid_named("--grid", grid)
    lattice = file_lattice(reference, g) if alignment != "centred" else None
    view = {"alignment": alignment, "alignment_seed": seed, "lattice": lattice}
    keep = voxel_classifier
    ref = load_observables(reference, g, threshold, log, keep_voxels=keep, **view)
    gen = load_observables(generated, g, threshold, log, keep_voxels=keep, **view)
    tr = load_observables(train, g, threshold, log) if train is not None else None
    points = None
    if point_classifier is not None:
        samples = point_classifier.samples({"r": reference, "g": generated}, seed)
        points = (samples["r"], samples["g"])
    return evaluate(
        ref, gen, grid=g, threshold=threshold, k=batches, seed=seed, out=out, log=log,
        labels=(reference, generated), train=tr, points=points,
    )  # fmt: skip


def compare_files(
    reference: str,
    generated: list[str],
    *,
    labels: list[str] | None = None,
    speed: dict[str, float] | None = None,
    grid: str = "ild",
    threshold: float = 0.1,
    batches: int = 5,
    seed: int = 0,
    out: str = "runs/compare",
    alignments: list[str] = ("centred", "half-cell", "random"),
    extra_grids: str = "auto",
    voxel_classifier: bool = False,
    train: str | None = None,
    point_classifier: PointClassifierInput | None = None,
    reference_label: str = "the reference",
    by: tuple[str, list[float]] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """``pointcalo compare``: several generated files against one reference on every view
    (each of ``alignments`` of ``grid`` to the shower axis, plus ``extra_grids``: presets or
    files, ``auto`` the cylindrical grid beside ILD's); the headline is each sample's worst
    view (:func:`pointcalo.metrics.compare.compare_views`). Voxel files are evaluated on their
    own grid only, point-level metrics on the centred view. ``by``: ``(field, bin edges)``
    repeats the comparison per bin of a per-shower field (:mod:`pointcalo.metrics.bins`)."""
    from pointcalo.metrics.compare import compare_views

    labels = list(labels) if labels else list(generated)
    if len(labels) != len(generated):
        raise PointcaloError(f"--labels: {len(labels)} labels for {len(generated)} files")
    if len(set(labels)) != len(labels):
        raise PointcaloError(f"--labels: each label must be unique, got {','.join(labels)}")
    bad = [a for a in alignments if a not in ALIGNMENTS]
    if bad or not alignments:
        raise PointcaloError(f"--alignments: '{','.join(alignments)}': use {','.join(ALIGNMENTS)}")
    g = grid_named("--grid", grid)
    if extra_grids == "auto":
        extra_grids = "ild-cylindrical" if g.name == "ild" else "none"
    names = [] if extra_grids == "none" else extra_grids.split(",")
    extra = [grid_named("--extra-grids", name) for name in names]
    alignments = list(alignments)
    if voxel_file_grid(reference) is not None:
        alignments, extra = ["centred"], []
    lattice = None
    if alignments != ["centred"]:
        lattice = file_lattice(reference, g)
        log(
            f"random alignment on the data lattice of {lattice:.4g} mm"
            if lattice
            else "random alignment: continuous offsets (the reference is on no lattice)"
        )
    plan = [(f"{g.name}, {a}", g, a) for a in alignments] + [(e.name, e, "centred") for e in extra]
    kinds = {label: voxel_file_grid(path) for label, path in zip(labels, generated, strict=True)}
    views = {}
    for view, vg, alignment in plan:
        log(f"observables on view '{view}'")

        def load(path: str, vg=vg, alignment=alignment):
            return load_observables(
                path, vg, threshold, log, keep_voxels=voxel_classifier, alignment=alignment,
                alignment_seed=seed, lattice=lattice,
                point_structure=alignment == "centred" and vg is g,
            )  # fmt: skip

        samples = {
            label: load(path)
            for label, path in zip(labels, generated, strict=True)
            if kinds[label] is None or (alignment == "centred" and kinds[label] in ("", vg.name))
        }
        if samples:
            views[view] = (load(reference), samples)
    if not views:
        raise PointcaloError("compare: no generated file can be evaluated on --grid")
    tr = None
    if train:
        tr = load_observables(train, g, threshold, point_structure=False)
    points = None
    if point_classifier is not None:
        paths = {"reference": reference}
        paths |= {lab: p for lab, p in zip(labels, generated, strict=True) if kinds[lab] is None}
        points = point_classifier.samples(paths, seed)
    result = compare_views(
        views, train=tr, k=batches, seed=seed, speed=speed or {}, out=out, log=log,
        points=points, reference_label=reference_label,
    )  # fmt: skip
    if by is not None:  # the same, per bin of a per-shower field
        from pathlib import Path

        from pointcalo.io.atomic import atomic_path, write_json
        from pointcalo.metrics.bins import bins_table, compare_by_bins, field_values

        name, edges = by
        values = {"reference": field_values(reference, name)}
        values |= {lab: field_values(p, name) for lab, p in zip(labels, generated, strict=True)}
        result["by"] = compare_by_bins(
            views, values, name, edges, k=batches, seed=seed, log=log,
            reference_label=reference_label,
        )  # fmt: skip
        if out is not None:
            write_json(result, Path(out) / "compare.json")
            with atomic_path(Path(out) / f"by_{name}.md") as tmp:
                tmp.write_text(bins_table(result["by"]) + "\n")
    return result
