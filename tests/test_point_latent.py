"""Two-stage latent models on points and the GPT they share with the grid version: the
key-value cache gives the logits of a full pass, sampling follows the softmax, a shower's
token sequence carries its layers exactly, the point VQ-VAE learns its points and generation
stops when every layer is closed."""

from __future__ import annotations

import numpy as np
import torch

from pointcalo.nn.gpt import CausalGPT, sample_token


def test_cached_generation_gives_the_logits_of_a_full_pass():
    torch.manual_seed(0)
    gpt = CausalGPT(vocab=20, hidden=32, layers=2, heads=4, max_len=12, n_extra=5).eval()
    cond = torch.randn(3, 1)
    tokens = torch.randint(20, (3, 10))
    extra = torch.randint(5, (3, 11))
    with torch.no_grad():
        full = gpt(cond, tokens, extra)
        logits, cache = gpt.start(cond, extra[:, :1])
        steps = [logits]
        for i in range(10):
            steps.append(gpt.next(tokens[:, i], cache, extra[:, i + 1 : i + 2]))
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=1e-4, atol=1e-5)
    # causal: changing a later token leaves the earlier logits alone
    other = tokens.clone()
    other[:, 7] = (other[:, 7] + 1) % 20
    with torch.no_grad():
        again = gpt(cond, other, extra)
    torch.testing.assert_close(again[:, :8], full[:, :8])
    assert (again[:, 8:] - full[:, 8:]).abs().max() > 1e-4


