"""Graphs within each cloud of a flat point batch, in torch-geometric's convention.

A batch is ``points [P, D]`` with offsets ``ptr [B + 1]`` (cloud ``b`` owns rows
``ptr[b]:ptr[b + 1]``). Graphs never connect two clouds. ``edge_index [2, E]`` follows
torch-geometric's default ``flow="source_to_target"``: row 0 holds the source ``j`` (the
neighbour), row 1 the target ``i`` (the node that receives the message), so the result plugs
into ``torch_geometric.nn`` layers (``MessagePassing``, ``EdgeConv``, ...) directly.

- :func:`knn_graph`: each node receives edges from its ``k`` nearest other nodes (Euclidean),
  as ``torch_cluster.knn_graph``; with torch-cluster installed it is used, otherwise a native
  version: on a CPU for clouds over 256 points one k-d tree per cloud (scipy), else the
  distances cloud block by cloud block (clouds padded to the block's
  largest, at most ``max_elements`` distances at a time, squared distances from one batched
  matrix product). Both give, per target, its ``k`` nearest sources; among equidistant
  candidates (points on a lattice) the choice may differ.
- :func:`full_graph`: every ordered pair of distinct nodes of a cloud (small clouds: jets).
"""

from __future__ import annotations

import numpy as np
import torch

from pointcalo.nn.pooling import batch_index


def _has_torch_cluster() -> bool:
    try:
        import torch_cluster  # noqa: F401
    except ImportError:
        return False
    return True


