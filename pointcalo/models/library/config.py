"""Frozen-shower library configuration (``model:`` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pointcalo.config import ModelConfig


class LibraryConfig(ModelConfig):
    """A frozen-shower library: for each requested incident energy one of the ``k`` stored
    showers nearest in energy is drawn at random and, with ``scale``, its point energies are
    multiplied by the ratio of requested to stored incident energy. With named conditions
    (``data.conditions``) the stored showers are the nearest in condition space and, with
    ``transform``, rotated to the requested azimuth and moved to the requested impact point
    (:mod:`pointcalo.models.library.generate`)."""

    name: Literal["library"] = "library"
    k: int = Field(5, ge=1)
    scale: bool = True
    transform: bool = True
