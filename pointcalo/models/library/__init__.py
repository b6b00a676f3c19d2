"""Frozen-shower library: the fast-simulation baseline every generative model must beat.

``pointcalo train configs/library.yaml --data train.h5`` stores the training showers indexed
by incident energy and named conditions (:mod:`.model`, :mod:`.task`); ``pointcalo sample``
draws one of the ``k`` nearest stored showers per request, scales its energies and moves it
to the requested azimuth and impact point (:mod:`.generate`).
"""

from __future__ import annotations

from pointcalo.models.library.config import LibraryConfig
from pointcalo.models.library.generate import generate_library
from pointcalo.models.library.model import ShowerLibrary
from pointcalo.models.library.task import LibraryTask
from pointcalo.models.registry import Family


def _build(cfg, meta, normalizer) -> ShowerLibrary:
    return ShowerLibrary(
        int(meta["n_showers"]),
        int(meta["n_points"]),
        normalizer.spec.features,
        tuple(meta.get("library_conditions", ())),
    )


FAMILY = Family(
    name="library",
    config=LibraryConfig,
    task=LibraryTask,
    build=_build,
    sampling_net=lambda model: None,
    generate=generate_library,
    extra_conditions=True,
)

__all__ = ["FAMILY", "LibraryConfig", "LibraryTask", "ShowerLibrary", "generate_library"]
