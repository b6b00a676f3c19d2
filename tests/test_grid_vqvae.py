"""Stage 1 of the two-stage latent models: the grid VQ-VAE's codebook stays healthy and its
tokens learn the showers."""

from __future__ import annotations

import json

import numpy as np
import torch

from pointcalo.cli import main
from pointcalo.nn.vq import Quantizer


def test_codebook_starts_on_the_data_moves_to_its_clusters_and_restarts_dead_codes():
    torch.manual_seed(0)
    centres = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0]])
    q = Quantizer(k=6, d=2, decay=0.9, dead_below=0.05)

    def batch():
        z = centres[torch.randint(3, (300,))] + 0.1 * torch.randn(300, 2)
        return z, torch.randperm(300)

    z, pick = batch()
    q.update(z, q.nearest(z), pick)  # the first batch places the codes on encoder outputs
    assert bool(q.ready) and all(torch.cdist(q.codes[i : i + 1], z).min() < 1e-6 for i in range(6))
    for _ in range(200):
        z, pick = batch()
        q.update(z, q.nearest(z), pick)
    # every centre has a code on it (moving averages of the vectors assigned to it)
    assert torch.cdist(centres, q.codes).min(1).values.max() < 0.2
    # a code no vector picks dies and is restarted on a vector of the batch
    q.codes[5] = torch.tensor([100.0, 100.0])
    for _ in range(40):
        z, pick = batch()
        q.update(z, q.nearest(z), pick)
    assert torch.cdist(q.codes[5:6], centres).min() < 1.0
    assert q.count[5] > 0


def test_grid_vqvae_learns_its_tokens_and_samples(tmp_path):
    """Trained on simulated showers, the pixel loss falls and the codes stay in use; a token
    sequence decodes to voxel shares summing to one; sampling gives showers whose visible
    energy follows the incident energy (R from the nearest training showers)."""
    cfg = tmp_path / "vq.yaml"
    cfg.write_text(
        "data: {simulate: 300, val_fraction: 0.0}\n"
        "model: {name: grid_vqvae, grid: ild-cylindrical, channels: 4, tokens: 8, "
        "codebook: 32, code_dim: 4}\n"
        "train: {steps: 400, batch_size: 32, lr: 2.0e-3, warmup_steps: 5, log_every: 10, "
        f"device: cpu, out: {tmp_path / 'run'}}}\n"
    )
    assert main(["train", str(cfg), "-q"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    pixel = [r["pixel"] for r in rows if "pixel" in r]
    assert pixel[-1] < 0.5 * pixel[0], pixel
    assert rows[-1]["codes_used"] >= 16  # at least half of the 32 codes alive
    from pointcalo.generation import generate, load_model

    m = load_model(tmp_path / "run" / "checkpoint.pt")
    c = torch.zeros(2, 1)
    shares = m.model.shares(torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7]] * 2), c)
    np.testing.assert_allclose(shares.flatten(1).sum(1).detach().numpy(), 1.0, rtol=1e-5)
    energy = np.repeat([15e3, 80e3], 20)
    got = generate(m.model, m.net, m.normalizer, energy, m.cfg, seed=1)
    e_vis = np.add.reduceat(got.points["E"].astype(np.float64), got.offsets[:-1])
    ratio = e_vis / energy
    assert 0.005 < np.median(ratio) < 0.05  # about 2-3 % visible, as the simulator's
    assert e_vis[20:].mean() > 3 * e_vis[:20].mean()
    # stage 1 alone: encode and decode showers with their own R; the energy is kept (but for
    # voxels below e_min) and each reconstruction is nearer its own shower's longitudinal
    # profile than the other showers' are
    import voxelize as vx
    from pointcalo.clouds import from_showers
    from pointcalo.models.grid_vqvae import reconstruct
    from pointcalo.models.voxels import project_clouds
    from pointcalo.simulate import ShowerSimulator

    data = from_showers(ShowerSimulator().simulate(60, (10e3, 90e3), seed=9))
    rec = reconstruct(m, data)
    grid = vx.load_grid("ild-cylindrical")
    orig = project_clouds(data, grid)
    kept = rec.voxels.sum(1) / orig.sum(1)
    assert np.all((kept > 0.9) & (kept <= 1.0 + 1e-4)), kept
    profile = [v.reshape(60, 30, -1).sum(2) for v in (orig, rec.voxels)]
    profile = [p / p.sum(1, keepdims=True) for p in profile]
    dist = np.abs(profile[1][:, None, :] - profile[0][None, :, :]).sum(2)  # [recon, original]
    assert np.mean(np.diag(dist)) < 0.7 * np.mean(dist[~np.eye(60, dtype=bool)])


