"""What the grid-model families share: showers as voxels on a voxelize grid and back.

Grid models (the VAE, GAN and flow families of the field: CaloGAN, BIB-AE, CaloFlow, ...) learn
voxel energies on a fixed grid. Here the grid is a parameter (any voxelize preset, YAML or
CaloChallenge XML with identical layers), the training showers are projected onto it once when
the task starts (chunked, so memory is the ``[N, V]`` float32 result), and a training step
takes the rows of the clouds the engine picked (``StepContext.index``), so grid models train
in the same engine, with the same configs, checkpoints, resume and EMA as point models.

Preprocessing (:class:`VoxelScale`): voxel energies ``e`` (MeV) become ``y = log1p(e / e0) /
s`` with ``e0 = 0.01 MeV`` and ``s`` the largest ``log1p(e / e0)`` of the training voxels, so
``y`` lies in ``[0, 1]`` over 6 decades and a non-negative network output means a
non-negative energy. Generated voxels below ``e_min`` (default 0.01 MeV, a tenth of the
evaluation's cell threshold) are set to zero.

Generation (:func:`generate_grid`, :func:`voxels_to_clouds`) gives every shower its own
random stream and returns point clouds through :func:`voxelize.to_points` (one point per
voxel, uniform inside the cell), so ``pointcalo sample`` writes grid models' showers like any
other; :func:`pointcalo.models.voxels.write_voxels` writes the CaloChallenge layout too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

import voxelize as vx
from pointcalo.clouds import GeneratedClouds, PointCloudData
from pointcalo.config import ModelConfig
from pointcalo.errors import ConfigError
from pointcalo.models.registry import GenerationBatch, TaskBase

E0_MEV = 0.01


class GridModelConfig(ModelConfig):
    """Fields every grid family has: the grid (preset name or file) and the smallest
    generated voxel energy kept (MeV)."""

    grid: str = "ild-cylindrical"
    e_min: float = 0.01


def grid_shape(grid: vx.Grid) -> tuple[int, int, int]:
    """``(layers, rows, columns)`` of a grid whose layers all have one shape (cartesian:
    ``(ny, nx)``; cylindrical: ``(n_alpha, n_radial)``); a ConfigError otherwise."""
    shapes = {tuple(grid.layer_shape(i)) for i in range(grid.n_layers)}
    if len(shapes) != 1:
        raise ConfigError(
            f"model.grid: grid '{grid.name}' has layers of shapes {sorted(shapes)}; grid models "
            "need one shape for every layer"
        )
    rows, cols = shapes.pop()
    return grid.n_layers, int(rows), int(cols)


def project_clouds(data: PointCloudData, grid: vx.Grid) -> np.ndarray:
    """``[N, V]`` float32 voxel energies (MeV) of shower clouds (energy outside the grid is
    dropped; :func:`voxelize.project` bins them a cache-sized chunk at a time)."""
    cols = {k: data.points[k] for k in ("E", "x", "y", "layer")}
    return vx.project({**cols, "ptr": data.offsets}, grid).voxels


@dataclass
class VoxelScale:
    """The map between voxel energies (MeV) and network units ``y = log1p(e / e0) / s``, and
    between incident energies and the condition ``c = (log E_inc - mu) / sigma``."""

    s: float
    cond_mean: float
    cond_std: float
    e0: float = E0_MEV

    @classmethod
    def fit(cls, voxels: np.ndarray, incident: np.ndarray) -> VoxelScale:
        log_e = np.log(np.asarray(incident, np.float64))
        top = float(np.log1p(voxels.max() / E0_MEV)) if voxels.size else 1.0
        return cls(max(top, 1e-6), float(log_e.mean()), float(max(log_e.std(), 1e-6)))

    def encode(self, voxels: np.ndarray) -> np.ndarray:
        return (np.log1p(np.maximum(voxels, 0.0) / self.e0) / self.s).astype(np.float32)

    def decode(self, y: np.ndarray) -> np.ndarray:
        return self.e0 * np.expm1(np.clip(y, 0.0, None) * self.s)

    def cond(self, incident: np.ndarray) -> np.ndarray:
        return ((np.log(np.asarray(incident, np.float64)) - self.cond_mean) / self.cond_std)[
            :, None
        ].astype(np.float32)


class GridModel(nn.Module):
    """Base of a grid family's model: keeps its :class:`VoxelScale` in a buffer, so a
    checkpoint alone rebuilds the sampler."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale_values", torch.zeros(4, dtype=torch.float64))

    @property
    def scale(self) -> VoxelScale:
        s, mean, std, e0 = self.scale_values.tolist()
        return VoxelScale(s, mean, std, e0)

    def set_scale(self, scale: VoxelScale) -> None:
        self.scale_values.copy_(
            torch.tensor([scale.s, scale.cond_mean, scale.cond_std, scale.e0], dtype=torch.float64)
        )

    @property
    def noise_dim(self) -> int:
        """Noise numbers per shower the sampling network takes (default: ``cfg.latent``)."""
        return int(self.cfg.latent)


