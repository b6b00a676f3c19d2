"""Pooling over showers of a flat point batch (segment reductions over ``ptr``; no padding).

The default path uses torch's own ``scatter_add`` (CPU and GPU, differentiable); when the
optional ``torch-scatter`` extra is installed, :func:`segment_sum` uses its ``segment_csr``,
which is faster on GPUs.
"""

from __future__ import annotations

import torch

try:  # optional extra: pip install pointcalo[scatter]
    from torch_scatter import segment_csr as _segment_csr
except ImportError:  # pragma: no cover - the default environment has no torch-scatter
    _segment_csr = None


def batch_index(ptr: torch.Tensor) -> torch.Tensor:
    """Shower index of every point, ``[P]``, from offsets ``ptr [B + 1]``."""
    counts = ptr[1:] - ptr[:-1]
    return torch.repeat_interleave(torch.arange(counts.shape[0], device=ptr.device), counts)


def segment_sum(
    x: torch.Tensor, ptr: torch.Tensor, batch: torch.Tensor | None = None
) -> torch.Tensor:
    """Sum of ``x [P, F]`` over each shower: ``[B, F]`` (empty showers give 0)."""
    if _segment_csr is not None and x.is_cuda:
        return _segment_csr(x, ptr, reduce="sum")
    batch = batch_index(ptr) if batch is None else batch
    out = x.new_zeros((ptr.shape[0] - 1, x.shape[1]))  # shapes, not len(): traceable
    # scatter_add, not index_add_: the ONNX exporter turns index_add_ into a scatter that
    # overwrites instead of summing
    return out.scatter_add(0, batch[:, None].expand(-1, x.shape[1]), x)


def segment_mean(
    x: torch.Tensor, ptr: torch.Tensor, batch: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean of ``x [P, F]`` over each shower: ``[B, F]`` (empty showers give 0)."""
    counts = (ptr[1:] - ptr[:-1]).clamp(min=1).to(x.dtype)
    return segment_sum(x, ptr, batch) / counts[:, None]
