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

from pointcalo.clouds import GeneratedClouds, Normalizer
from pointcalo.models.epic_gan.model import flow_condition
from pointcalo.models.gan import generate_gan
from pointcalo.models.registry import GenerationBatch
from pointcalo.models.showerflow.features import draw_features
from pointcalo.models.showerflow.postprocess import PostProcess
from pointcalo.streams import cloud_noise


@torch.no_grad()
def generate(
    model: nn.Module,
    net: nn.Module,
    normalizer: Normalizer,
    cfg: Any,
    batch: GenerationBatch,
    max_points: int = 20000,
) -> GeneratedClouds:
    """The family's ``generate``: the showers of one request batch (incident energies
    ``batch.condition``, MeV) from the generator ``net`` (its EMA copy)."""
    if model.flow is None:
        return generate_gan(model, net, normalizer, cfg, batch, max_points)
    net.eval()
    device = batch.device
    model.flow.to(device)
    post = PostProcess(normalizer, model.n_layers, model.widths).to(device)
    e_inc, gens = batch.condition, batch.generators()
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
    offsets = np.concatenate([[0], np.cumsum(counts_np)]).astype(np.int64)
    return GeneratedClouds(offsets, pts, e_inc)
