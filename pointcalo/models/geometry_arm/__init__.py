"""The geometry-aware autoregressive model (Liu, Ghosh, Smith, Baldi, Whiteson, "Geometry-aware
Autoregressive Models for Calorimeter Shower Simulations", NeurIPS ML4PS 2022): one model for
many segmentations of one calorimeter.

Training showers are points (``g4_calogan_like.h5``: deposits on a 1.25 mm lattice); every step
bins a batch of them onto one segmentation drawn from a family (:mod:`voxelize.segmentations`,
the held-out ones excluded) and trains the shared cell network (:mod:`.model`) on all layers of
it at once. Far cells are mostly empty, so a step scores every cell within ``core_mm`` of the
axis and a uniform random subset of the others, weighted by their inverse selection
probability (an unbiased estimate of the shower's log-likelihood). Generation runs cell by
cell along each layer's spiral, layer after layer, on any cartesian or rectilinear grid of the
same layers,
including segmentations never seen (``pointcalo sample MODEL --grid GRID.yaml``).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field

import voxelize as vx
from pointcalo.clouds import GeneratedClouds
from pointcalo.config import ModelConfig
from pointcalo.errors import ConfigError
from pointcalo.models.geometry_arm.cells import Segmentation, segmentation_of
from pointcalo.models.geometry_arm.model import GeometryARM, class_edges, to_u
from pointcalo.models.optim import adam
from pointcalo.models.registry import Family, GenerationBatch, TaskBase
from pointcalo.models.voxels import grid_clouds, project_clouds

#: Segmentations of the CaloGAN-like family held out of training by default (zero-shot): every
#: segmentation with the (24, 48) inner layer, one more pairing, all 15 with the transition-
#: region middle layer (cells of two sizes: the family's only non-uniform layer), and (not in
#: the family, for an extrapolation in two layers) CaloGAN's own 3x96 / 12x12 / 12x6. Names
#: may be shell patterns.
HELD_OUT = (
    "calogan-24x48-12x12-24x24",
    "calogan-24x48-48x24-24x24",
    "calogan-24x48-48x48-24x24",
    "calogan-192x24-48x24-24x24",
    "calogan-*-36x48t-*",
    "calogan",
)


class GeometryARMConfig(ModelConfig):
    """``segmentations``: the family trained on (``calogan``:
    :func:`voxelize.segmentations.calogan_family` with the transition-region layer, 60 grids)
    minus ``held_out`` (names or shell patterns; grids not in the family are only evaluation
    targets); ``grid``: where ``pointcalo sample``
    generates unless ``--grid`` says otherwise; ``neighbours`` causal neighbours per cell;
    network ``hidden`` width and ``depth``; ``bins`` energy classes besides zero; a step scores
    every cell within ``core_mm`` of the axis and about ``cells_per_layer`` in all per layer;
    cells below ``e_min`` MeV are empty."""

    name: Literal["geometry_arm"] = "geometry_arm"
    segmentations: Literal["calogan"] = "calogan"
    held_out: list[str] = Field(default_factory=lambda: list(HELD_OUT))
    grid: str = "calogan"
    neighbours: int = Field(8, ge=0)
    hidden: int = Field(128, ge=4)
    depth: int = Field(3, ge=1)
    bins: int = Field(64, ge=2)
    core_mm: float = Field(40.0, ge=0)
    cells_per_layer: int = Field(1024, ge=1)
    e_min: float = Field(0.01, gt=0)


def _held(name: str, m: GeometryARMConfig) -> bool:
    """Whether ``model.held_out`` names the segmentation ``name`` (names or shell patterns)."""
    from fnmatch import fnmatchcase

    return any(fnmatchcase(name, pattern) for pattern in m.held_out)


def training_grids(m: GeometryARMConfig) -> list[vx.Grid]:
    """The family's segmentations minus the held-out ones."""
    from voxelize.segmentations import calogan_family

    grids = [g for g in calogan_family(transition=True) if not _held(g.name, m)]
    if not grids:
        raise ConfigError("model.held_out: every segmentation of the family is held out")
    return grids


def held_out_names(m: GeometryARMConfig) -> list[str]:
    """The held-out segmentations by name: the family's that match ``held_out`` and the
    names that are not in the family (presets or files)."""
    from voxelize.segmentations import calogan_family

    family = [g.name for g in calogan_family(transition=True)]
    named = [f for f in family if _held(f, m)]
    return named + [p for p in m.held_out if not any(c in p for c in "*?[") and p not in family]


_SEGMENTATIONS: dict[tuple[str, int], Segmentation] = {}


