"""Random streams: every random draw of pointcalo comes from a generator seeded by a key.

A key is a tuple of non-negative integers: the run's or sampler's seed, then positions
(step, cloud index, ...), then a *tag* that names what the stream is for, so two streams of
one seed never coincide by accident. Per-cloud keys (``(seed, index)`` when sampling,
``(seed, step, position)`` in training) make a cloud independent of the batch it is in, the
batch size and the number of processes.
"""

from __future__ import annotations

import numpy as np
import torch

#: Tag of a cloud's condition drawn when sampling: ``(seed, index, CONDITION)``.
CONDITION = 3
#: Tag of a training batch's dequantisation noise: ``(seed, step, BATCH)``.
BATCH = 7
#: Tag of the random validation hold-out of a training file: ``(seed, VALIDATION)``.
VALIDATION = 99


def numpy_stream(*key: int) -> np.random.Generator:
    """A numpy generator for ``key`` (e.g. ``numpy_stream(seed, step, BATCH)``)."""
    return np.random.default_rng(list(key))


def cloud_generators(keys: list[tuple[int, ...]]) -> list[torch.Generator]:
    """One torch random generator per cloud, seeded from its key (e.g. ``(seed, index)``)."""
    gens = []
    for key in keys:
        state = np.random.SeedSequence(list(key)).generate_state(1, dtype=np.uint64)[0]
        gens.append(torch.Generator().manual_seed(int(state & 0x7FFFFFFFFFFFFFFF)))
    return gens


def cloud_noise(
    gens: list[torch.Generator], counts: np.ndarray, z_dim: int, g_dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-point noise ``[P, z_dim]`` and per-cloud noise ``[B, g_dim]``, cloud by cloud."""
    z = [torch.randn(int(n), z_dim, generator=g) for g, n in zip(gens, counts, strict=True)]
    zg = [torch.randn(g_dim, generator=g) for g in gens]
    z_all = torch.cat(z) if z else torch.zeros(0, z_dim)
    return z_all, torch.stack(zg) if zg else torch.zeros(0, g_dim)


def point_noise(gens: list[torch.Generator], counts, dim: int) -> torch.Tensor:
    """Standard normal noise ``[sum(counts), dim]``, each cloud's rows from its own stream."""
    rows = [torch.randn(int(n), dim, generator=g) for g, n in zip(gens, counts, strict=True)]
    return torch.cat(rows) if rows else torch.zeros(0, dim)


def cloud_base(gens: list[torch.Generator], dim: int) -> torch.Tensor:
    """``[B, dim]`` standard normal base noise of a per-cloud distribution (e.g. a flow)."""
    if not gens:
        return torch.zeros(0, dim)
    return torch.stack([torch.randn(dim, generator=g) for g in gens])


def point_uniform(gens: list[torch.Generator], counts) -> torch.Tensor:
    """Uniform numbers in [0, 1) ``[sum(counts)]``, each cloud's from its own stream."""
    rows = [torch.rand(int(n), generator=g) for g, n in zip(gens, counts, strict=True)]
    return torch.cat(rows) if rows else torch.zeros(0)
