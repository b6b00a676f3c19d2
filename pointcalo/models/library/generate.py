"""Drawing showers from a library: one of the ``k`` nearest stored showers per request, from
the shower's own random stream ``(seed, index)``, energies scaled by the energy ratio.

With named conditions and ``transform`` (the default) the stored shower is also moved to the
request: rotated about its impact point by the difference of azimuth ``phi`` and translated by
the difference of impact point. Both are exact for a calorimeter of uniform planes (the
absorber and sensor layers; cells are only the readout), so azimuth and impact point are then
left out of the nearest-shower search and every stored shower serves every azimuth; the
rotated points leave the sensor lattice and are snapped back onto it by the validity rules
(:mod:`pointcalo.validity`), a quantisation of at most half a 0.848 mm sub-cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pointcalo import streams
from pointcalo.clouds import GeneratedClouds, gather_index
from pointcalo.models.registry import GenerationBatch

#: Tag of a library draw: ``(seed, index, DRAW)``.
DRAW = 11


def generate_library(model, net, normalizer, cfg: Any, batch: GenerationBatch) -> GeneratedClouds:
    """The family's ``generate``: showers for the incident energies ``batch.condition`` (MeV);
    device, sampler and steps do not apply."""
    m = cfg.model
    condition = batch.condition
    named = {k: v for k, v in batch.conditions.items() if k in model.conditions}
    moves = ("phi", "impact_x", "impact_y") if m.transform else ()
    if model.conditions:
        near = model.nearest_in_conditions(condition, named, m.k, ignore=moves)
    else:
        near = model.nearest(condition, m.k)
    u = np.array(
        [streams.numpy_stream(*key, DRAW).integers(near.shape[1]) for key in batch.keys],
        dtype=np.int64,
    )
    chosen = near[np.arange(len(condition)), u]
    offsets = model.offsets.numpy()
    counts = np.diff(offsets)[chosen]
    out_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    pts = model.points.numpy()[gather_index(offsets, chosen, counts)]
    ratio = condition / model.energy.numpy()[chosen] if m.scale else np.ones(len(condition))
    points: dict[str, np.ndarray] = {}
    for j, name in enumerate(model.features):
        col = pts[:, j]
        if name == "E":
            col = col * np.repeat(ratio, counts)
        if name == normalizer.spec.integer_feature:
            points[name] = np.rint(col).astype(np.int32)
        else:
            points[name] = col.astype(np.float32)
    if moves and model.conditions and "x" in points and "y" in points:
        _move(points, model, chosen, counts, named, cfg.data.frame == "impact")
    return GeneratedClouds(out_offsets, points, condition)


def _move(
    points: dict, model, chosen: np.ndarray, counts: np.ndarray, named: dict, impact_frame: bool
) -> None:
    """Rotate each drawn shower about its stored impact point by the requested minus stored
    azimuth, then translate it by the requested minus stored impact point (module docstring);
    conditions the library does not hold are left as they are. In the impact frame
    (``data.frame: impact``) the stored points are relative to their impact point already:
    rotate about the origin; the generation moves them to the requested impact point."""
    stored = {k: model.extra.numpy()[chosen, j] for j, k in enumerate(model.conditions)}
    zero = np.zeros(len(chosen))
    if impact_frame:
        stored = {k: v for k, v in stored.items() if k not in ("impact_x", "impact_y")}
    ix, iy = stored.get("impact_x", zero), stored.get("impact_y", zero)
    turn = named["phi"] - stored["phi"] if "phi" in stored else zero
    dx = named["impact_x"] - ix if "impact_x" in stored else zero
    dy = named["impact_y"] - iy if "impact_y" in stored else zero
    per_point = [np.repeat(v, counts) for v in (ix, iy, np.cos(turn), np.sin(turn), dx, dy)]
    cx, cy, c, s, tx, ty = per_point
    x = points["x"].astype(np.float64) - cx
    y = points["y"].astype(np.float64) - cy
    points["x"] = (c * x - s * y + cx + tx).astype(np.float32)
    points["y"] = (s * x + c * y + cy + ty).astype(np.float32)
