"""Building a shower library with the engine: no optimisation, the checkpoint is the index."""

from __future__ import annotations

from pointcalo.models.library.model import ShowerLibrary
from pointcalo.models.registry import TaskBase


class LibraryTask(TaskBase):
    """Engine task of the library: every training cloud is stored; nothing is optimised."""

    def __init__(self, cfg, n_features: int, mean_points: float, data) -> None:
        self.cfg = cfg
        self.model = ShowerLibrary.from_data(data)
        self.meta = {
            "n_showers": len(data),
            "n_points": int(data.offsets[-1]),
            "library_conditions": list(self.model.conditions),
        }

    def optimizers(self) -> dict:
        return {}

    def ema_target(self) -> None:
        return None

    def wrap(self, wrap) -> None:
        pass

    def step(self, batch, ctx, opts) -> dict:  # pragma: no cover - never called
        raise RuntimeError("a shower library is not trained step by step")
