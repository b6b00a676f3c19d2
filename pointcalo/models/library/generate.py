"""Drawing showers from a library: one of the ``k`` nearest stored showers per request, from
the shower's own random stream ``(seed, index)``, energies scaled by the energy ratio."""

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
    return GeneratedClouds(out_offsets, points, condition)
