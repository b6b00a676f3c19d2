"""Reusable layers: segment pooling over ragged point batches, EPiC layers."""

from __future__ import annotations

from pointcalo.nn.epic import EPiCLayer
from pointcalo.nn.pooling import batch_index, segment_mean, segment_sum

__all__ = ["EPiCLayer", "batch_index", "segment_mean", "segment_sum"]
