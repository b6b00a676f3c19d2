"""Graph-network classifier test on the raw points of showers.

A high-level-feature classifier sees what its features summarise; a network on the points
themselves also sees their neighbourhoods: the clustering of deposits along tracks, the
sensor lattice, local energy correlations. This test trains an EdgeConv network (dynamic graph
CNN, Wang et al., arXiv 1801.07829; the ParticleNet layout of Qu and Gouskos, arXiv
1902.08570: EdgeConv blocks on a k-nearest-neighbour graph of the coordinates, then global
pooling) to separate generated from reference showers.

Protocol (fixed by ``seed``): balanced classes (the larger sample subsampled), a stratified
60 / 20 / 20 train / validation / test split, Adam, early stopping on the validation loss (best
weights kept), and the ROC AUC on the test showers with a bootstrap standard deviation (200
resamples). Each shower enters as ``points`` of its points (all of them if it has fewer;
:func:`point_sample`): by default the ones nearest the shower axis, so the graph sees whole
neighbourhoods where the shower is densest (a uniform draw of 128 of ~2,300 points, the
earlier default, thins the neighbourhoods out and hides how deposits cluster); the cost does
not grow with the shower; per point the network sees ``log E``, ``x``, ``y`` and ``layer``
(standardised on the pooled sample), its graph joins each point to its ``k`` nearest in
``(x, y, layer)``, and per shower it also gets ``log E_inc`` and ``log n_points`` of the
whole shower.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import awkward as ak
import numpy as np
import torch
from torch import nn

from pointcalo.clouds import gather_index
from pointcalo.errors import PointcaloError
from pointcalo.metrics.observables import MAX_SHOWERS, kept_chunks, kept_showers
from pointcalo.nn.graph import knn_graph

FEATURES = ("E", "x", "y", "layer")


@dataclass
class PointSample:
    """Up to ``points`` points of each of ``N`` showers.

    ``values [P, 4]`` float64 columns ``E`` (MeV), ``x``, ``y`` (mm), ``layer``; ``ptr
    [N + 1]`` offsets; ``incident [N]`` incident energy (MeV); ``n_points [N]`` the showers'
    full numbers of points.
    """

    values: np.ndarray
    ptr: np.ndarray
    incident: np.ndarray
    n_points: np.ndarray
    points: int

    @property
    def n_showers(self) -> int:
        return len(self.ptr) - 1

    def subset(self, index: np.ndarray) -> PointSample:
        """The showers ``index`` (in that order)."""
        index = np.asarray(index, np.int64)
        counts = np.diff(self.ptr)[index]
        rows = gather_index(self.ptr, index, counts)
        ptr = np.concatenate([[0], np.cumsum(counts)])
        return PointSample(
            self.values[rows], ptr, self.incident[index], self.n_points[index], self.points
        )


#: How :func:`point_sample` picks a shower's points.
MODES = ("core", "uniform")


def point_sample(
    showers: ak.Array,
    points: int = 256,
    seed: int = 0,
    first_index: int = 0,
    mode: str = "core",
):
    """Up to ``points`` points of every shower. ``"core"``: the points nearest the shower axis
    (``x = y = 0``; ties by position in the shower), so every kept point keeps its
    neighbours and the graph sees the clustering of deposits where the shower is densest;
    ``"uniform"``: drawn uniformly without replacement (neighbourhoods thinned out), the draw
    of shower ``i`` depending on ``(seed, first_index + i)`` only."""
    if points < 1:
        raise PointcaloError(f"point classifier: points per shower must be >= 1, got {points}")
    if mode not in MODES:
        raise PointcaloError(f"point classifier: mode '{mode}' is not one of {', '.join(MODES)}")
    counts = ak.to_numpy(ak.num(showers.points)).astype(np.int64)
    flat = ak.flatten(showers.points)
    cols = np.stack([ak.to_numpy(flat[f]).astype(np.float64) for f in FEATURES], 1)
    ptr = np.concatenate([[0], np.cumsum(counts)])
    keep = []
    for i, n in enumerate(counts):
        if n <= points:
            keep.append(np.arange(ptr[i], ptr[i + 1]))
        elif mode == "core":
            r = np.hypot(cols[ptr[i] : ptr[i + 1], 1], cols[ptr[i] : ptr[i + 1], 2])
            keep.append(ptr[i] + np.sort(np.argsort(r, kind="stable")[:points]))
        else:
            rng = np.random.default_rng((seed, first_index + i))
            keep.append(ptr[i] + np.sort(rng.choice(n, points, replace=False)))
    rows = np.concatenate(keep) if keep else np.zeros(0, np.int64)
    kept = np.minimum(counts, points)
    return PointSample(
        cols[rows],
        np.concatenate([[0], np.cumsum(kept)]),
        ak.to_numpy(showers.incident_energy).astype(np.float64),
        counts,
        points,
    )


def concat(parts: list[PointSample]) -> PointSample:
    """One sample of several, in order."""
    offsets = np.cumsum([0] + [p.ptr[-1] for p in parts[:-1]])
    return PointSample(
        np.concatenate([p.values for p in parts]),
        np.concatenate([[0]] + [p.ptr[1:] + o for p, o in zip(parts, offsets, strict=True)]),
        np.concatenate([p.incident for p in parts]),
        np.concatenate([p.n_points for p in parts]),
        parts[0].points,
    )


class EdgeNet(nn.Module):
    """Two EdgeConv blocks (torch-geometric) on a fixed kNN graph, mean and max pooling, and a
    head on the pooled nodes and the shower's global inputs; one logit per shower."""

    def __init__(self, n_in: int = 4, n_global: int = 2, hidden: int = 32) -> None:
        super().__init__()
        from torch_geometric.nn import EdgeConv

        def mlp(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(nn.Linear(a, b), nn.ReLU(), nn.Linear(b, b), nn.ReLU())

        self.conv1 = EdgeConv(mlp(2 * n_in, hidden), aggr="mean")
        self.conv2 = EdgeConv(mlp(2 * hidden, hidden), aggr="mean")
        self.head = nn.Sequential(
            nn.Linear(2 * 2 * hidden + n_global, hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, x, glob, edge_index, batch, n_showers: int) -> torch.Tensor:
        from torch_geometric.nn import global_max_pool, global_mean_pool

        h1 = self.conv1(x, edge_index)
        h2 = self.conv2(h1, edge_index)
        h = torch.cat([h1, h2], 1)
        pooled = torch.cat(
            [global_mean_pool(h, batch, n_showers), global_max_pool(h, batch, n_showers)], 1
        )
        return self.head(torch.cat([pooled, glob], 1)).squeeze(1)


def _features(sample: PointSample) -> tuple[np.ndarray, np.ndarray]:
    """Per point ``log E, x, y, layer`` ``[P, 4]``; per shower ``log E_inc, log n_points``
    ``[N, 2]``."""
    v = sample.values.copy()
    v[:, 0] = np.log(np.maximum(v[:, 0], 1e-6))
    glob = np.stack([np.log(sample.incident), np.log(np.maximum(sample.n_points, 1))], 1)
    return v, glob


def point_classifier_auc(
    ref: PointSample,
    gen: PointSample,
    *,
    k: int = 8,
    hidden: int = 32,
    epochs: int = 40,
    patience: int = 4,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    log: Any = None,
) -> dict[str, Any]:
    """Train the EdgeConv classifier to separate ``gen`` from ``ref``; see the module docstring.

    Returns:
        ``auc``, ``auc_std`` (bootstrap), ``epochs`` run, ``best_epoch``, ``seconds``,
        ``showers`` (per class), ``points_per_shower``, ``k``.
    """
    from sklearn.metrics import roc_auc_score

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    n = min(ref.n_showers, gen.n_showers)
    if n < 10:
        raise PointcaloError("point classifier needs at least 10 showers per sample")
    ref = ref.subset(np.sort(rng.choice(ref.n_showers, n, replace=False)))
    gen = gen.subset(np.sort(rng.choice(gen.n_showers, n, replace=False)))
    # features standardised on the pooled sample, once
    feats = [_features(sample) for sample in (ref, gen)]
    points = np.concatenate([f[0] for f in feats])
    glob = np.concatenate([f[1] for f in feats])
    mean, std = points.mean(0), np.maximum(points.std(0), 1e-9)
    gmean, gstd = glob.mean(0), np.maximum(glob.std(0), 1e-9)
    scaled = [
        (PointSample((v - mean) / std, s.ptr, s.incident, s.n_points, s.points), (g - gmean) / gstd)
        for (v, g), s in zip(feats, (ref, gen), strict=True)
    ]
    # stratified split: the same shares of each class in train / validation / test
    parts: dict[str, list[tuple[int, np.ndarray]]] = {"train": [], "val": [], "test": []}
    for label in (0, 1):
        perm = rng.permutation(n)
        a, b = int(0.6 * n), int(0.8 * n)
        for name, idx in (("train", perm[:a]), ("val", perm[a:b]), ("test", perm[b:])):
            parts[name].append((label, np.sort(idx)))
    data = {}
    for name, items in parts.items():
        xs, gs, ys, ptrs = [], [], [], [np.zeros(1, np.int64)]
        for label, idx in items:
            sample, g = scaled[label]
            sub = sample.subset(idx)
            xs.append(torch.as_tensor(sub.values, dtype=torch.float32))
            gs.append(torch.as_tensor(g[idx], dtype=torch.float32))
            ys.append(torch.full((sub.n_showers,), float(label)))
            ptrs.append(sub.ptr[1:] + ptrs[-1][-1])
        data[name] = (
            torch.cat(xs),
            torch.cat(gs),
            torch.cat(ys),
            torch.as_tensor(np.concatenate(ptrs)),
        )

    def batches(name: str, order: np.ndarray):
        x, g, y, ptr = data[name]
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            counts = (ptr[1:] - ptr[:-1])[idx]
            bptr = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(counts, 0)])
            rows = torch.cat([torch.arange(int(ptr[i]), int(ptr[i + 1])) for i in idx])
            xb = x[rows]
            # the graph joins points near in (x, y, layer), standardised
            ei = knn_graph(xb[:, 1:], bptr, k)
            batch = torch.repeat_interleave(torch.arange(len(idx)), counts)
            yield xb, g[idx], y[idx], ei, batch, len(idx)

    def scores(net: nn.Module, name: str) -> tuple[np.ndarray, np.ndarray, float]:
        net.eval()
        out, labels, loss = [], [], 0.0
        order = np.arange(len(data[name][2]))
        with torch.no_grad():
            for xb, gb, yb, ei, batch, nb in batches(name, order):
                logit = net(xb, gb, ei, batch, nb)
                loss += float(
                    nn.functional.binary_cross_entropy_with_logits(logit, yb, reduction="sum")
                )
                out.append(logit.numpy())
                labels.append(yb.numpy())
        return np.concatenate(out), np.concatenate(labels), loss / len(order)

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = EdgeNet(hidden=hidden)
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        best, best_state, best_epoch, waited, epoch = float("inf"), None, 0, 0, 0
        for epoch in range(1, epochs + 1):
            net.train()
            order = rng.permutation(len(data["train"][2]))
            for xb, gb, yb, ei, batch, nb in batches("train", order):
                loss = nn.functional.binary_cross_entropy_with_logits(
                    net(xb, gb, ei, batch, nb), yb
                )
                opt.zero_grad()
                loss.backward()
                opt.step()
            val_loss = scores(net, "val")[2]
            if log:
                log(f"point classifier: epoch {epoch}, validation loss {val_loss:.4f}")
            if val_loss < best - 1e-4:
                best, best_epoch, waited = val_loss, epoch, 0
                best_state = {k_: v.clone() for k_, v in net.state_dict().items()}
            else:
                waited += 1
                if waited >= patience:
                    break
        net.load_state_dict(best_state)
        s, y, _ = scores(net, "test")
    auc = float(roc_auc_score(y, s))
    boot = []
    for _ in range(200):
        idx = rng.integers(0, len(y), len(y))
        if 0 < y[idx].sum() < len(idx):
            boot.append(roc_auc_score(y[idx], s[idx]))
    return {
        "auc": auc,
        "auc_std": float(np.std(boot)),
        "epochs": epoch,
        "best_epoch": best_epoch,
        "seconds": time.perf_counter() - t0,
        "showers": n,
        "points_per_shower": ref.points,
        "k": k,
    }


def point_sample_file(
    path,
    points: int = 256,
    seed: int = 0,
    chunk_size: int = 512,
    mode: str = "core",
    max_showers: int | None = MAX_SHOWERS,
):
    """:func:`point_sample` of a shower file, streamed ``chunk_size`` showers at a time (memory
    bounded by the chunk and ``points`` per shower); the showers are those the observables of
    the file keep (``max_showers``, :func:`~pointcalo.metrics.observables.kept_showers`)."""
    from pointcalo import io

    parts = []
    with io.open_reader(path) as reader:
        kept = kept_showers(reader.n_showers, max_showers)
        for chunk, used in kept_chunks(reader, kept, chunk_size):
            parts.append(point_sample(chunk, points, seed, first_index=used, mode=mode))
    if not parts:
        raise PointcaloError(f"{path}: no showers for the point classifier")
    return concat(parts)