def test_the_gpt_writes_token_sequences_it_was_taught():
    """Stage 2: a GPT taught sequences whose codes follow from R's token and the energy
    (code t = (R bin + t + [E high]) mod K) writes them back: the causal mask lets each
    token see those before it and the start embedding carries the condition."""
    from pointcalo.models.grid_gpt import GridGPT, GridGPTConfig, _draw
    from pointcalo.models.grid_vqvae import GridVQVAE, GridVQVAEConfig

    torch.manual_seed(0)
    s1 = GridVQVAE(GridVQVAEConfig(channels=1, tokens=5, codebook=7, code_dim=2), (2, 2, 2), 4)
    cfg = GridGPTConfig(hidden=32, layers=2, heads=2, r_bins=3)
    gpt = GridGPT(cfg, s1)
    k = 7

    def sequences(n, g):
        rbin = torch.randint(3, (n,), generator=g)
        high = torch.randint(2, (n,), generator=g)
        codes = (rbin[:, None] + torch.arange(1, 6)[None] + high[:, None]) % k
        cond = (2.0 * high - 1.0)[:, None]
        return cond, torch.cat([(k + rbin)[:, None], codes], 1)

    g = torch.Generator().manual_seed(1)
    opt = torch.optim.Adam(gpt.gpt.parameters(), lr=3e-3)
    for _ in range(300):
        cond, seq = sequences(64, g)
        loss = gpt.loss(cond, seq)
        opt.zero_grad()
        loss.backward()
        opt.step()
    # R's token is drawn at random (1 of 3): the loss cannot fall below its entropy / 6
    assert loss.item() < np.log(3) / 6 + 0.03
    cond, want = sequences(32, g)
    u = torch.rand(32, 5, generator=g, dtype=torch.float64)
    seq = want[:, :1]  # given R's token, the codes are written
    cold = cfg.model_copy(update={"temperature": 0.05})
    with torch.no_grad():
        for t in range(5):
            nxt = _draw(gpt.gpt(cond, seq)[:, -1], 0, k, cold, u[:, t])
            seq = torch.cat([seq, nxt[:, None]], 1)
    assert (seq == want).float().mean() > 0.95


def test_the_divergence_term_gives_the_mean_share_the_log_pixel_loss_alone_misses():
    """A sparse halo (each of 9 voxels hit in 1 shower of 10) and a core voxel: the share
    that minimises the log-space pixel loss alone puts too much in the core (it follows the
    typical halo voxel, which is empty); adding the divergence with the weight the configs
    give it (100) brings the core near its mean share over the showers."""
    from pointcalo.models.grid_vqvae.model import share_losses

    g = torch.Generator().manual_seed(0)
    hit = (torch.rand(4000, 9, generator=g) < 0.1).double()
    e = torch.cat([torch.ones(4000, 1, dtype=torch.float64), 0.3 * hit], 1)
    target = e / e.sum(1, keepdim=True)
    mean_core = target[:, 0].mean().item()

    def fit(kl_weight: float) -> float:
        logits = torch.zeros(1, 10, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([logits], lr=0.05)
        for _ in range(600):
            pixel, kl = share_losses(logits.expand(4000, 10), target, 1e-3)
            opt.zero_grad()
            (pixel + kl_weight * kl).backward()
            opt.step()
        return torch.softmax(logits, 1)[0, 0].item()

    alone, both = fit(0.0), fit(100.0)
    assert alone > mean_core + 0.03, (alone, mean_core)
    assert abs(both - mean_core) < 0.5 * abs(alone - mean_core), (both, alone, mean_core)
