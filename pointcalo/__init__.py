"""pointcalo: generative models of calorimeter showers as point clouds.

The data model lives in :mod:`pointcalo.showers`, file formats in :mod:`pointcalo.io`.
"""

from __future__ import annotations

from pointcalo.errors import PointcaloError, ShowerFormatError
from pointcalo.showers import (
    PointBatch,
    from_torch,
    make_showers,
    summary,
    to_torch,
    validate,
)

__version__ = "0.1.0"

__all__ = [
    "PointBatch",
    "PointcaloError",
    "ShowerFormatError",
    "__version__",
    "from_torch",
    "make_showers",
    "summary",
    "to_torch",
    "validate",
]
