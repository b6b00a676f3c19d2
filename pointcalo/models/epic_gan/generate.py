"""Generating showers with an EPiC-GAN: with the point-count flow as every GAN family
(:func:`pointcalo.models.gan.generate_gan`); with a shower flow as CaloClouds II does
(arXiv 2309.05704): the flow draws each shower's features for its incident energy, the
generator makes that many points conditioned on them, and the points are calibrated to the
features (:class:`pointcalo.models.showerflow.postprocess.PostProcess`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from pointcalo.clouds import CPU_BATCH, GeneratedClouds, Normalizer
from pointcalo.models.epic_gan.model import flow_condition
from pointcalo.models.gan import generate_gan
from pointcalo.models.showerflow.features import draw_features
from pointcalo.models.showerflow.postprocess import PostProcess
from pointcalo.streams import cloud_generators, cloud_noise


@torch.no_grad()
def generate(
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
    """Showers for incident energies ``condition [N]`` (MeV) from the generator ``net`` (its
    EMA copy); ``sampler`` and ``steps`` do not apply to a GAN."""
    if model.flow is None:
        return generate_gan(
            model, net, normalizer, condition, cfg, seed=seed, first_index=first_index,
            device=device, batch_size=batch_size, max_points=max_points,
        )  # fmt: skip
    net.eval()
    model.flow.to(device)
    post = PostProcess(normalizer, model.n_layers, model.widths).to(device)
    offsets, cols = [np.zeros(1, np.int64)], []
    for start in range(0, len(condition), batch_size):
        stop = min(start + batch_size, len(condition))
        e_inc = np.asarray(condition[start:stop], dtype=np.float64)
        gens = cloud_generators([(seed, first_index + i) for i in range(start, stop)])
        _, feats, counts = draw_features(model.flow, normalizer, e_inc, gens, max_points, device)
        log_c = normalizer.encode_cond(e_inc, np.ones(len(e_inc)))[:, 0]
        cond = flow_condition(model.flow, torch.as_tensor(log_c, device=device), feats)
        counts_np = counts.cpu().numpy()
        z, zg = cloud_noise(gens, counts_np, cfg.model.z_dim, cfg.model.g_dim)
        ptr = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
        x0 = net(z.to(device), zg.to(device), cond, ptr).float()
        out = post(x0, counts, feats, torch.as_tensor(e_inc, device=device))
        pts = dict(zip(("E", "x", "y", "layer"), (c.cpu().numpy() for c in out), strict=True))
        pts["layer"] = pts["layer"].astype(np.int32)
        cols.append(pts)
        offsets.append(offsets[-1][-1] + np.cumsum(counts_np))
    points = {k: np.concatenate([c[k] for c in cols]) for k in normalizer.spec.features}
    return GeneratedClouds(np.concatenate(offsets), points, np.asarray(condition, np.float64))
