"""Generating clouds from a trained model: ``pointcalo sample``.

Every cloud ``i`` has its own random stream seeded from ``(seed, i)``: its condition, its
number of points and its noise come from it, so a cloud is the same whatever the batch size or
device order it is generated in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from pointcalo.config import EPiCGANConfig, validate_config
from pointcalo.models.epic_gan import EPiCGAN
from pointcalo.models.streams import cloud_generators, cloud_noise
from pointcalo.train.checkpoint import load_checkpoint
from pointcalo.train.data import Normalizer


@dataclass
class GeneratedClouds:
    """Generated clouds: ``offsets [N + 1]``, physical point columns, conditions ``[N]``."""

    offsets: np.ndarray
    points: dict[str, np.ndarray]
    condition: np.ndarray


@torch.no_grad()
def generate_clouds(
    generator: nn.Module,
    count: nn.Module,
    normalizer: Normalizer,
    condition: np.ndarray,
    cfg: EPiCGANConfig,
    *,
    seed: int = 0,
    first_index: int = 0,
    device: Any = "cpu",
    batch_size: int = 256,
    max_points: int = 20000,
) -> GeneratedClouds:
    """Clouds for the physical conditions ``condition [N]`` (MeV for showers)."""
    generator.eval()
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
        z, zg = cloud_noise(gens, counts, cfg.z_dim, cfg.g_dim)
        ptr = torch.as_tensor(np.concatenate([[0], np.cumsum(counts)]), device=device)
        x = generator(z.to(device), zg.to(device), torch.as_tensor(cond, device=device), ptr)
        cols.append(normalizer.decode_points(x.float().cpu().numpy()))
        offsets.append(offsets[-1][-1] + np.cumsum(counts))
    points = {k: np.concatenate([c[k] for c in cols]) for k in normalizer.spec.features}
    return GeneratedClouds(np.concatenate(offsets), points, np.asarray(condition, np.float64))


def load_generator(path: str | os.PathLike[str], device: Any = "cpu"):
    """(EMA generator, point-count model, normaliser, config) of an EPiC-GAN checkpoint."""
    loaded = load_model(path, device)
    return loaded.net, loaded.model.count.cpu(), loaded.normalizer, loaded.cfg


def sample_conditions(
    n: int, low: float, high: float, seed: int, first_index: int = 0
) -> np.ndarray:
    """Conditions of clouds ``first_index .. first_index + n - 1``, uniform in ``[low, high]``,
    each from the cloud's own stream (so any range of clouds can be made alone)."""
    if high <= low:
        return np.full(n, float(low))
    idx = range(first_index, first_index + n)
    u = np.array([np.random.default_rng([seed, i, 3]).random() for i in idx])
    return low + (high - low) * u


@dataclass
class LoadedModel:
    """A trained model from its checkpoint alone: config, modules (sampling network with its
    EMA weights), normalisation."""

    cfg: Any
    model: nn.Module
    net: nn.Module
    normalizer: Normalizer


def load_model(path: str | os.PathLike[str], device: Any = "cpu") -> LoadedModel:
    """Rebuild any pointcalo model from a checkpoint (EMA weights for sampling)."""
    state = load_checkpoint(path)
    cfg = validate_config(state["config"], source=str(path))
    meta = state["meta"]
    normalizer = Normalizer.from_dict(state["normalizer"])
    if cfg.model.name == "caloclouds":
        from pointcalo.models.caloclouds.task import CaloClouds

        model = CaloClouds(
            cfg.model,
            int(meta["n_features"]),
            float(meta["mean_points"]),
            normalizer.spec.integer_max + 1,
        )
        net = model.denoiser
    elif cfg.model.name == "consistency":
        from pointcalo.models.distill import rebuild

        model = rebuild(cfg, meta, normalizer)
        net = model.denoiser
    else:
        model = EPiCGAN(cfg.model, int(meta["n_features"]), float(meta["mean_points"]))
        net = model.generator
    model.load_state_dict(state["model"])
    net.load_state_dict(state["ema"])
    model.to(device).eval()
    return LoadedModel(cfg, model, net, normalizer)


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
    batch_size: int = 256,
    sampler: str | None = None,
    steps: int | None = None,
) -> GeneratedClouds:
    """Clouds from any model family (``net`` is the sampling network, e.g. the EMA copy)."""
    if cfg.model.name in ("caloclouds", "consistency"):
        from pointcalo.models.caloclouds.task import generate_caloclouds

        model_cfg = cfg.model
        if cfg.model.name == "consistency":
            from pointcalo.models.distill import sampling_config

            model_cfg = sampling_config(model, cfg)
        return generate_caloclouds(
            model,
            net,
            normalizer,
            condition,
            model_cfg,
            seed=seed,
            first_index=first_index,
            device=device,
            batch_size=batch_size,
            sampler=sampler,
            steps=steps,
        )
    return generate_clouds(
        net,
        model.count.cpu(),
        normalizer,
        condition,
        cfg.model,
        seed=seed,
        first_index=first_index,
        device=device,
        batch_size=batch_size,
    )


def generate_to_file(
    loaded: LoadedModel,
    writer: Any,
    n: int,
    low: float,
    high: float,
    *,
    seed: int = 0,
    device: Any = "cpu",
    batch_size: int = 256,
    chunk: int = 2048,
    sampler: str | None = None,
    steps: int | None = None,
    net: nn.Module | None = None,
    progress: Any = None,
) -> int:
    """Generate ``n`` showers (conditions uniform in ``[low, high]`` MeV) chunk by chunk into a
    shower ``writer`` (:func:`pointcalo.io.open_writer`), so memory is bounded by the chunk.

    ``net`` replaces the sampling network (e.g. wrapped for autocast or compiled);
    ``progress(done)`` is called after every chunk. Returns the number written.
    """
    from pointcalo.errors import PointcaloError
    from pointcalo.showers import make_showers

    if loaded.normalizer.spec.condition != "incident_energy":
        raise PointcaloError("writing generated jets is done with pointcalo.io.jetnet")
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        cond = sample_conditions(stop - start, low, high, seed, first_index=start)
        clouds = generate(
            loaded.model,
            net if net is not None else loaded.net,
            loaded.normalizer,
            cond,
            loaded.cfg,
            seed=seed,
            first_index=start,
            device=device,
            batch_size=batch_size,
            sampler=sampler,
            steps=steps,
        )
        writer.write(
            make_showers(
                cond.astype(np.float32), clouds.points, offsets=clouds.offsets, allow_empty=True
            )
        )
        if progress is not None:
            progress(stop)
    return n