def cached_segmentation(grid: vx.Grid, k: int, n_layers: int) -> Segmentation:
    """:func:`segmentation_of`, kept per grid (its dict form) and ``k`` for the process."""
    key = (repr(sorted(grid.to_dict().items(), key=lambda kv: kv[0])), k)
    if key not in _SEGMENTATIONS:
        if len(_SEGMENTATIONS) > 64:
            _SEGMENTATIONS.clear()
        _SEGMENTATIONS[key] = segmentation_of(grid, k, n_layers)
    return _SEGMENTATIONS[key]


def images_of(voxels: torch.Tensor, grid: vx.Grid) -> list[torch.Tensor]:
    """Per-layer energy images ``[B, ny, nx]`` of voxels ``[B, V]``."""
    off = grid.layer_offset
    return [
        voxels[:, off[i] : off[i + 1]].reshape(-1, *grid.layer_shape(i))
        for i in range(grid.n_layers)
    ]


def binned(
    data, index: np.ndarray, grid: vx.Grid, device: torch.device | str = "cpu"
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Showers ``index`` of ``data`` (:class:`pointcalo.clouds.PointCloudData`) binned onto
    ``grid``: their per-layer images (MeV) and incident energies ``[B]`` (MeV), float32."""
    vox = torch.from_numpy(project_clouds(data.subset(index), grid)).to(device)
    incident = torch.from_numpy(np.asarray(data.condition)[index]).float().to(device)
    return images_of(vox, grid), incident


class GeometryARMTask(TaskBase):
    """Training by the engine: per step one segmentation of the family, the batch's showers
    binned onto it, the weighted cross-entropy of every layer (teacher forcing)."""

    def __init__(self, cfg, n_features: int, mean_points: float, data=None) -> None:
        if data is None:
            raise ConfigError("geometry_arm trains on shower points (data.path)")
        self.cfg, self.data = cfg, data
        m = cfg.model
        self.grids = training_grids(m)
        n_layers = self.grids[0].n_layers
        top = int(data.points["layer"].max()) if len(data.points["layer"]) else 0
        if top >= n_layers:
            raise ConfigError(
                f"data: showers with {top + 1} layers; the '{m.segmentations}' segmentations "
                f"have {n_layers}"
            )
        self.model = GeometryARM(m, n_layers)
        incident = np.asarray(data.condition, np.float64)
        log_e = np.log(incident)
        self.model.cond_stats.copy_(torch.tensor([log_e.mean(), max(log_e.std(), 1e-6)]))
        # energy classes from the non-zero cells of up to 256 showers on 8 grids
        rng = np.random.default_rng(cfg.train.seed)
        few = rng.choice(len(data), min(len(data), 256), replace=False)
        us = []
        for g in rng.choice(len(self.grids), min(len(self.grids), 8), replace=False):
            vox = torch.from_numpy(project_clouds(data.subset(few), self.grids[g]))
            keep = vox >= m.e_min
            us.append(to_u(vox, torch.from_numpy(incident[few]).float())[keep].numpy())
        self.model.edges.copy_(torch.from_numpy(class_edges(np.concatenate(us), m.bins)))
        # layer totals: quantile classes of log(E_layer / E_inc) per layer, with margins
        layer = np.asarray(data.points["layer"])
        shower = np.repeat(np.arange(len(data)), np.diff(np.asarray(data.offsets)))
        e_layer = np.zeros((len(data), n_layers))
        np.add.at(e_layer, (shower, layer), np.asarray(data.points["E"], np.float64))
        f = np.log(np.maximum(e_layer, 1e-3) / incident[:, None])
        q = np.quantile(f, np.linspace(0.0, 1.0, m.bins + 1), axis=0).T
        pad = 0.05 * (q[:, -1] - q[:, 0]) + 1e-3
        q[:, 0], q[:, -1] = q[:, 0] - pad, q[:, -1] + pad
        q = np.maximum.accumulate(q + np.arange(m.bins + 1) * 1e-7, axis=1)
        self.model.total_edges.copy_(torch.from_numpy(q))
        self.meta = {
            "n_layers": n_layers,
            "segmentations": [g.name for g in self.grids],
            "held_out": held_out_names(m),
        }

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        t = self.cfg.train
        return {"arm": adam(self.model.parameters(), t.lr, t.betas)}

    def ema_target(self) -> GeometryARM:
        return self.model

    def step(self, batch, ctx, opts) -> dict:
        m = self.cfg.model
        rng = np.random.default_rng([self.cfg.train.seed, ctx.step, 7])
        grid = self.grids[int(rng.integers(len(self.grids)))]
        seg = cached_segmentation(grid, m.neighbours, self.model.n_layers)
        images, incident = binned(self.data, np.asarray(ctx.index), grid, ctx.device)
        cells_loss = torch.zeros((), device=ctx.device)
        for layer, cells in enumerate(seg.layers):
            sel, weight = pick_cells(cells.r, m.core_mm, m.cells_per_layer, rng)
            cells_loss = cells_loss + self.model.layer_loss(
                seg, layer, images, incident,
                torch.from_numpy(sel).to(ctx.device), torch.from_numpy(weight).to(ctx.device),
            )  # fmt: skip
        cells_loss = cells_loss / sum(len(c) for c in seg.layers)  # nats per cell
        totals = self.model.total_loss([im.sum((1, 2)) for im in images], incident)
        loss = cells_loss + totals
        ctx.update(loss, self.model, "arm")
        return {"loss": loss.item(), "cells": cells_loss.item(), "totals": totals.item()}


def pick_cells(
    r: np.ndarray, core_mm: float, budget: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The cells a step scores: all with ``r < core_mm``, each other with probability ``q``
    (so about ``budget`` in all, and at least 64 of the others); weights ``1`` and ``1 / q``
    (float32)."""
    core = r < core_mm
    rest = np.flatnonzero(~core)
    q = min(1.0, max(budget - int(core.sum()), 64) / max(len(rest), 1))
    chosen = rest[rng.random(len(rest)) < q]
    sel = np.concatenate([np.flatnonzero(core), chosen])
    weight = np.concatenate([np.ones(int(core.sum())), np.full(len(chosen), 1.0 / q)])
    return sel, weight.astype(np.float32)


@torch.no_grad()
def generate_arm(
    model: GeometryARM, net: GeometryARM, normalizer, cfg: Any, batch: GenerationBatch,
    grid: str | None = None,
) -> GeneratedClouds:  # fmt: skip
    """The family's ``generate``: showers of ``batch`` on ``grid`` (a preset, YAML or XML grid;
    default ``model.grid``), cell by cell, each shower from its own stream; the clouds carry
    their voxels."""
    m = cfg.model
    net.eval()
    g = vx.load_grid(grid or m.grid)
    seg = cached_segmentation(g, m.neighbours, net.n_layers)
    n = sum(len(c) + 1 for c in seg.layers)
    uniforms = torch.stack([torch.rand(n, 2, generator=gen) for gen in batch.generators()])
    uniforms = uniforms.to(batch.device)
    incident = torch.from_numpy(batch.condition).float().to(batch.device)
    images: list[torch.Tensor] = []
    start = 0
    for layer, cells in enumerate(seg.layers):
        u = uniforms[:, start : start + len(cells) + 1]
        images.append(net.generate_layer(seg, layer, images, incident, u))
        start += len(cells) + 1
    voxels = torch.cat([im.flatten(1) for im in images], 1).cpu().numpy().astype(np.float32)
    return grid_clouds(voxels, g, batch.condition, batch.keys, m.e_min)


@torch.no_grad()
def cell_nll(net: GeometryARM, data, grid: vx.Grid, chunk: int = 64) -> float:
    """Mean negative log-likelihood per cell (nats; teacher forcing, all cells) of the showers
    ``data`` (:class:`pointcalo.clouds.PointCloudData`) binned onto ``grid``: how well the
    model knows showers on a segmentation, seen or held out, without sampling."""
    net.eval()
    seg = cached_segmentation(grid, net.cfg.neighbours, net.n_layers)
    total, n = 0.0, 0
    for lo in range(0, len(data), chunk):
        index = np.arange(lo, min(lo + chunk, len(data)))
        images, incident = binned(data, index, grid)
        for layer, cells in enumerate(seg.layers):
            everything = torch.arange(len(cells))
            loss = net.layer_loss(seg, layer, images, incident, everything, torch.ones(len(cells)))
            total += float(loss) * len(index)
        n += len(index)
    return total / max(n, 1) / sum(len(c) for c in seg.layers)


def _build(cfg, meta, normalizer) -> GeometryARM:
    return GeometryARM(cfg.model, int(meta["n_layers"]))


FAMILY = Family(
    name="geometry_arm",
    config=GeometryARMConfig,
    task=GeometryARMTask,
    build=_build,
    sampling_net=lambda model: model,
    generate=generate_arm,
    point_output=False,
    any_grid=True,
)

__all__ = [
    "FAMILY",
    "GeometryARM",
    "GeometryARMConfig",
    "GeometryARMTask",
    "cell_nll",
    "pick_cells",
]
