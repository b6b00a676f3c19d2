"""Generating clouds with a trained EPiC-GAN.

Every cloud ``i`` has its own random stream seeded from ``(seed, i)``: its number of points
(from the point-count flow) and its noise come from it, so a cloud is the same whatever the
batch size or device order it is generated in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from pointcalo.clouds import CPU_BATCH, GeneratedClouds, Normalizer
from pointcalo.streams import cloud_generators, cloud_noise


@torch.no_grad()
def generate_epic_gan(
    model: nn.Module,
    net: nn.Module,
    normalizer: Normalizer,
    condition: np.ndarray,
    cfg: Any,
    *,
    seed: int = 0,
    first_index: int = 0,
    device: Any = "cpu",
    batch_size: int = CPU_BATCH,
    sampler: str | None = None,
    steps: int | None = None,
    max_points: int = 20000,
) -> GeneratedClouds:
    """Clouds for the physical conditions ``condition [N]`` (MeV for showers) from the
    generator ``net`` (e.g. its EMA copy) and ``model.count``; ``sampler`` and ``steps`` do not
    apply to a GAN."""
    net.eval()
    count = model.count.cpu()
    n = len(condition)
    offsets, cols = [np.zeros(1, np.int64)], []
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        gens = cloud_generators([(seed, first_index + i) for i in range(start, stop)])
        base = torch.stack([torch.randn(1, generator=g)[0] for g in gens])
        log_c = normalizer.encode_cond(condition[start:stop], np.ones(stop - start))[:, 0]
        std_log_n = count.sample(torch.as_tensor(log_c), base).numpy()
        log_n = std_log_n * normalizer.cond_std[1] + normalizer.cond_mean[1]
        counts = np.clip(np.rint(np.exp(log_n)), 1, max_points).astype(np.int64)
        cond = normalizer.encode_cond(condition[start:stop], counts)
        z, zg = cloud_noise(gens, counts, cfg.model.z_dim, cfg.model.g_dim)
        ptr = torch.as_tensor(np.concatenate([[0], np.cumsum(counts)]), device=device)
        x = net(z.to(device), zg.to(device), torch.as_tensor(cond, device=device), ptr)
        cols.append(normalizer.decode_points(x.float().cpu().numpy()))
        offsets.append(offsets[-1][-1] + np.cumsum(counts))
    points = {k: np.concatenate([c[k] for c in cols]) for k in normalizer.spec.features}
    return GeneratedClouds(np.concatenate(offsets), points, np.asarray(condition, np.float64))
