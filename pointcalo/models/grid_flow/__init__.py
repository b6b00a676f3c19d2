"""CaloFlow-style grid model: a flow for the layer energies and a flow for each layer's
normalised voxels given the previous layer, trained by the engine on showers projected onto
the grid; generation as every grid family (:mod:`pointcalo.models.voxels`)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pointcalo.models.grid_flow.config import GridFlowConfig
from pointcalo.models.grid_flow.model import GridFlow
from pointcalo.models.optim import adam
from pointcalo.models.registry import Family
from pointcalo.models.voxels import GridTaskBase, generate_grid
from pointcalo.streams import cloud_generators


class GridFlowTask(GridTaskBase):
    """Training of the layer flows by maximum likelihood on dequantised voxel energies."""

    def __init__(self, cfg, n_features: int, mean_points: float, data=None) -> None:
        super().__init__(cfg, data)
        self.cfg = cfg
        self.model = GridFlow(cfg.model, self.shape)
        self.model.set_scale(self.scale)
        g = torch.Generator().manual_seed(cfg.train.seed)
        e = self._layers(self.voxels)
        e = e + cfg.model.noise * torch.rand(e.shape, generator=g)
        self.model.flows.fit(e, torch.from_numpy(data.condition).float(), self.scale)

    def units(self, voxels: np.ndarray) -> np.ndarray:
        """The flows train on energies (MeV), not on network units."""
        return voxels.astype(np.float32, copy=False)

    def _layers(self, e: torch.Tensor) -> torch.Tensor:
        """``[B, L, V]`` view of ``[B, L, H, W]`` energies."""
        return e.reshape(e.shape[0], self.shape[0], -1)

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        t = self.cfg.train
        return {"flow": adam(self.model.flows.parameters(), t.lr, t.betas)}

    def ema_target(self) -> nn.Module:
        return self.model.flows

    def wrap(self, wrap) -> None:
        """Nothing goes through DDP (the likelihood is not a ``forward``): ``step`` averages
        the gradients over the processes by hand (``ctx.all_reduce``)."""

    def step(self, batch, ctx, opts) -> dict:
        e, c = self.rows(ctx)
        e = self._layers(e)
        gens = cloud_generators(ctx.keys)
        noise = torch.stack([torch.rand(e[0].shape, generator=g) for g in gens]).to(e.device)
        loss = self.model.flows.nll(e + self.cfg.model.noise * noise, c)
        ctx.update(loss, self.model.flows, "flow")
        return {"loss": loss.item()}


def _build(cfg, meta, normalizer) -> GridFlow:
    return GridFlow(cfg.model, tuple(meta["grid_shape"]))


FAMILY = Family(
    name="grid_flow",
    config=GridFlowConfig,
    task=GridFlowTask,
    build=_build,
    sampling_net=lambda model: model.flows,
    generate=generate_grid,
    point_output=False,
)

__all__ = ["FAMILY", "GridFlow", "GridFlowConfig", "GridFlowTask"]
