"""Two-stage latent models, stage 2: a GPT that writes a grid VQ-VAE's tokens (Calo-VQ, Liu et
al., arXiv 2405.06605; OmniJet-alpha, arXiv 2501.05534, for the idea on showers).

A small causal transformer (:class:`pointcalo.nn.gpt.CausalGPT`) is trained on the tokens the
stage-1 model (``model.stage1``, a ``grid_vqvae`` checkpoint, frozen) gives the training
showers. Each sequence is the shower's visible-over-incident ratio R, digitised into
``r_bins`` quantile bins of the training showers (one token, as Calo-VQ does), then its codes;
the incident energy (standardised log E_inc) enters as the start embedding. Generation writes
R's token and the codes one by one (``temperature``, ``top_k``) with a key-value cache (one
position per network call), each shower's draws from its own stream; R uniform within its
bin; the stage-1 decoder turns the codes into voxel shares, energies ``shares * R * E_inc``.
The checkpoint holds the stage-1 model too, so it alone rebuilds the sampler.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

import voxelize as vx
from pointcalo.clouds import GeneratedClouds
from pointcalo.config import ModelConfig
from pointcalo.models.grid_vqvae.model import GridVQVAE
from pointcalo.models.registry import Family, GenerationBatch
from pointcalo.models.tokens import GPTTaskBase, stage1_of
from pointcalo.models.voxels import grid_clouds, project_clouds
from pointcalo.nn.gpt import CausalGPT, sample_token, uniforms


class GridGPTConfig(ModelConfig):
    """Stage 2 over a grid VQ-VAE's tokens: ``stage1`` its checkpoint; transformer ``hidden``
    width, ``layers``, ``heads``; ``r_bins`` quantile bins of R; sampling ``temperature`` and
    ``top_k`` (0: all tokens); ``e_min`` as the grid families."""

    name: Literal["grid_gpt"] = "grid_gpt"
    stage1: str = "runs/grid_vqvae/checkpoint.pt"
    hidden: int = Field(64, ge=4)
    layers: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    r_bins: int = Field(32, ge=2)
    temperature: float = Field(1.0, gt=0)
    top_k: int = Field(0, ge=0)
    e_min: float = 0.01


class GridGPT(nn.Module):
    """The frozen stage-1 model, the GPT and R's bin edges."""

    def __init__(self, cfg: GridGPTConfig, stage1: GridVQVAE) -> None:
        super().__init__()
        self.cfg, self.stage1 = cfg, stage1
        self.stage1.requires_grad_(False)
        self.codebook, self.length = stage1.cfg.codebook, stage1.n_tokens
        self.gpt = CausalGPT(
            self.codebook + cfg.r_bins, cfg.hidden, cfg.layers, cfg.heads, self.length + 1
        )
        self.register_buffer("r_edges", torch.zeros(cfg.r_bins + 1, dtype=torch.float64))

    def r_tokens(self, r: torch.Tensor) -> torch.Tensor:
        """R's bin ``[B]`` as tokens (after the codebook's)."""
        b = torch.bucketize(r.double(), self.r_edges[1:-1].contiguous())
        return self.codebook + b

    def loss(self, cond: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the sequences ``seq [B, 1 + tokens]`` (R's token, codes)."""
        logits = self.gpt(cond, seq[:, :-1])
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[2]), seq.reshape(-1))


class GridGPTTask(GPTTaskBase):
    """Training of stage 2 by the engine: the training showers' token sequences are made once
    by the frozen stage-1 model; one cross-entropy step per batch."""

    def __init__(self, cfg, n_features: int, mean_points: float, data=None) -> None:
        stage1 = self.load_stage1(cfg, data, "grid_vqvae").model
        self.model = GridGPT(cfg.model, stage1)
        grid = vx.load_grid(stage1.cfg.grid)
        raw = project_clouds(data, grid)
        energy = np.asarray(data.condition, np.float64)
        r = torch.from_numpy(raw.sum(1, dtype=np.float64) / energy)
        q = np.linspace(0, 1, cfg.model.r_bins + 1)
        self.model.r_edges.copy_(torch.from_numpy(np.quantile(r.numpy(), q)))
        self.c = torch.from_numpy(stage1.scale.cond(energy))
        codes = stage1.tokens_of(raw, energy)
        self.seq = torch.cat([self.model.r_tokens(r)[:, None], codes], 1)

    def step(self, batch, ctx, opts) -> dict:
        index = torch.as_tensor(np.asarray(ctx.index), dtype=torch.int64)
        with ctx.amp:
            loss = self.model.loss(self.c[index].to(ctx.device), self.seq[index].to(ctx.device))
        ctx.update(loss, self.model, "gpt")
        return {"loss": loss.item()}


def _draw(logits: torch.Tensor, lo: int, hi: int, cfg, u: torch.Tensor) -> torch.Tensor:
    """One token per shower from ``logits [B, vocab]`` restricted to ``[lo, hi)``, with the
    uniforms ``u [B]``."""
    return lo + sample_token(logits[:, lo:hi], u, cfg.temperature, cfg.top_k)


@torch.no_grad()
def generate_gpt(
    model: GridGPT, net: nn.Module, normalizer, cfg: Any, batch: GenerationBatch
) -> GeneratedClouds:
    """The family's ``generate``: R's token, then the codes, written by the GPT ``net`` (the EMA
    copy) from each shower's stream; decoded by the stage-1 decoder (module docstring)."""
    m, s1 = cfg.model, model.stage1
    net.eval()
    u = uniforms(batch.generators(), model.length + 2)
    c = torch.from_numpy(s1.scale.cond(batch.condition))
    k = model.codebook
    logits, cache = net.start(c)
    drawn = [_draw(logits, k, k + m.r_bins, m, u[:, 0])]
    for t in range(model.length):
        drawn.append(_draw(net.next(drawn[-1], cache), 0, k, m, u[:, t + 1]))
    seq = torch.stack(drawn, 1)
    b = seq[:, 0] - k
    w = u[:, -1]
    r = model.r_edges[b] + w * (model.r_edges[b + 1] - model.r_edges[b])
    shares = s1.shares(seq[:, 1:], c).cpu().numpy()
    voxels = (shares * (r.numpy() * batch.condition)[:, None]).astype(np.float32)
    return grid_clouds(voxels, vx.load_grid(s1.cfg.grid), batch.condition, batch.keys, m.e_min)


def _build(cfg, meta, normalizer) -> GridGPT:
    s1_cfg, s1_meta = stage1_of(meta)
    stage1 = GridVQVAE(s1_cfg, tuple(s1_meta["grid_shape"]), int(s1_meta["n_showers"]))
    return GridGPT(cfg.model, stage1)


FAMILY = Family(
    name="grid_gpt",
    config=GridGPTConfig,
    task=GridGPTTask,
    build=_build,
    sampling_net=lambda model: model.gpt,
    generate=generate_gpt,
    point_output=False,
)

__all__ = ["FAMILY", "GridGPT", "GridGPTConfig", "GridGPTTask"]
