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

import time
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from pointcalo.clouds import GeneratedClouds, Normalizer
from pointcalo.models.registry import GenerationBatch
from pointcalo.models.showerflow.calibrate import calibrate
from pointcalo.models.showerflow.features import draw_features
from pointcalo.models.showerflow.postprocess import PostProcess
from pointcalo.sampling import SAMPLERS, TAKES_SIGMA_MIN, schedule
from pointcalo.streams import point_noise, point_uniform


@torch.no_grad()
def generate_caloclouds(
    model: nn.Module,
    denoiser: nn.Module,
    normalizer: Normalizer,
    m: Any,
    batch: GenerationBatch,
    *,
    max_points: int = 20000,
    postprocess: str = "torch",
    stage_times: dict[str, float] | None = None,
) -> GeneratedClouds:
    """The showers of one request batch (incident energies ``batch.condition``, MeV) from a
    CaloClouds ``model`` (its flow) and ``denoiser``; ``m`` holds the noise schedule and
    default sampler (a :class:`CaloCloudsConfig`), ``batch.sampler`` / ``batch.steps``
    override them. ``postprocess``: ``"torch"`` (default) decodes and calibrates the points
    with torch segment operations on the device
    (:mod:`pointcalo.models.showerflow.postprocess`), ``"numpy"`` with the numpy reference
    (:mod:`pointcalo.models.showerflow.calibrate`); both give the same showers.
    ``stage_times``: a dict that accumulates the seconds spent in the stages ``flow`` (with
    its base noise), ``noise`` (drawing each shower's point noise), ``network``, ``post``
    (decode and calibration) and, for a two-level model, ``blocks`` (re-expanding its blocks
    into sub-cells with the pattern library it carries, :mod:`pointcalo.blocks`). See the
    module docstring."""
    name = batch.sampler or m.sampler
    sample = SAMPLERS[name]
    if name in TAKES_SIGMA_MIN:
        sample = partial(sample, sigma_min=m.sigma_min)
    sigmas = schedule(name, batch.steps or m.steps, m.sigma_min, m.sigma_max, m.rho)
    denoiser.eval()
    device = batch.device
    n_feat, n_layers = len(normalizer.spec.features), model.n_layers
    if postprocess not in ("torch", "numpy"):
        raise ValueError(f"postprocess: '{postprocess}' is not 'torch' or 'numpy'")
    clock = _Clock(stage_times, device)
    e_inc, gens = batch.condition, batch.generators()
    named = batch.conditions
    _, feats, counts = draw_features(model.flow, normalizer, e_inc, gens, max_points, device, named)
    counts_np = counts.cpu().numpy()
    cond = torch.as_tensor(normalizer.encode_cond(e_inc, counts_np, named), device=device)
    ptr = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
    clock("flow")  # with drawing the flow's base noise
    x = point_noise(gens, counts_np, n_feat)
    clock("noise")

    def fresh_noise(step: int) -> torch.Tensor:
        return point_noise(gens, counts_np, n_feat)

    x0 = sample(
        lambda xx, s, c: denoiser(xx, s, c),
        (x * sigmas[0]).float().to(device),
        sigmas,
        cond=(cond, ptr),
        generator=fresh_noise,
    ).float()
    clock("network")
    if postprocess == "torch":
        post = PostProcess(normalizer, n_layers, model.widths).to(device)
        out = post(x0, counts, feats, torch.as_tensor(e_inc, device=device))
        pts = dict(zip(("E", "x", "y", "layer"), (c.cpu().numpy() for c in out), strict=True))
        pts["layer"] = pts["layer"].astype(np.int32)
    else:
        x0_np = x0.cpu().numpy()
        pts = normalizer.decode_points(x0_np)
        depth = x0_np[:, normalizer.spec.features.index("layer")]  # continuous depth
        calibrate(pts, depth, counts_np, feats.cpu().numpy(), e_inc, n_layers, model.widths)
        normalizer.snap(pts)  # back onto the sensor lattice (cells unchanged: it is finer)
    clock("post")
    offsets = np.concatenate([[0], np.cumsum(counts_np)]).astype(np.int64)
    if model.blocks is not None:  # a two-level model: blocks -> sub-cells
        library = model.blocks.library()
        draw = lambda k: point_uniform(gens, k).numpy()  # noqa: E731 (each cloud's stream)
        offsets, pts = library.expand_flat(offsets, pts, draw, incident=e_inc)
        clock("blocks")
    return GeneratedClouds(offsets, pts, e_inc)


class _Clock:
    """Accumulates wall seconds per stage into ``times`` (a no-op when it is None)."""

    def __init__(self, times: dict[str, float] | None, device: Any) -> None:
        self.times, self.cuda = times, torch.device(device).type == "cuda"
        self.t = time.perf_counter()

    def __call__(self, stage: str) -> None:
        if self.times is None:
            return
        if self.cuda:
            torch.cuda.synchronize()
        now = time.perf_counter()
        self.times[stage] = self.times.get(stage, 0.0) + now - self.t
        self.t = now


def generate(model, net, normalizer, cfg, batch: GenerationBatch, **options) -> GeneratedClouds:
    """The family's ``generate`` (run config ``cfg``; ``options`` of
    :func:`generate_caloclouds`)."""
    return generate_caloclouds(model, net, normalizer, cfg.model, batch, **options)
