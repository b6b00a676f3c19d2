"""Two-stage latent models, stage 1: a VQ-VAE on a voxelize grid that turns showers into
tokens (:mod:`.model`); trained by the engine on showers projected onto the grid; generation
with the independent-code prior of stage 1 alone (a stage-2 prior over the tokens is to come).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

import voxelize as vx
from pointcalo.clouds import GeneratedClouds
from pointcalo.errors import ConfigError
from pointcalo.models.grid_vqvae.config import GridVQVAEConfig
from pointcalo.models.grid_vqvae.model import GridVQVAE
from pointcalo.models.optim import adam
from pointcalo.models.registry import Family, GenerationBatch
from pointcalo.models.voxels import GridTaskBase, grid_clouds, shower_seeds
from pointcalo.nn.vq import Quantizer


class GridVQVAETask(GridTaskBase):
    """Training of a grid VQ-VAE by the engine: one pixel-plus-commitment step per batch; the
    codebook and the token prior move as moving averages inside the step."""

    def __init__(self, cfg, n_features: int, mean_points: float, data=None) -> None:
        super().__init__(cfg, data)
        self.cfg = cfg
        if cfg.model.periodic and not isinstance(self.grid, vx.CylindricalGrid):
            raise ConfigError(
                f"model.periodic: grid '{self.grid.name}' is not cylindrical (no angular axis "
                "to wrap)"
            )
        n = len(data)
        raw = self.scale.decode(self.voxels.reshape(n, -1).numpy().astype(np.float64))
        total = raw.sum(1)
        shares = raw / np.maximum(total, 1e-30)[:, None]
        self.shares = torch.from_numpy(shares.astype(np.float32)).reshape(-1, *self.shape)
        self.model = GridVQVAE(cfg.model, self.shape, n)
        self.model.set_scale(self.scale)
        with torch.no_grad():  # the decoder starts from the mean training shower's shares
            mean = self.shares.mean(0).clamp(min=1e-12)
            self.model.decoder.bias.copy_(torch.log(mean))
        self.model.train_cond.copy_(self.c[:, 0])
        self.model.train_r.copy_(torch.from_numpy(total / np.asarray(data.condition)))
        self.meta = {**self.meta, "n_showers": n}

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        t, m = self.cfg.train, self.model
        return {"vqvae": adam([*m.encoder.parameters(), *m.decoder.parameters()], t.lr, t.betas)}

    def ema_target(self) -> nn.Module:
        return self.model.decoder

    def wrap(self, wrap) -> None:
        """Nothing goes through DDP: the engine averages the gradients (``ctx.update``)."""

    def step(self, batch, ctx, opts) -> dict:
        y, c = self.rows(ctx)
        index = torch.as_tensor(np.asarray(ctx.index), dtype=torch.int64)
        target = self.shares[index].to(ctx.device)
        g = torch.Generator().manual_seed(shower_seeds(ctx.keys[:1])[0])
        pick = torch.randperm(len(y) * self.model.n_tokens, generator=g).to(ctx.device)
        with ctx.amp:
            out = self.model.loss(y, c, target, pick)
        ctx.update(out["loss"], self.model, "vqvae")
        return {
            "loss": out["loss"].item(), "pixel": out["pixel"].item(), "kl": out["kl"].item(),
            "commit": out["commit"].item(), "codes_used": out["codes_used"],
        }  # fmt: skip


@torch.no_grad()
def generate_vqvae(
    model: GridVQVAE, net: nn.Module, normalizer, cfg: Any, batch: GenerationBatch
) -> GeneratedClouds:
    """The family's ``generate``: per shower, tokens drawn position by position from the token
    prior, R from one of the ``r_neighbours`` training showers nearest in energy, the decoder
    ``net`` (the EMA copy) to voxel shares, energies ``shares * R * E_inc`` (MeV); all from the
    shower's own stream."""
    m = cfg.model
    net.eval()
    gens = batch.generators()
    c = torch.from_numpy(model.scale.cond(batch.condition))
    idx = torch.stack([torch.multinomial(model.prior, 1, generator=g)[:, 0] for g in gens])
    k = min(m.r_neighbours, len(model.train_cond))
    near = (model.train_cond[None, :] - c.double()).abs().topk(k, largest=False).indices
    pick = torch.stack([torch.randint(k, (1,), generator=g)[0] for g in gens])
    r = model.train_r[near[torch.arange(len(pick)), pick]]
    shares = model.shares(idx, c, net).cpu().numpy()
    voxels = (shares * (r.numpy() * batch.condition)[:, None]).astype(np.float32)
    return grid_clouds(voxels, vx.load_grid(m.grid), batch.condition, batch.keys, m.e_min)


@torch.no_grad()
def reconstruct(loaded, data, seed: int = 0, chunk: int = 256) -> GeneratedClouds:
    """Stage 1 scored alone: each shower of ``data`` (:class:`pointcalo.clouds.PointCloudData`)
    projected onto the model's grid, encoded to its tokens and decoded with its own R and
    energy (the decoder ``loaded.net``, the EMA copy), as point clouds carrying their voxels.
    What the tokens lose shows here; what a prior loses, in generation beside it."""
    from pointcalo.models.voxels import project_clouds

    model, net, cfg = loaded.model, loaded.net, loaded.cfg
    model.eval()
    net.eval()
    grid = vx.load_grid(cfg.model.grid)
    raw = project_clouds(data, grid)
    energy = np.asarray(data.condition, np.float64)
    idx = model.tokens_of(raw, energy, chunk)
    c = torch.from_numpy(model.scale.cond(energy))
    out = np.zeros(raw.shape, np.float32)
    for lo in range(0, len(raw), chunk):
        shares = model.shares(idx[lo : lo + chunk], c[lo : lo + chunk], net).cpu().numpy()
        out[lo : lo + chunk] = shares * raw[lo : lo + chunk].sum(1, dtype=np.float64)[:, None]
    keys = [(seed, i) for i in range(len(out))]
    return grid_clouds(out, grid, energy, keys, cfg.model.e_min)


def _build(cfg, meta, normalizer) -> GridVQVAE:
    return GridVQVAE(cfg.model, tuple(meta["grid_shape"]), int(meta["n_showers"]))


FAMILY = Family(
    name="grid_vqvae",
    config=GridVQVAEConfig,
    task=GridVQVAETask,
    build=_build,
    sampling_net=lambda model: model.decoder,
    generate=generate_vqvae,
    point_output=False,
)

__all__ = [
    "FAMILY",
    "GridVQVAE",
    "GridVQVAEConfig",
    "GridVQVAETask",
    "Quantizer",
    "reconstruct",
]
