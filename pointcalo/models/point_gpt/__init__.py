"""Two-stage latent models on points, stage 2: a GPT that writes a shower as the sequence of
its points' tokens (OmniJet-alpha for calorimeter showers, arXiv 2501.05534; Calo-VQ, arXiv
2405.06605, on grids).

The stage-1 model (``model.stage1``, a ``point_vqvae`` checkpoint, frozen) gives each point of
a training shower its token. A shower's sequence lists its points layer by layer, hottest
first within a layer, each layer closed by a separator token (``SEP``, the token after the
codebook): ``codes of layer 0, SEP, codes of layer 1, SEP, ..., SEP``; a shower ends with its
last layer's separator, so the sequence carries the per-layer point counts and no end token is
needed. The incident energy (standardised log E_inc) is the start embedding and the layer of
the token being written (separators so far) a second embedding at every position
(:class:`pointcalo.nn.gpt.CausalGPT`). Sequences are as long as the showers (1,000-4,500
tokens for the ILD photons), so training pads each batch to its longest sequence and the loss
ignores the padding.

Generation writes each shower's tokens one by one with a key-value cache (``temperature``,
``top_k``), each shower from its own stream, until it has closed every layer or reached the
longest training sequence (``max_len``; layers not reached stay empty); the stage-1 decoder
turns the tokens and their layers into points. The checkpoint holds the stage-1 model too.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from pointcalo.clouds import GeneratedClouds
from pointcalo.config import ModelConfig
from pointcalo.errors import ConfigError
from pointcalo.models.point_vqvae import decoded_clouds, shower_order
from pointcalo.models.point_vqvae.model import PointVQVAE
from pointcalo.models.registry import Family, GenerationBatch
from pointcalo.models.tokens import GPTTaskBase, stage1_of
from pointcalo.nn.gpt import CausalGPT, sample_token, uniforms


class PointGPTConfig(ModelConfig):
    """Stage 2 over a point VQ-VAE's tokens: ``stage1`` its checkpoint; transformer ``hidden``
    width, ``layers``, ``heads``; sampling ``temperature`` and ``top_k`` (0: all tokens)."""

    name: Literal["point_gpt"] = "point_gpt"
    stage1: str = "runs/point_vqvae/checkpoint.pt"
    hidden: int = Field(64, ge=4)
    layers: int = Field(2, ge=1)
    heads: int = Field(4, ge=1)
    temperature: float = Field(1.0, gt=0)
    top_k: int = Field(0, ge=0)


def sequences(
    tokens: np.ndarray, layer: np.ndarray, counts: np.ndarray, n_layers: int, sep: int
) -> tuple[np.ndarray, np.ndarray]:
    """Flat token sequences and their offsets ``[N + 1]`` of showers whose points (in
    :func:`pointcalo.models.point_vqvae.shower_order`) have ``tokens`` and ``layer``:
    ``codes of layer 0, sep, ..., codes of the last layer, sep``."""
    counts = np.asarray(counts, np.int64)
    n = len(counts)
    shower = np.repeat(np.arange(n), counts)
    lengths = counts + n_layers
    seq_off = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(len(tokens)) - np.repeat(first, counts)
    out = np.full(int(seq_off[-1]), sep, np.int64)
    out[seq_off[shower] + rank + layer] = tokens
    return out, seq_off


def layer_inputs(seq: torch.Tensor, sep: int, n_layers: int) -> torch.Tensor:
    """The layer each position of ``[B, S]`` sequences writes (position 0 the first token):
    the separators before it, at most ``n_layers - 1``; ``[B, S]``."""
    is_sep = (seq == sep).long()
    return (torch.cumsum(is_sep, 1) - is_sep).clamp(max=n_layers - 1)


class PointGPT(nn.Module):
    """The frozen stage-1 model, the GPT over ``codebook + 1`` tokens (the last is the layer
    separator) and the standardisation of log E_inc."""

    def __init__(self, cfg: PointGPTConfig, stage1: PointVQVAE, max_len: int) -> None:
        super().__init__()
        self.cfg, self.stage1, self.max_len = cfg, stage1, max_len
        self.stage1.requires_grad_(False)
        self.sep, self.n_layers = stage1.cfg.codebook, stage1.n_layers
        self.gpt = CausalGPT(
            self.sep + 1, cfg.hidden, cfg.layers, cfg.heads, max_len, n_extra=self.n_layers
        )
        self.register_buffer("log_e", torch.tensor([0.0, 1.0], dtype=torch.float64))

    def cond(self, energy: np.ndarray) -> torch.Tensor:
        """Standardised log incident energy ``[B, 1]`` float32 (energies MeV)."""
        x = torch.from_numpy(np.log(np.asarray(energy, np.float64))) - self.log_e[0]
        return (x / self.log_e[1]).float()[:, None]

    def loss(self, cond: torch.Tensor, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy per token of sequences ``seq [B, S]`` (valid up to ``length``)."""
        extra = layer_inputs(seq, self.sep, self.n_layers)
        logits = self.gpt(cond, seq[:, :-1], extra)
        pad = torch.arange(seq.shape[1], device=seq.device) >= length[:, None]
        target = seq.masked_fill(pad, -100)
        return nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[2]), target.reshape(-1), ignore_index=-100
        )


