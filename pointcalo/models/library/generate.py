"""Drawing showers from a library: one of the ``k`` nearest stored showers per request, from
the shower's own random stream ``(seed, index)``, energies scaled by the energy ratio."""

from __future__ import annotations

from typing import Any

import numpy as np

from pointcalo import streams
from pointcalo.clouds import CPU_BATCH, GeneratedClouds, gather_index

#: Tag of a library draw: ``(seed, index, DRAW)``.
DRAW = 11


def generate_library(
    model,
    net,
    normalizer,
    condition: np.ndarray,
    cfg: Any,
    *,
    seed: int = 0,
    first_index: int = 0,
    device: Any = "cpu",
    batch_size: int = CPU_BATCH,
    sampler: str | None = None,
    steps: int | None = None,
) -> GeneratedClouds:
    """Showers for incident energies ``condition [N]`` (MeV); ``batch_size``, ``device``,
    ``sampler`` and ``steps`` do not apply."""
    m = cfg.model
    condition = np.asarray(condition, np.float64)
    near = model.nearest(condition, m.k)
    u = np.array(
        [
            streams.numpy_stream(seed, first_index + i, DRAW).integers(near.shape[1])
            for i in range(len(condition))
        ],
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
