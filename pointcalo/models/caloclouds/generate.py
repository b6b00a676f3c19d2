"""Generating showers with CaloClouds (or a distilled one-step CaloClouds).

Generation follows CaloClouds II (Buhmann et al., arXiv 2309.05704): the shower flow gives the
number of points, the visible energy, the centre of gravity and the fraction of points and of
energy in every layer for an incident energy; the diffusion model generates that many points;
the points are then assigned to layers in order of their generated depth so each layer gets
its share of points, each layer's energies are scaled to the flow's energy in that layer (the
energy of a layer left without points goes to the others in proportion, so the shower keeps
the flow's visible energy), and the shower is shifted to the flow's transverse centre of
gravity.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from pointcalo.clouds import CPU_BATCH, GeneratedClouds, Normalizer
from pointcalo.models.caloclouds.calibrate import calibrate
from pointcalo.sampling import SAMPLERS, TAKES_SIGMA_MIN, schedule
from pointcalo.streams import cloud_base, cloud_generators, point_noise, point_uniform


@torch.no_grad()
def generate_caloclouds(
    model: nn.Module,
    denoiser: nn.Module,
    normalizer: Normalizer,
    condition: np.ndarray,
    m: Any,
    *,
    seed: int = 0,
    first_index: int = 0,
    device: Any = "cpu",
    batch_size: int = CPU_BATCH,
    sampler: str | None = None,
    steps: int | None = None,
    max_points: int = 20000,
) -> GeneratedClouds:
    """Showers for incident energies ``condition [N]`` (MeV) from a CaloClouds ``model`` (its
    flow) and ``denoiser``; ``m`` holds the noise schedule and default sampler (a
    :class:`CaloCloudsConfig`). See the module docstring."""
    name = sampler or m.sampler
    sample = SAMPLERS[name]
    if name in TAKES_SIGMA_MIN:
        sample = partial(sample, sigma_min=m.sigma_min)
    sigmas = schedule(name, steps or m.steps, m.sigma_min, m.sigma_max, m.rho)
    denoiser.eval()
    n_feat, n_layers = len(normalizer.spec.features), model.n_layers
    layer_col = normalizer.spec.features.index("layer")
    offsets, cols = [np.zeros(1, np.int64)], []
    for start in range(0, len(condition), batch_size):
        stop = min(start + batch_size, len(condition))
        e_inc = np.asarray(condition[start:stop], dtype=np.float64)
        gens = cloud_generators([(seed, first_index + i) for i in range(start, stop)])
        base = cloud_base(gens, model.flow.mean.shape[0])
        log_c = normalizer.encode_cond(e_inc, np.ones(len(e_inc)))[:, 0]
        feats = model.flow.sample(torch.as_tensor(log_c), base).double().numpy()
        counts = np.clip(np.rint(np.exp(feats[:, 0])), 1, max_points).astype(np.int64)
        cond = torch.as_tensor(normalizer.encode_cond(e_inc, counts), device=device)
        ptr = torch.as_tensor(np.concatenate([[0], np.cumsum(counts)]), device=device)
        x = point_noise(gens, counts, n_feat)

        def fresh_noise(step: int, gens=gens, counts=counts) -> torch.Tensor:
            return point_noise(gens, counts, n_feat)

        x0 = sample(
            lambda xx, s, c: denoiser(xx, s, c),
            (x * sigmas[0]).float().to(device),
            sigmas,
            cond=(cond, ptr),
            generator=fresh_noise,
        )
        x0 = x0.float().cpu().numpy()
        pts = normalizer.decode_points(x0)
        depth = x0[:, layer_col]  # continuous generated depth, for the layer assignment
        u = None
        if model.hits is not None:  # each shower's own uniform numbers, after its noise
            u = point_uniform(gens, counts).double().numpy()
        calibrate(pts, depth, counts, feats, e_inc, n_layers, model.widths, model.hits, u)
        normalizer.snap(pts)  # back onto the sensor lattice (cells unchanged: it is finer)
        cols.append(pts)
        offsets.append(offsets[-1][-1] + np.cumsum(counts))
    points = {k: np.concatenate([c[k] for c in cols]) for k in normalizer.spec.features}
    return GeneratedClouds(np.concatenate(offsets), points, np.asarray(condition, np.float64))


def generate(model, net, normalizer, condition, cfg, **kwargs: Any) -> GeneratedClouds:
    """The family's generation entry (run config ``cfg``)."""
    return generate_caloclouds(model, net, normalizer, condition, cfg.model, **kwargs)