class PointGPTTask(GPTTaskBase):
    """Training of stage 2 by the engine: the training showers' token sequences are made once
    by the frozen stage-1 model; one cross-entropy step per batch (padded to its longest)."""

    def __init__(self, cfg, n_features: int, mean_points: float, data=None) -> None:
        stage1 = self.load_stage1(cfg, data, "point_vqvae").model
        order = shower_order(data.offsets, data.points)
        pts = {k: np.asarray(v)[order] for k, v in data.points.items()}
        layer = np.asarray(pts["layer"], np.int64)
        if layer.size and (layer.min() < 0 or layer.max() >= stage1.n_layers):
            raise ConfigError(
                f"data: layers {layer.min()}..{layer.max()}, the stage-1 model knows "
                f"0..{stage1.n_layers - 1}"
            )
        with torch.no_grad():
            tok = stage1.tokens(stage1.features(pts), torch.from_numpy(layer)).numpy()
        seq, self.off = sequences(tok, layer, data.counts, stage1.n_layers, stage1.cfg.codebook)
        small = stage1.cfg.codebook < np.iinfo(np.int16).max
        self.seq = torch.from_numpy(seq.astype(np.int16 if small else np.int64))
        max_len = int(np.diff(self.off).max())
        self.model = PointGPT(cfg.model, stage1, max_len)
        log_e = np.log(np.asarray(data.condition, np.float64))
        self.model.log_e.copy_(torch.tensor([log_e.mean(), log_e.std() + 1e-6]))
        self.c = self.model.cond(data.condition)
        self.meta = {**self.meta, "max_len": max_len}

    def step(self, batch, ctx, opts) -> dict:
        index = np.asarray(ctx.index)
        lo, hi = self.off[index], self.off[index + 1]
        length = torch.from_numpy(hi - lo)
        seq = torch.full((len(index), int(length.max())), self.model.sep, dtype=torch.int64)
        for i, (a, b) in enumerate(zip(lo, hi, strict=True)):
            seq[i, : b - a] = self.seq[a:b]
        with ctx.amp:
            loss = self.model.loss(self.c[index].to(ctx.device), seq.to(ctx.device),
                                   length.to(ctx.device))  # fmt: skip
        ctx.update(loss, self.model, "gpt")
        return {"loss": loss.item(), "tokens": int(length.sum())}


@torch.no_grad()
def write_tokens(model: PointGPT, net: CausalGPT, cond: torch.Tensor, u: torch.Tensor, cfg):
    """Token sequences ``[B, T]`` written by ``net`` for conditions ``cond [B, 1]`` with the
    uniforms ``u [B, max_len]``; after a shower's last separator its row repeats ``sep``."""
    sep, n_layers = model.sep, model.n_layers
    b = len(cond)
    layer = torch.zeros(b, dtype=torch.int64)
    done = torch.zeros(b, dtype=torch.bool)
    logits, cache = net.start(cond, layer[:, None])
    out = []
    for t in range(model.max_len):
        tok = sample_token(logits, u[:, t], cfg.temperature, cfg.top_k)
        tok = torch.where(done, torch.full_like(tok, sep), tok)
        out.append(tok)
        layer = layer + ((tok == sep) & ~done).long()
        done = layer >= n_layers
        if bool(done.all()) or t + 1 == model.max_len:
            break
        logits = net.next(tok, cache, layer.clamp(max=n_layers - 1)[:, None])
    return torch.stack(out, 1)


@torch.no_grad()
def generate_gpt(
    model: PointGPT, net: nn.Module, normalizer, cfg: Any, batch: GenerationBatch
) -> GeneratedClouds:
    """The family's ``generate``: token sequences by the GPT ``net`` (the EMA copy), decoded
    into points by the stage-1 decoder (module docstring)."""
    net.eval()
    u = uniforms(batch.generators(), model.max_len)
    seq = write_tokens(model, net, model.cond(batch.condition), u, cfg.model)
    # a point token always precedes the last separator (write_tokens pads with them after it)
    layer = layer_inputs(seq, model.sep, model.n_layers)
    keep = seq != model.sep
    counts = keep.sum(1).numpy()
    return decoded_clouds(model.stage1, seq[keep], layer[keep], counts, batch.condition)


def _build(cfg, meta, normalizer) -> PointGPT:
    s1_cfg, s1_meta = stage1_of(meta)
    stage1 = PointVQVAE(s1_cfg, int(s1_meta["n_layers"]), int(s1_meta["n_showers"]))
    return PointGPT(cfg.model, stage1, int(meta["max_len"]))


FAMILY = Family(
    name="point_gpt",
    config=PointGPTConfig,
    task=PointGPTTask,
    build=_build,
    sampling_net=lambda model: model.gpt,
    generate=generate_gpt,
)

__all__ = ["FAMILY", "PointGPT", "PointGPTConfig", "PointGPTTask", "sequences", "write_tokens"]