class GridTaskBase(TaskBase):
    """The data side of a grid family's training task: the training showers as voxels
    ``[N, layers, rows, columns]`` in the family's training units (:meth:`units`: network
    units by default) and their conditions; ``rows(ctx)`` gives a step's."""

    def __init__(self, cfg, data: PointCloudData | None) -> None:
        if data is None:
            raise ConfigError("grid models train on shower data (data.path or simulated)")
        self.grid = vx.load_grid(cfg.model.grid)
        self.shape = grid_shape(self.grid)
        voxels = project_clouds(data, self.grid)
        self.scale = VoxelScale.fit(voxels, data.condition)
        self.voxels = torch.from_numpy(self.units(voxels)).reshape(-1, *self.shape)
        self.c = torch.from_numpy(self.scale.cond(data.condition))
        self.meta = {"grid_shape": list(self.shape)}

    def units(self, voxels: np.ndarray) -> np.ndarray:
        """Training voxels as the family trains on them (``[N, V]`` float32)."""
        return self.scale.encode(voxels)

    def rows(self, ctx) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(np.asarray(ctx.index), dtype=torch.int64)
        return self.voxels[index].to(ctx.device), self.c[index].to(ctx.device)


def voxels_to_clouds(
    voxels: np.ndarray, grid: vx.Grid, condition: np.ndarray, seeds: list[int]
) -> GeneratedClouds:
    """Point clouds (one point per non-empty voxel, uniform inside its cell, from the shower's
    own seed) of ``voxels [N, V]`` MeV."""
    offsets, cols = [0], {k: [] for k in ("E", "x", "y", "layer")}
    for i, row in enumerate(voxels):
        cloud = vx.to_points(row[None], grid, mode="uniform", seed=seeds[i])
        for k in cols:
            cols[k].append(getattr(cloud, k))
        offsets.append(offsets[-1] + len(cloud.E))
    points = {k: np.concatenate(v) if v else np.zeros(0, np.float32) for k, v in cols.items()}
    points["layer"] = points["layer"].astype(np.int32)
    return GeneratedClouds(np.asarray(offsets, np.int64), points, np.asarray(condition, np.float64))


@torch.no_grad()
def generate_grid(
    model: GridModel, net: nn.Module, normalizer, cfg: Any, batch: GenerationBatch
) -> GeneratedClouds:
    """A grid family's ``generate``: the showers of one request batch (incident energies
    ``batch.condition``, MeV) from ``net(noise [B, model.noise_dim], cond [B, 1])`` (a VAE's
    decoder, a GAN's generator, a flow's inverse), each shower's noise from its own stream;
    the clouds carry the ``[B, V]`` voxels (MeV) beside the points that stand for them."""
    net.eval()
    grid = vx.load_grid(cfg.model.grid)
    gens = batch.generators()
    z = torch.stack([torch.randn(model.noise_dim, generator=g) for g in gens]).to(batch.device)
    c = torch.from_numpy(model.scale.cond(batch.condition)).to(batch.device)
    y = net(z, c).float().reshape(len(batch), -1).cpu().numpy()
    voxels = model.scale.decode(y).astype(np.float32)
    return grid_clouds(voxels, grid, batch.condition, batch.keys, cfg.model.e_min)


def grid_clouds(
    voxels: np.ndarray, grid: vx.Grid, condition: np.ndarray, keys: list, e_min: float
) -> GeneratedClouds:
    """Generated ``voxels [N, V]`` (MeV) as a grid family returns them: voxels below
    ``e_min`` set to zero (in place), one point per remaining voxel from each shower's seed
    (``keys``, :func:`shower_seeds`), the voxels carried beside the points."""
    voxels[voxels < e_min] = 0.0
    clouds = voxels_to_clouds(voxels, grid, condition, shower_seeds(keys))
    clouds.voxels = voxels
    return clouds


def write_voxels(path, voxels: np.ndarray, incident: np.ndarray):
    """Generated voxels as a CaloChallenge-layout file (``incident_energies``, ``showers``)."""
    from voxelize.calochallenge_files import write_calochallenge

    return write_calochallenge(path, incident, voxels)


def shower_seeds(keys: list[tuple[int, ...]]) -> list[int]:
    """One integer seed per shower from its key (e.g. ``(seed, index)``)."""
    return [int(np.random.SeedSequence(list(key)).generate_state(1)[0]) for key in keys]
