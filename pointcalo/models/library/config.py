"""Frozen-shower library configuration (``model:`` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pointcalo.config import ModelConfig


class LibraryConfig(ModelConfig):
    """A frozen-shower library: for each requested incident energy one of the ``k`` stored
    showers nearest in energy is drawn at random and, with ``scale``, its point energies are
    multiplied by the ratio of requested to stored incident energy."""

    name: Literal["library"] = "library"
    k: int = Field(5, ge=1)
    scale: bool = True
