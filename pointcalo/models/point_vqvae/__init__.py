"""Two-stage latent models on points, stage 1: a VQ-VAE that gives each point of a shower one
token (:mod:`.model`), trained by the engine on the points of the showers of each batch.

Generation with stage 1 alone uses an independent-code prior: a shower's per-layer point
counts from one of the ``r_neighbours`` training showers nearest in incident energy, each
point's token drawn from its layer's code frequencies (the baseline a GPT over the token
sequences, ``point_gpt``, has to beat). :func:`reconstruct` scores the tokens themselves.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from pointcalo.clouds import GeneratedClouds, gather_index
from pointcalo.config import ModelConfig
from pointcalo.errors import ConfigError
from pointcalo.models.optim import adam
from pointcalo.models.point_vqvae.model import PointVQVAE
from pointcalo.models.registry import Family, GenerationBatch, TaskBase
from pointcalo.models.voxels import shower_seeds


class PointVQVAEConfig(ModelConfig):
    """Stage 1 on points: encoder and decoder MLPs of ``hidden`` units, a ``layer_embedding``
    of the layer index, ``codebook`` codes of ``code_dim`` numbers (moving-average updates
    with ``decay``, codes used less than ``dead_below`` restarted), ``commitment`` weight;
    ``xy_scale`` (mm) of the ``asinh`` transverse coordinates; ``points_per_step`` points
    drawn from each batch's showers per step; ``r_neighbours`` training showers nearest in
    energy that stage 1 alone draws its per-layer counts from."""

    name: Literal["point_vqvae"] = "point_vqvae"
    hidden: int = Field(128, ge=4)
    layer_embedding: int = Field(16, ge=1)
    codebook: int = Field(4096, ge=2)
    code_dim: int = Field(4, ge=1)
    commitment: float = Field(0.25, ge=0)
    decay: float = Field(0.99, gt=0, lt=1)
    dead_below: float = Field(0.01, ge=0)
    xy_scale: float = Field(2.0, gt=0)
    points_per_step: int = Field(16384, ge=1)
    r_neighbours: int = Field(5, ge=1)


def _layers(data) -> int:
    if tuple(data.spec.features) != ("E", "x", "y", "layer"):
        raise ConfigError("point_vqvae models calorimeter showers (points E, x, y, layer)")
    return int(data.spec.integer_max) + 1


class PointVQVAETask(TaskBase):
    """Training of the point VQ-VAE by the engine: the points of the batch's showers (at most
    ``points_per_step`` of them, drawn from the batch's stream), one step on their features."""

    def __init__(self, cfg, n_features: int, mean_points: float, data=None) -> None:
        if data is None:
            raise ConfigError("point_vqvae trains on shower data (data.path or simulated)")
        self.cfg, self.data = cfg, data
        n_layers = _layers(data)
        self.model = PointVQVAE(cfg.model, n_layers, len(data))
        raw = self.model.raw_features(data.points)
        self.model.mean.copy_(torch.from_numpy(raw.mean(0)))
        self.model.std.copy_(torch.from_numpy(raw.std(0) + 1e-6))
        self.f = self.model.features(data.points)
        self.layer = torch.from_numpy(np.asarray(data.points["layer"], np.int64))
        counts = np.zeros((len(data), n_layers), np.int32)
        shower = np.repeat(np.arange(len(data)), data.counts)
        np.add.at(counts, (shower, self.layer.numpy()), 1)
        self.model.train_counts.copy_(torch.from_numpy(counts))
        self.model.train_log_e.copy_(torch.from_numpy(np.log(np.asarray(data.condition))))
        self.meta = {"n_showers": len(data), "n_layers": n_layers}

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        t, m = self.cfg.train, self.model
        params = [*m.encoder.parameters(), *m.decoder.parameters(), *m.layer.parameters()]
        return {"vqvae": adam(params, t.lr, t.betas)}

    def ema_target(self) -> nn.Module:
        return self.model.decoder

    def wrap(self, wrap) -> None:
        """Nothing goes through DDP: the engine averages the gradients (``ctx.update``)."""

    def step(self, batch, ctx, opts) -> dict:
        index = np.asarray(ctx.index)
        counts = self.data.counts[index]
        at = torch.from_numpy(gather_index(self.data.offsets, index, counts))
        g = torch.Generator().manual_seed(shower_seeds(ctx.keys[:1])[0])
        if len(at) > self.cfg.model.points_per_step:
            at = at[torch.randperm(len(at), generator=g)[: self.cfg.model.points_per_step]]
        pick = torch.randperm(len(at), generator=g).to(ctx.device)
        f, layer = self.f[at].to(ctx.device), self.layer[at].to(ctx.device)
        with ctx.amp:
            out = self.model.loss(f, layer, pick)
        ctx.update(out["loss"], self.model, "vqvae")
        return {"loss": out["loss"].item(), "mse": out["mse"].item(),
                "commit": out["commit"].item(), "codes_used": out["codes_used"]}  # fmt: skip


