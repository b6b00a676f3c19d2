"""Graphs on flat point batches (pointcalo.nn.graph) and their use by torch-geometric layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pointcalo.nn.graph import full_graph, knn_graph


def _batch(counts, dim=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    ptr = torch.tensor(np.concatenate([[0], np.cumsum(counts)]), dtype=torch.int64)
    return torch.randn(int(ptr[-1]), dim, generator=g, dtype=torch.float64), ptr


def _brute_knn(x, ptr, k, loop):
    """Per target, the set of its k nearest sources of the same cloud (loop over clouds)."""
    edges = set()
    for b in range(len(ptr) - 1):
        lo, hi = int(ptr[b]), int(ptr[b + 1])
        d = torch.cdist(x[lo:hi], x[lo:hi])
        if not loop:
            d.fill_diagonal_(float("inf"))
        for i in range(hi - lo):
            order = torch.argsort(d[i])
            order = [j for j in order.tolist() if torch.isfinite(d[i, j])][:k]
            edges |= {(lo + j, lo + i) for j in order}
    return edges


@pytest.mark.parametrize("loop", [False, True])
@pytest.mark.parametrize("max_elements", [1 << 24, 50])  # one block; one cloud per block
def test_knn_graph_equals_brute_force(loop, max_elements):
    counts = [7, 1, 0, 3, 25, 12]  # a lone node, an empty cloud, clouds smaller than k
    x, ptr = _batch(counts)
    ei = knn_graph(x, ptr, 4, loop=loop, native=True, max_elements=max_elements)
    assert ei.dtype == torch.int64 and ei.shape[0] == 2
    got = set(zip(ei[0].tolist(), ei[1].tolist(), strict=True))
    assert len(got) == ei.shape[1]  # no duplicate edge
    assert got == _brute_knn(x, ptr, 4, loop)
    # never across clouds; grouped by target, nearest source first
    cloud = torch.bucketize(torch.arange(int(ptr[-1])), ptr[1:], right=True)
    assert torch.equal(cloud[ei[0]], cloud[ei[1]])
    assert torch.all(ei[1][1:] >= ei[1][:-1])
    d = (x[ei[0]] - x[ei[1]]).norm(dim=1)
    same = ei[1][1:] == ei[1][:-1]
    assert torch.all(d[1:][same] >= d[:-1][same])


def test_knn_graph_is_equivariant_under_permutation_within_a_cloud():
    x, ptr = _batch([9, 14], seed=1)
    perm = torch.cat([torch.randperm(9), 9 + torch.randperm(14)])
    a = knn_graph(x, ptr, 3, native=True)
    b = knn_graph(x[perm], ptr, 3, native=True)
    ea = set(zip(a[0].tolist(), a[1].tolist(), strict=True))
    eb = {(int(perm[s]), int(perm[t])) for s, t in zip(b[0].tolist(), b[1].tolist(), strict=True)}
    assert ea == eb


def test_torch_cluster_and_native_agree():
    pytest.importorskip("torch_cluster")
    x, ptr = _batch([30, 5, 41], seed=2)
    a, b = knn_graph(x, ptr, 6, native=True), knn_graph(x, ptr, 6, native=False)
    assert set(zip(*a.tolist(), strict=True)) == set(zip(*b.tolist(), strict=True))


@pytest.mark.parametrize("loop", [False, True])
def test_full_graph_connects_every_pair_of_a_cloud(loop):
    ptr = torch.tensor([0, 3, 3, 4, 8])
    ei = full_graph(ptr, loop=loop)
    want = set()
    for b in range(len(ptr) - 1):
        nodes = range(int(ptr[b]), int(ptr[b + 1]))
        want |= {(j, i) for i in nodes for j in nodes if loop or i != j}
    got = list(zip(ei[0].tolist(), ei[1].tolist(), strict=True))
    assert len(got) == len(set(got)) and set(got) == want
    assert torch.all(ei[1][1:] >= ei[1][:-1])


def test_edges_plug_into_torch_geometric_layers():
    """EdgeConv on our kNN edges equals the hand-written max over each node's neighbours."""
    from torch_geometric.nn import EdgeConv

    torch.manual_seed(0)
    x, ptr = _batch([6, 10], dim=2, seed=3)
    x = x.float()
    mlp = torch.nn.Linear(4, 5)
    ei = knn_graph(x, ptr, 3, native=True)
    out = EdgeConv(mlp, aggr="max")(x, ei)
    for i in range(int(ptr[-1])):
        nbrs = ei[0][ei[1] == i]
        assert len(nbrs) == 3
        msgs = mlp(torch.cat([x[i].expand(3, 2), x[nbrs] - x[i]], 1))
        torch.testing.assert_close(out[i], msgs.max(0).values)
