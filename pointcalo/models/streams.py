"""Per-cloud random streams: every cloud's noise comes from a generator seeded by its key
(e.g. ``(seed, index)`` when sampling, ``(seed, step, position)`` in training), so a cloud does
not change with the batch it is in, the batch size or the number of processes."""

from __future__ import annotations

import numpy as np
import torch


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