def knn_graph(
    points: torch.Tensor,
    ptr: torch.Tensor,
    k: int,
    *,
    loop: bool = False,
    native: bool | None = None,
    max_elements: int = 1 << 24,
) -> torch.Tensor:
    """Edges from each node's ``k`` nearest nodes of the same cloud.

    Args:
        points: ``[P, D]`` coordinates the distances are taken in.
        ptr: ``[B + 1]`` offsets.
        k: neighbours per node (a cloud of ``n <= k`` nodes gives each node its ``n - 1``
            others, or ``n`` with ``loop``).
        loop: count a node as its own nearest neighbour (self-loop).
        native: force (True) or forbid (False) the native version; default: torch-cluster
            when installed.
        max_elements: distances held at once by the native version (memory bound).

    Returns:
        ``edge_index [2, E]`` int64 (source, target), grouped by target in node order and,
        for the native version, nearest source first.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ptr = ptr.to(points.device, torch.int64)
    if native is None:
        native = not _has_torch_cluster()
    if not native:
        import torch_cluster

        batch = batch_index(ptr)
        return torch_cluster.knn_graph(points, k, batch, loop=loop, flow="source_to_target")
    counts = (ptr[1:] - ptr[:-1]).tolist()
    if points.device.type == "cpu" and max(counts, default=0) > 256:
        return _knn_kdtree(points, ptr, counts, k, loop)
    sources, targets = [], []
    b = 0
    while b < len(counts):
        # as many clouds as fit max_elements padded distances (at least one)
        n_max, stop = counts[b], b + 1
        while stop < len(counts):
            n_next = max(n_max, counts[stop])
            if (stop + 1 - b) * n_next * n_next > max_elements:
                break
            n_max, stop = n_next, stop + 1
        s, t = _knn_block(points, ptr, counts, b, stop, n_max, k, loop)
        sources.append(s)
        targets.append(t)
        b = stop
    if not sources:
        return torch.zeros(2, 0, dtype=torch.int64, device=points.device)
    return torch.stack([torch.cat(sources), torch.cat(targets)])


def _knn_kdtree(
    points: torch.Tensor, ptr: torch.Tensor, counts: list[int], k: int, loop: bool
) -> torch.Tensor:
    """The native graph of large clouds on a CPU from one k-d tree per cloud (scipy's
    ``cKDTree``): ``n log n`` per cloud instead of the ``n^2`` distances of the blocks."""
    from scipy.spatial import cKDTree

    x = points.detach().to(torch.float64).numpy()
    sources, targets = [], []
    for b, n in enumerate(counts):
        if n < 2 and not loop:
            continue
        lo = int(ptr[b])
        xb = x[lo : lo + n]
        kk = min(k + (0 if loop else 1), n)
        _, nbr = cKDTree(xb).query(xb, kk)
        nbr = nbr.reshape(n, kk)
        if not loop:  # drop each node itself (not always first: duplicates tie at 0)
            me = np.arange(n)[:, None]
            is_me = nbr == me
            drop = np.where(is_me.any(1), is_me.argmax(1), kk - 1)
            nbr = nbr[np.arange(kk)[None, :] != drop[:, None]].reshape(n, kk - 1)
        sources.append(nbr.reshape(-1) + lo)
        targets.append(np.repeat(np.arange(n) + lo, nbr.shape[1]))
    if not sources:
        return torch.zeros(2, 0, dtype=torch.int64)
    return torch.from_numpy(np.stack([np.concatenate(sources), np.concatenate(targets)]))


def _knn_block(
    points: torch.Tensor,
    ptr: torch.Tensor,
    counts: list[int],
    b0: int,
    b1: int,
    n_max: int,
    k: int,
    loop: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Edges of clouds ``b0:b1``, padded to ``n_max`` nodes."""
    dev, nb = points.device, b1 - b0
    n = torch.as_tensor(counts[b0:b1], device=dev)
    slot = torch.arange(n_max, device=dev)
    valid = slot[None, :] < n[:, None]  # [nb, n_max]
    index = (ptr[b0:b1, None] + slot[None, :]).masked_fill(~valid, 0)  # global node index
    x = points[index].to(torch.float32 if points.dtype != torch.float64 else torch.float64)
    # squared distances |x_i|^2 + |x_j|^2 - 2 x_i.x_j: one batched matrix product, in place
    sq = (x * x).sum(2)
    d = torch.baddbmm(sq[:, :, None] + sq[:, None, :], x, x.transpose(1, 2), alpha=-2.0)
    if not bool(valid.all()):
        d.masked_fill_(~valid[:, None, :], float("inf"))
    if not loop:
        d.diagonal(dim1=1, dim2=2).fill_(float("inf"))
    kk = min(k, n_max)
    dist, nbr = torch.topk(d, kk, dim=2, largest=False, sorted=True)  # [nb, n_max, kk]
    keep = torch.isfinite(dist) & valid[:, :, None]
    src = torch.gather(index, 1, nbr.reshape(nb, -1)).reshape(nb, n_max, kk)
    tgt = index[:, :, None].expand(nb, n_max, kk)
    return src[keep], tgt[keep]


def full_graph(ptr: torch.Tensor, *, loop: bool = False) -> torch.Tensor:
    """Every ordered pair ``(j, i)`` of nodes of the same cloud (``j != i`` unless ``loop``).

    Args:
        ptr: ``[B + 1]`` offsets.

    Returns:
        ``edge_index [2, sum_b n_b (n_b - 1)]`` (``n_b^2`` with ``loop``), grouped by target.
    """
    ptr = ptr.to(torch.int64)
    counts = ptr[1:] - ptr[:-1]
    batch = batch_index(ptr)  # [P] cloud of each node
    per_node = counts[batch]  # candidate sources of each target
    tgt = torch.repeat_interleave(torch.arange(len(batch), device=ptr.device), per_node)
    first = torch.repeat_interleave(ptr[:-1][batch], per_node)
    # position of each edge within its target's run of candidates
    run_start = torch.repeat_interleave(torch.cumsum(per_node, 0) - per_node, per_node)
    src = first + torch.arange(len(tgt), device=ptr.device) - run_start
    if not loop:
        keep = src != tgt
        src, tgt = src[keep], tgt[keep]
    return torch.stack([src, tgt])
