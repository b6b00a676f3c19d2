"""Training data as configured: a shower file, JetNet-layout jets, or simulated showers."""

from __future__ import annotations

from pointcalo.clouds import PointCloudData, from_showers
from pointcalo.config import DataConfig
from pointcalo.errors import PointcaloError


def load_training_data(cfg: DataConfig, seed: int = 0, path: str | None = None) -> PointCloudData:
    """Read or simulate the training clouds described by ``cfg`` (``path`` replaces
    ``cfg.path``, e.g. for the validation file)."""
    if path is not None:
        cfg = cfg.model_copy(update={"path": path})
    if cfg.format == "jetnet":
        from pointcalo.errors import ConfigError
        from pointcalo.io.jetnet import read_jetnet

        if cfg.path is None:
            raise ConfigError("data.path: a JetNet-layout file is needed for format: jetnet")
        return read_jetnet(cfg.path, cfg.max_showers)
    if cfg.path is None:
        from pointcalo.simulate import ShowerSimulator

        lo, hi = cfg.energy_GeV
        showers = ShowerSimulator().simulate(cfg.simulate, (lo * 1e3, hi * 1e3), seed=seed)
        source = f"pointcalo simulate ({cfg.simulate} photons, {lo}-{hi} GeV, seed {seed})"
    else:
        from pointcalo import io

        with io.open_reader(cfg.path) as reader:
            stop = min(cfg.max_showers or reader.n_showers, reader.n_showers)
            showers = reader.read(0, stop)
        source = cfg.path
    if len(showers) == 0:
        raise PointcaloError(f"{source}: no showers to train on")
    data = from_showers(showers, conditions=cfg.conditions, source=str(source))
    data.meta["source"] = source
    return data
