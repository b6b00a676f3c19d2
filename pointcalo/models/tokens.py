"""What the stage-2 families of the two-stage latent models share (``grid_gpt`` on a grid
VQ-VAE's tokens, ``point_gpt`` on a point VQ-VAE's): a training task whose only trained module
is the GPT (``model.gpt``: :class:`pointcalo.nn.gpt.CausalGPT`), the frozen stage 1 beside it."""

from __future__ import annotations

import torch
from torch import nn

from pointcalo.models.optim import adam
from pointcalo.models.registry import TaskBase


class GPTTaskBase(TaskBase):
    """One Adam optimiser (``gpt``) over ``self.model.gpt``, which the EMA follows; nothing
    goes through DDP (the engine averages the gradients, ``ctx.update``). Subclasses set
    ``cfg`` and ``model`` and define ``step``."""

    cfg: object
    model: nn.Module

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        t = self.cfg.train
        return {"gpt": adam(self.model.gpt.parameters(), t.lr, t.betas)}

    def ema_target(self) -> nn.Module:
        return self.model.gpt

    def wrap(self, wrap) -> None:
        """Nothing is wrapped."""
