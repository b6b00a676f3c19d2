"""Attention between neighbouring points (nn.local_attention) and fine-tuning a denoiser
with it from trained weights (train.init_from)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pointcalo.models.caloclouds.network import PointDenoiserNet
from pointcalo.nn.graph import _knn_block, knn_graph
from pointcalo.nn.local_attention import LocalAttention, neighbour_table


def _batch(counts, seed=0):
    g = torch.Generator().manual_seed(seed)
    ptr = torch.cat([torch.zeros(1, dtype=torch.long), torch.tensor(counts).cumsum(0)])
    return torch.randn(int(ptr[-1]), 4, generator=g), ptr


def test_kdtree_graph_equals_the_distance_blocks():
    x, ptr = _batch([400, 300, 3, 1])
    counts = (ptr[1:] - ptr[:-1]).tolist()
    got = knn_graph(x[:, :3], ptr, 6, native=True)
    blocks = [_knn_block(x[:, :3], ptr, counts, b, b + 1, counts[b], 6, False) for b in range(4)]
    want = torch.stack([torch.cat([s for s, _ in blocks]), torch.cat([t for _, t in blocks])])
    assert set(map(tuple, got.T.tolist())) == set(map(tuple, want.T.tolist()))


def test_neighbour_table_pads_small_clouds():
    x, ptr = _batch([5, 2])
    nbr, valid = neighbour_table(knn_graph(x[:, :3], ptr, 3), 7, 3)
    assert valid[:5].all()  # 4 others available: 3 each
    assert valid[5:].sum(1).tolist() == [1, 1]  # a cloud of two: one neighbour each
    assert nbr[5, valid[5]].item() == 6 and nbr[6, valid[6]].item() == 5
    assert (nbr[~valid] == torch.arange(7)[:, None].expand(7, 3)[~valid]).all()


def test_attention_starts_as_zero_and_learns():
    x, ptr = _batch([50, 40])
    att = LocalAttention(16, 3, heads=4)
    h = torch.randn(90, 16)
    table = neighbour_table(knn_graph(x[:, :3], ptr, 5), 90, 5)
    assert torch.equal(att(h, x[:, :3], *table), torch.zeros(90, 16))
    out = att(h, x[:, :3], *table)
    out.sum().backward()
    assert att.out.weight.grad.abs().sum() > 0  # the zero output layer still gets gradients


def test_attention_is_permutation_equivariant_and_local():
    torch.manual_seed(0)
    x, ptr = _batch([60])
    att = LocalAttention(8, 3, heads=2)
    torch.nn.init.normal_(att.out.weight)
    h = torch.randn(60, 8)
    table = neighbour_table(knn_graph(x[:, :3], ptr, 4), 60, 4)
    out = att(h, x[:, :3], *table)
    perm = torch.randperm(60)
    table_p = neighbour_table(knn_graph(x[perm, :3], ptr, 4), 60, 4)
    torch.testing.assert_close(att(h[perm], x[perm, :3], *table_p), out[perm])
    # a point's output depends on its neighbours only: change a point no one has as neighbour
    nbr, _ = table
    lonely = [i for i in range(60) if not (nbr == i).any()]
    assert lonely  # with k = 4 of 60 points, some point is nobody's neighbour
    if lonely:
        h2 = h.clone()
        h2[lonely[0]] = 3.0 * torch.randn(8)  # not a constant shift: LayerNorm removes those
        changed = (att(h2, x[:, :3], *table) - out).abs().sum(1) > 1e-6
        assert changed.nonzero().flatten().tolist() == [lonely[0]]


def test_a_denoiser_with_attention_starts_as_the_one_without():
    x, ptr = _batch([30, 45])
    cond = (torch.randn(2, 2), ptr)
    c_noise = torch.randn(75, 1)
    plain = PointDenoiserNet(4, 2, 16, 8, 32, 3, 0.02, 8)
    with_att = PointDenoiserNet(4, 2, 16, 8, 32, 3, 0.02, 8, knn=6, heads=2, attention_layers=2)
    missing, unexpected = with_att.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("attention.") for k in missing)
    torch.testing.assert_close(with_att(x, c_noise, cond), plain(x, c_noise, cond))


def test_init_from_refuses_another_family(tmp_path):
    from pointcalo.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text("model:\n  name: epic_gan\ntrain:\n  steps: 1\n  init_from: ild-photon-cc\n")
    data = pytest.importorskip("tests.conftest").random_showers(40)
    from pointcalo import io

    io.write(data, tmp_path / "d.h5")
    code = main(["train", str(cfg), "--data", str(tmp_path / "d.h5"), "--out", str(tmp_path / "o")])
    assert code == 2
    assert np.all([not p.name.endswith(".pt") for p in (tmp_path / "o").glob("*")])
