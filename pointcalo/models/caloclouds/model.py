"""CaloClouds: an EDM-preconditioned point denoiser and the shower-level flow."""

from __future__ import annotations

import torch
from torch import nn

from pointcalo.blocks import PatternBuffers
from pointcalo.models.caloclouds.network import denoiser_net
from pointcalo.models.caloclouds.precond import EDMPrecond
from pointcalo.models.showerflow.features import ShowerFlow, n_shower_features


class CaloClouds(nn.Module):
    """Denoiser (EDM-preconditioned point network) and shower flow; with named conditions
    (``n_extra`` columns, :attr:`pointcalo.clouds.Normalizer.n_extra`) both take them (the
    denoiser's condition is ``[B, 2 + n_extra]``, the flow's context ``[B, 1 + n_extra]``).
    A two-level model (``blocks``: a checkpoint meta's ``blocks`` entry,
    :func:`pointcalo.blocks.library_meta`) also holds the pattern library that re-expands its
    blocks (``self.blocks``, else None)."""

    def __init__(
        self,
        cfg,
        n_features: int,
        mean_points: float,
        n_layers: int,
        n_extra: int = 0,
        blocks: dict | None = None,
    ) -> None:
        super().__init__()
        net = denoiser_net(cfg, n_features, mean_points, 2 + n_extra)
        self.denoiser = EDMPrecond(net, torch.ones(n_features))  # features are standardised
        self.widths = cfg.flow_widths
        self.hits = (cfg.hit_cell, cfg.hit_threshold) if cfg.hit_cell > 0 else None
        n_feats = n_shower_features(n_layers, self.widths, self.hits is not None)
        self.flow = ShowerFlow(
            n_feats, cfg.flow_transforms, cfg.flow_hidden, cfg.flow_passes, 1 + n_extra
        )
        self.n_layers, self.n_extra = n_layers, n_extra
        self.blocks = PatternBuffers(blocks) if blocks else None


def build(cfg, meta: dict, normalizer) -> CaloClouds:
    """A CaloClouds model from a run config, checkpoint meta and normaliser (no weights)."""
    return CaloClouds(
        cfg.model,
        int(meta["n_features"]),
        float(meta["mean_points"]),
        normalizer.spec.integer_max + 1,
        normalizer.n_extra,
        meta.get("blocks"),
    )
