"""What the stage-2 families of the two-stage latent models share (``grid_gpt`` on a grid
VQ-VAE's tokens, ``point_gpt`` on a point VQ-VAE's): a training task whose only trained module
is the GPT (``model.gpt``: :class:`pointcalo.nn.gpt.CausalGPT`), the frozen stage 1 beside it."""

from __future__ import annotations

import torch
from torch import nn

from pointcalo.config import validate_config
from pointcalo.errors import ConfigError
from pointcalo.models.optim import adam
from pointcalo.models.registry import TaskBase


class GPTTaskBase(TaskBase):
    """One Adam optimiser (``gpt``) over ``self.model.gpt``, which the EMA follows; nothing
    goes through DDP (the engine averages the gradients, ``ctx.update``). Subclasses call
    :meth:`load_stage1`, set ``model`` and define ``step``."""

    cfg: object
    model: nn.Module

    def load_stage1(self, cfg, data, family: str):
        """Set ``cfg`` and the meta that rebuilds stage 1 (its config and meta); return the
        stage-1 checkpoint ``cfg.model.stage1``, a ``family`` model with its EMA weights in
        place (:func:`pointcalo.generation.load_stage`). A run without shower data is
        refused."""
        if data is None:
            raise ConfigError(f"{cfg.model.name} trains on shower data (data.path or simulated)")
        from pointcalo.generation import load_stage  # the framework, loaded late

        self.cfg = cfg
        loaded = load_stage(cfg.model.stage1, family)
        self.meta = {
            "stage1_config": loaded.cfg.model_dump(mode="json"),
            "stage1_meta": dict(loaded.meta),
        }
        return loaded

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        t = self.cfg.train
        return {"gpt": adam(self.model.gpt.parameters(), t.lr, t.betas)}

    def ema_target(self) -> nn.Module:
        return self.model.gpt

    def wrap(self, wrap) -> None:
        """Nothing is wrapped."""


def stage1_of(meta) -> tuple[object, dict]:
    """The stage-1 ``model:`` config and meta a stage-2 checkpoint's ``meta`` holds."""
    s1_cfg = validate_config(meta["stage1_config"], source="stage-1 config")
    return s1_cfg.model, meta["stage1_meta"]
