"""A small decoder-only transformer (GPT; Radford et al. 2018, Vaswani et al., arXiv
1706.03762) over token sequences, with a key-value cache for generation.

Used by the two-stage latent models (stage 2 writes the tokens of a VQ-VAE: Calo-VQ, arXiv
2405.06605; OmniJet-alpha, arXiv 2501.05534). The condition (e.g. standardised log E_inc,
``[B, n_cond]``) is the embedding of position 0; token ``i`` sits at position ``i + 1``, and
the logits at position ``i`` predict token ``i``, so ``forward(cond, tokens[:, :-1])`` scores a
whole sequence in one call (causal attention, :func:`torch.nn.functional.scaled_dot_product_
attention`). An optional second embedding (``n_extra`` values, e.g. the calorimeter layer a
point-token belongs to) is added at every position.

Generation (:meth:`CausalGPT.start`, :meth:`CausalGPT.next`) runs one position at a time
and keeps each layer's keys and values (``[B, heads, max_len + 1, hidden / heads]``), so
writing ``S`` tokens costs ``O(S)`` network calls of one position each instead of ``O(S^2)``
positions; the two give the same logits (a test).

Pre-layer-norm blocks (GPT-2), GELU feed-forward of 4x the width, no dropout.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Block(nn.Module):
    """One pre-norm transformer block: causal self-attention, then a feed-forward map."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden {hidden} is not a multiple of heads {heads}")
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(hidden), nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Linear(4 * hidden, hidden)
        )

    def _qkv(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, s, d = h.shape
        q, k, v = self.qkv(self.ln1(h)).split(d, 2)
        return tuple(t.reshape(b, s, self.heads, -1).transpose(1, 2) for t in (q, k, v))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        q, k, v = self._qkv(h)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        h = h + self.proj(a.transpose(1, 2).flatten(2))
        return h + self.mlp(self.ln2(h))

    def cached(self, h: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, pos: int):
        """One new position ``h [B, 1, D]`` at index ``pos``; its key and value are written
        into ``keys`` / ``values`` ``[B, heads, max_len, D / heads]`` (in place)."""
        q, k, v = self._qkv(h)
        keys[:, :, pos : pos + 1] = k
        values[:, :, pos : pos + 1] = v
        a = F.scaled_dot_product_attention(q, keys[:, :, : pos + 1], values[:, :, : pos + 1])
        h = h + self.proj(a.transpose(1, 2).flatten(2))
        return h + self.mlp(self.ln2(h))


class Cache:
    """Keys and values of every block for a batch being generated, and the next position."""

    def __init__(self, blocks: int, batch: int, heads: int, length: int, dim: int, ref):
        shape = (batch, heads, length, dim)
        self.keys = [ref.new_zeros(shape) for _ in range(blocks)]
        self.values = [ref.new_zeros(shape) for _ in range(blocks)]
        self.pos = 0


class CausalGPT(nn.Module):
    """``(cond [B, n_cond], tokens [B, S]) -> logits [B, S + 1, vocab]``; sequences of at most
    ``max_len`` tokens."""

    def __init__(
        self,
        vocab: int,
        hidden: int,
        layers: int,
        heads: int,
        max_len: int,
        n_cond: int = 1,
        n_extra: int = 0,
    ) -> None:
        super().__init__()
        self.vocab, self.max_len, self.heads = vocab, max_len, heads
        self.cond = nn.Linear(n_cond, hidden)
        self.embed = nn.Embedding(vocab, hidden)
        self.extra = nn.Embedding(n_extra, hidden) if n_extra else None
        self.pos = nn.Parameter(torch.zeros(max_len + 1, hidden))
        nn.init.normal_(self.pos, std=0.02)
        self.blocks = nn.ModuleList(Block(hidden, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, vocab)

    def _inputs(self, cond, tokens, extra, start: int) -> torch.Tensor:
        parts = [self.cond(cond)[:, None]] if start == 0 else []
        if tokens.shape[1]:
            parts.append(self.embed(tokens))
        h = torch.cat(parts, 1)
        h = h + self.pos[start : start + h.shape[1]]
        if self.extra is not None:
            h = h + self.extra(extra)
        return h

    def forward(
        self, cond: torch.Tensor, tokens: torch.Tensor, extra: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits of every position; ``extra [B, S + 1]`` the second embedding's values."""
        if tokens.shape[1] > self.max_len:
            raise ValueError(f"{tokens.shape[1]} tokens, more than max_len {self.max_len}")
        h = self._inputs(cond, tokens, extra, 0)
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln(h))

    def start(
        self, cond: torch.Tensor, extra: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, Cache]:
        """Logits ``[B, vocab]`` of the first token and the cache to continue from (``extra
        [B, 1]``)."""
        d = self.pos.shape[1] // self.heads
        cache = Cache(len(self.blocks), len(cond), self.heads, self.max_len + 1, d, self.pos)
        h = self._inputs(cond, cond.new_zeros(len(cond), 0, dtype=torch.int64), extra, 0)
        return self._step(h, cache), cache

    def next(
        self, token: torch.Tensor, cache: Cache, extra: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits ``[B, vocab]`` after appending ``token [B]`` (``extra [B, 1]``)."""
        if cache.pos > self.max_len:
            raise ValueError(f"sequence longer than max_len {self.max_len}")
        h = self._inputs(None, token[:, None], extra, cache.pos)
        return self._step(h, cache)

    def _step(self, h: torch.Tensor, cache: Cache) -> torch.Tensor:
        for i, block in enumerate(self.blocks):
            h = block.cached(h, cache.keys[i], cache.values[i], cache.pos)
        cache.pos += 1
        return self.head(self.ln(h))[:, 0]


def uniforms(generators: list[torch.Generator], n: int) -> torch.Tensor:
    """``[B, n]`` uniforms in [0, 1), row ``b`` from ``generators[b]`` alone (float64): one
    draw per token a sequence may take, so each shower's tokens depend on its own stream
    only, whatever batch it is generated in."""
    return torch.stack([torch.rand(n, generator=g, dtype=torch.float64) for g in generators])


def sample_token(
    logits: torch.Tensor, u: torch.Tensor, temperature: float = 1.0, top_k: int = 0
) -> torch.Tensor:
    """One token per row of ``logits [B, V]`` by inverse-CDF sampling with the uniforms ``u
    [B]``: the softmax of ``logits / temperature``, restricted to the ``top_k`` most probable
    tokens when ``top_k`` > 0."""
    part = logits.double() / temperature
    if 0 < top_k < part.shape[1]:
        cut = part.topk(top_k, 1).values[:, -1:]
        part = part.masked_fill(part < cut, float("-inf"))
    cdf = torch.softmax(part, 1).cumsum(1)
    idx = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None].contiguous(), right=True)[:, 0]
    return idx.clamp(max=part.shape[1] - 1)
