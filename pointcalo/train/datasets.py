"""Training data as configured (a shower file, JetNet-layout jets, or simulated showers) and
prepared for a run (validation split, normalisation, batch checks)."""

from __future__ import annotations

from dataclasses import dataclass

import awkward as ak
import numpy as np

from pointcalo import streams
from pointcalo.clouds import Normalizer, PointCloudData, from_showers, shower_spec
from pointcalo.config import DataConfig, RunConfig
from pointcalo.errors import PointcaloError
from pointcalo.io.calochallenge import file_grid, read_calochallenge_showers, voxel_file_grid


def load_training_data(cfg: DataConfig, seed: int = 0, path: str | None = None) -> PointCloudData:
    """Read or simulate the training clouds described by ``cfg`` (``path`` replaces
    ``cfg.path``, e.g. for the validation file). A CaloChallenge-layout voxel file becomes
    showers of one point per non-empty voxel at the voxel's centre (its grid from the file,
    :func:`pointcalo.io.calochallenge.file_grid`): a grid model on that grid trains on the
    file's voxels exactly (:func:`for_data` sets the grid)."""
    if path is not None:
        cfg = cfg.model_copy(update={"path": path})
    if cfg.format == "jetnet":
        from pointcalo.errors import ConfigError
        from pointcalo.io.jetnet import read_jetnet

        if cfg.path is None:
            raise ConfigError("data.path: a JetNet-layout file is needed for format: jetnet")
        return read_jetnet(cfg.path, cfg.max_showers)
    attrs: dict = {}
    if cfg.path is None:
        from pointcalo.simulate import ShowerSimulator

        lo, hi = cfg.energy_GeV
        showers = ShowerSimulator().simulate(cfg.simulate, (lo * 1e3, hi * 1e3), seed=seed)
        source = f"pointcalo simulate ({cfg.simulate} photons, {lo}-{hi} GeV, seed {seed})"
    elif voxel_file_grid(cfg.path) is not None:  # a CaloChallenge-layout voxel file
        grid = file_grid(cfg.path)
        showers = read_calochallenge_showers(cfg.path, grid, mode="centre", stop=cfg.max_showers)
        source = f"{cfg.path} (voxels of '{grid.name}' as one point per voxel at its centre)"
    else:
        from pointcalo import io

        with io.open_reader(cfg.path) as reader:
            stop = min(cfg.max_showers or reader.n_showers, reader.n_showers)
            showers = reader.read(0, stop)
            attrs = dict(getattr(reader, "attrs", None) or {})
        source = cfg.path
    if len(showers) == 0:
        raise PointcaloError(f"{source}: no showers to train on")
    top = ak.max(showers["points", "layer"], axis=None) if len(showers) else None
    spec = shower_spec(attrs, int(top) if top is not None else 0)
    data = from_showers(showers, spec, conditions=cfg.conditions, source=str(source))
    data.meta["source"] = source
    return data


@dataclass
class Prepared:
    """A run's data, ready for the loop: the training and validation clouds sharing one
    normaliser."""

    train: PointCloudData
    val: PointCloudData
    normalizer: Normalizer

    @property
    def mean_points(self) -> float:
        return float(self.train.counts.mean())

    def use(self, normalizer: Normalizer) -> None:
        """Normalise both parts with ``normalizer`` (e.g. a teacher's, for distillation)."""
        self.normalizer = self.train.normalizer = self.val.normalizer = normalizer


def prepare(
    cfg: RunConfig,
    data: PointCloudData | None = None,
    normalizer: Normalizer | None = None,
    world: int = 1,
) -> Prepared:
    """The training and validation clouds of a run: ``data`` (else what ``cfg.data`` names),
    in the model's frame (``data.frame``, :mod:`pointcalo.frames`), validation from
    ``data.val_path`` or a seeded hold-out of ``val_fraction``; normalised by
    ``normalizer`` (a resumed or initialising checkpoint's) or one fitted on the training
    part. A batch larger than the data, or one that does not split over ``world`` processes,
    is a one-line error."""
    from pointcalo.frames import to_model_frame

    t = cfg.train
    data = data if data is not None else load_training_data(cfg.data, seed=t.seed)
    data = to_model_frame(data, cfg.data.frame)
    if cfg.data.val_path is not None:
        val = load_training_data(cfg.data, seed=t.seed, path=cfg.data.val_path)
        val, train = to_model_frame(val, cfg.data.frame), data
    else:
        n_val = round(len(data) * cfg.data.val_fraction)
        perm = streams.numpy_stream(t.seed, streams.VALIDATION).permutation(len(data))
        val, train = data.subset(np.sort(perm[:n_val])), data.subset(np.sort(perm[n_val:]))
    if normalizer is None:
        normalizer = Normalizer.fit(
            data.spec, train.points, train.condition, train.counts, train.extra
        )
    train.dequantise_integer = cfg.data.dequantise_layer
    if len(train) < t.batch_size:
        raise PointcaloError(
            f"train.batch_size: {t.batch_size} is more than the {len(train)} training clouds"
        )
    if t.batch_size % world:
        raise PointcaloError(
            f"train.batch_size: {t.batch_size} does not split over {world} processes"
        )
    prepared = Prepared(train, val, normalizer)
    prepared.use(normalizer)
    return prepared


def for_data(cfg: RunConfig, log=print) -> RunConfig:
    """``cfg`` adapted to its training file: a grid model given a CaloChallenge-layout voxel
    file trains on the file's own grid (``model.grid`` is set to it, and said)."""
    path = cfg.data.path
    if path is None or cfg.family.point_output or voxel_file_grid(path) is None:
        return cfg
    grid = file_grid(path)
    if cfg.model.grid != grid.name:
        log(f"model.grid: {grid.name}, the grid of {path} (was {cfg.model.grid})")
        cfg = cfg.with_overrides(model={"grid": grid.name})
    return cfg