def shower_order(offsets: np.ndarray, points: dict[str, np.ndarray]) -> np.ndarray:
    """The order in which a token sequence lists the points of flat showers: by shower, then
    layer, then energy (hottest first)."""
    counts = np.diff(np.asarray(offsets, np.int64))
    shower = np.repeat(np.arange(len(counts)), counts)
    return np.lexsort((-np.asarray(points["E"]), np.asarray(points["layer"]), shower))


def decoded_clouds(
    model: PointVQVAE, idx: torch.Tensor, layer: torch.Tensor, counts: np.ndarray,
    condition: np.ndarray, decoder: nn.Module | None = None,
) -> GeneratedClouds:  # fmt: skip
    """Clouds of ``counts`` points each from their tokens ``idx [P]`` and layers ``layer
    [P]`` (flat, shower by shower), decoded by ``decoder`` (default the model's own)."""
    f = model.decode(idx, layer, decoder) if len(idx) else torch.zeros(0, 3)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return GeneratedClouds(offsets, model.to_points(f, layer), np.asarray(condition, np.float64))


@torch.no_grad()
def generate_vqvae(
    model: PointVQVAE, net: nn.Module, normalizer, cfg: Any, batch: GenerationBatch
) -> GeneratedClouds:
    """The family's ``generate``: stage 1 alone (module docstring), all from each shower's own
    stream; decoded by ``net`` (the EMA decoder)."""
    m = cfg.model
    net.eval()
    gens = batch.generators()
    k = min(m.r_neighbours, len(model.train_log_e))
    log_e = torch.from_numpy(np.log(batch.condition))
    near = (model.train_log_e[None, :] - log_e[:, None]).abs().topk(k, largest=False).indices
    idx, layers, counts = [], [], []
    for b, g in enumerate(gens):
        shower = near[b, torch.randint(k, (1,), generator=g)[0]]
        n = model.train_counts[shower].long()
        layer = torch.repeat_interleave(torch.arange(model.n_layers), n)
        drawn = [
            torch.multinomial(model.prior[i], count, replacement=True, generator=g)
            for i, count in enumerate(n.tolist()) if count
        ]  # fmt: skip
        idx.append(torch.cat(drawn) if drawn else layer)
        layers.append(layer)
        counts.append(len(layer))
    return decoded_clouds(
        model, torch.cat(idx), torch.cat(layers), np.asarray(counts), batch.condition, net
    )


@torch.no_grad()
def reconstruct(loaded, data, chunk: int = 1 << 16) -> GeneratedClouds:
    """Stage 1 scored alone: every point of ``data`` (:class:`pointcalo.clouds.PointCloudData`)
    encoded to its token and decoded (the EMA decoder ``loaded.net``), the shower's incident
    energy kept; the framework's validity rules are the caller's (:func:`pointcalo.validity.
    make_valid`). What the codebook loses shows here; what a prior loses, in generation."""
    model, net = loaded.model, loaded.net
    model.eval()
    net.eval()
    f = model.features(data.points)
    layer = torch.from_numpy(np.asarray(data.points["layer"], np.int64))
    idx = model.tokens(f, layer, chunk)
    return decoded_clouds(model, idx, layer, data.counts, data.condition, net)


def _build(cfg, meta, normalizer) -> PointVQVAE:
    return PointVQVAE(cfg.model, int(meta["n_layers"]), int(meta["n_showers"]))


FAMILY = Family(
    name="point_vqvae",
    config=PointVQVAEConfig,
    task=PointVQVAETask,
    build=_build,
    sampling_net=lambda model: model.decoder,
    generate=generate_vqvae,
)

__all__ = [
    "FAMILY",
    "PointVQVAE",
    "PointVQVAEConfig",
    "PointVQVAETask",
    "decoded_clouds",
    "reconstruct",
    "shower_order",
]