def test_sampled_tokens_follow_the_softmax_and_top_k_keeps_the_likeliest():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])).expand(40000, 4)
    u = torch.rand(40000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    freq = torch.bincount(sample_token(logits, u), minlength=4).double() / 40000
    torch.testing.assert_close(freq, torch.tensor([0.5, 0.3, 0.15, 0.05]).double(), atol=0.01,
                               rtol=0)  # fmt: skip
    top2 = torch.bincount(sample_token(logits, u, top_k=2), minlength=4).double() / 40000
    torch.testing.assert_close(top2, torch.tensor([0.625, 0.375, 0, 0]).double(), atol=0.01,
                               rtol=0)  # fmt: skip
    cold = sample_token(logits, u, temperature=0.01)
    assert bool((cold == 0).all())


def test_a_sequence_lists_each_layers_points_and_says_their_layer():
    from pointcalo.models.point_gpt import layer_inputs, sequences
    from pointcalo.models.point_vqvae import shower_order

    # two showers in three layers; the second has nothing in layer 1
    points = {
        "E": np.array([1.0, 5.0, 2.0, 3.0, 9.0, 4.0, 7.0]),
        "layer": np.array([0, 0, 2, 1, 0, 2, 2]),
    }
    offsets = np.array([0, 4, 7])
    order = shower_order(offsets, points)
    np.testing.assert_array_equal(order, [1, 0, 3, 2, 4, 6, 5])  # layer, then hottest first
    tokens = np.array([10, 11, 12, 13, 14, 15, 16])[order]
    layer = points["layer"][order]
    seq, off = sequences(tokens, layer, np.diff(offsets), n_layers=3, sep=99)
    np.testing.assert_array_equal(off, [0, 7, 13])
    np.testing.assert_array_equal(seq[:7], [11, 10, 99, 13, 99, 12, 99])
    np.testing.assert_array_equal(seq[7:], [14, 99, 99, 16, 15, 99])
    # the layer each position writes: separators before it
    want = [[0, 0, 0, 1, 1, 2, 2], [0, 0, 1, 2, 2, 2, 2]]
    padded = torch.tensor([list(seq[:7]), [*seq[7:], 99]])
    np.testing.assert_array_equal(layer_inputs(padded, 99, 3).numpy(), want)


def test_point_vqvae_learns_the_points_of_showers(tmp_path):
    """Trained on simulated showers, the feature error falls well below the spread of the
    features; a reconstructed shower keeps its points and layers and its energy to within
    what the codebook resolves, its hottest points near the axis as the original's."""
    import json

    from pointcalo.cli import main
    from pointcalo.clouds import from_showers
    from pointcalo.generation import load_model
    from pointcalo.models.point_vqvae import reconstruct
    from pointcalo.simulate import ShowerSimulator

    cfg = tmp_path / "vq.yaml"
    cfg.write_text(
        "data: {simulate: 200, val_fraction: 0.0}\n"
        "model: {name: point_vqvae, hidden: 64, codebook: 1024, code_dim: 3, "
        "points_per_step: 4096, decay: 0.9}\n"
        "train: {steps: 500, batch_size: 16, lr: 3.0e-3, warmup_steps: 5, log_every: 10, "
        f"device: cpu, out: {tmp_path / 'run'}}}\n"
    )
    assert main(["train", str(cfg), "-q"]) == 0
    rows = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    mse = [r["mse"] for r in rows if "mse" in r]
    # features are standardised (spread 1); a small codebook resolves them to ~0.1-0.2
    assert mse[-1] < 0.3 and mse[-1] < 0.3 * mse[0], mse
    assert rows[-1]["codes_used"] > 512
    m = load_model(tmp_path / "run" / "checkpoint.pt")
    data = from_showers(ShowerSimulator().simulate(20, (10e3, 90e3), seed=4))
    rec = reconstruct(m, data)
    np.testing.assert_array_equal(rec.offsets, data.offsets)
    np.testing.assert_array_equal(rec.points["layer"], data.points["layer"])
    e_in = np.add.reduceat(data.points["E"].astype(np.float64), data.offsets[:-1])
    e_out = np.add.reduceat(rec.points["E"].astype(np.float64), rec.offsets[:-1])
    np.testing.assert_allclose(e_out, e_in, rtol=0.25)
    r_in = np.hypot(data.points["x"], data.points["y"])
    r_out = np.hypot(rec.points["x"], rec.points["y"])
    hot = data.points["E"] > np.quantile(data.points["E"], 0.9)
    assert np.median(np.abs(r_out - r_in)[hot]) < 2.0  # mm


def test_generation_stops_when_every_layer_is_closed_or_at_the_longest_sequence():
    from pointcalo.models.point_gpt import PointGPT, PointGPTConfig, write_tokens
    from pointcalo.models.point_vqvae import PointVQVAEConfig
    from pointcalo.models.point_vqvae.model import PointVQVAE

    s1 = PointVQVAE(PointVQVAEConfig(hidden=4, codebook=8, code_dim=2), n_layers=3, n_train=2)
    model = PointGPT(PointGPTConfig(hidden=8, heads=2, layers=1), s1, max_len=12).eval()
    cond, u = torch.zeros(4, 1), torch.rand(4, 12, dtype=torch.float64)
    with torch.no_grad():
        model.gpt.head.bias.fill_(0.0)
        model.gpt.head.bias[model.sep] = 50.0  # always a separator: three empty layers
        seq = write_tokens(model, model.gpt, cond, u, model.cfg)
        assert seq.shape == (4, 3) and bool((seq == model.sep).all())
        model.gpt.head.bias[model.sep] = -50.0  # never: cut at the longest sequence
        seq = write_tokens(model, model.gpt, cond, u, model.cfg)
        assert seq.shape == (4, 12) and not bool((seq == model.sep).any())


def test_a_stage_two_on_the_wrong_stage_one_is_refused_naming_the_field(tmp_path):
    import pytest

    from pointcalo.clouds import from_showers
    from pointcalo.config import validate_config
    from pointcalo.errors import ConfigError
    from pointcalo.train.engine import train
    from tests.conftest import random_showers

    data = from_showers(random_showers(20, seed=1))
    lib = validate_config(
        {"model": {"name": "library"}, "data": {"val_fraction": 0.0},
         "train": {"steps": 1, "batch_size": 8, "device": "cpu", "out": str(tmp_path / "lib")}}
    )  # fmt: skip
    ckpt = train(lib, data=data, progress=False, log=lambda m: None)
    for name in ("point_gpt", "grid_gpt"):
        cfg = validate_config(
            {"model": {"name": name, "stage1": str(ckpt)}, "data": {"val_fraction": 0.0},
             "train": {"steps": 1, "batch_size": 8, "device": "cpu",
                       "out": str(tmp_path / name)}}
        )  # fmt: skip
        want = name.replace("gpt", "vqvae")
        with pytest.raises(ConfigError, match=rf"model\.stage1: .* 'library' model, not a {want}"):
            train(cfg, data=data, progress=False, log=lambda m: None)
        assert not (tmp_path / name / "checkpoint.pt").exists()
