"""Layer-by-layer grid flow configuration (``model:`` section)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pointcalo.models.voxels import GridModelConfig


class GridFlowConfig(GridModelConfig):
    """Sizes of the two normalising flows (neural spline flows with coupling transforms, zuko):
    ``transforms`` transforms of ``hidden`` units each; ``noise`` (MeV): the uniform noise
    added to every voxel in training (dequantisation, as CaloFlow), below ``e_min``."""

    name: Literal["grid_flow"] = "grid_flow"
    transforms: int = Field(3, ge=1)
    hidden: int = Field(64, ge=1)
    noise: float = Field(0.005, gt=0)
    alpha: float = Field(1e-6, gt=0, lt=0.5)
