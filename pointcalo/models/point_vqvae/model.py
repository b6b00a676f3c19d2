"""Stage 1 of a two-stage latent model on points: a VQ-VAE that turns each point of a shower
into one token (OmniJet-alpha, Birk et al., arXiv 2403.05618; for calorimeter showers arXiv
2501.05534; van den Oord et al., arXiv 1711.00937).

A point ``(E, x, y, layer)`` becomes three numbers ``(asinh(x / s), asinh(y / s), log E)``
(``s = xy_scale`` mm: linear in the sub-millimetre core, logarithmic in the halo),
standardised on the training points; the layer enters as a learned embedding. The encoder (an
MLP of the numbers and the layer embedding) gives a ``code_dim`` vector, replaced by its
nearest code (:class:`pointcalo.nn.vq.Quantizer`: moving-average codebook, dead-code
restarts); the decoder (an MLP of the code and the layer embedding) gives the three numbers
back. Loss: mean squared error of the numbers plus the commitment term. The layer is not in
the token: a token sequence says it (the GPT writes the points of a shower layer by layer with
a separator token between layers), so a token is a point's position and energy *given* its
layer, and a 4,096-code book places its codes where the points are dense (the core).

Decoded points are off the sensor lattice and may share sub-cells: the framework's validity
rules (:mod:`pointcalo.validity`) snap them to the lattice and merge them, as for every point
model. What the codebook loses shows in the reconstruction (encode then decode the test
showers), which is scored beside generation.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pointcalo.nn.vq import Quantizer


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(),
        nn.Linear(hidden, n_out),
    )  # fmt: skip


class PointVQVAE(nn.Module):
    """Encoder, codebook and decoder of points of ``n_layers`` layers; the per-layer code
    frequencies (the independent-code prior of stage 1 alone) and the training showers'
    conditions and per-layer point counts (what that prior draws counts from)."""

    def __init__(self, cfg, n_layers: int, n_train: int) -> None:
        super().__init__()
        self.cfg, self.n_layers = cfg, n_layers
        e = cfg.layer_embedding
        self.layer = nn.Embedding(n_layers, e)
        self.encoder = _mlp(3 + e, cfg.hidden, cfg.code_dim)
        self.decoder = _mlp(cfg.code_dim + e, cfg.hidden, 3)
        self.quantizer = Quantizer(cfg.codebook, cfg.code_dim, cfg.decay, cfg.dead_below)
        self.register_buffer("mean", torch.zeros(3, dtype=torch.float64))
        self.register_buffer("std", torch.ones(3, dtype=torch.float64))
        self.register_buffer("prior", torch.full((n_layers, cfg.codebook), 1.0 / cfg.codebook))
        self.register_buffer("train_log_e", torch.zeros(n_train, dtype=torch.float64))
        self.register_buffer("train_counts", torch.zeros(n_train, n_layers, dtype=torch.int32))

    # -- features ------------------------------------------------------------------------
    def raw_features(self, points: dict[str, np.ndarray]) -> np.ndarray:
        """``[P, 3]`` float64 ``(asinh(x / s), asinh(y / s), log E)`` of physical points."""
        s = self.cfg.xy_scale
        return np.stack(
            [np.arcsinh(np.asarray(points["x"], np.float64) / s),
             np.arcsinh(np.asarray(points["y"], np.float64) / s),
             np.log(np.maximum(np.asarray(points["E"], np.float64), 1e-30))], 1,
        )  # fmt: skip

    def features(self, points: dict[str, np.ndarray]) -> torch.Tensor:
        """Standardised features ``[P, 3]`` float32 of physical points."""
        f = (torch.from_numpy(self.raw_features(points)) - self.mean) / self.std
        return f.float()

    def to_points(self, f: torch.Tensor, layer: torch.Tensor) -> dict[str, np.ndarray]:
        """Physical points (MeV, mm) of standardised features ``f [P, 3]`` in ``layer [P]``."""
        raw = (f.double() * self.std + self.mean).cpu().numpy()
        s = self.cfg.xy_scale
        return {
            "E": np.exp(np.minimum(raw[:, 2], 30.0)).astype(np.float32),
            "x": (s * np.sinh(raw[:, 0])).astype(np.float32),
            "y": (s * np.sinh(raw[:, 1])).astype(np.float32),
            "layer": layer.cpu().numpy().astype(np.int32),
        }

    # -- coding --------------------------------------------------------------------------
    def encode(self, f: torch.Tensor, layer: torch.Tensor) -> torch.Tensor:
        """Continuous codes ``[P, code_dim]``."""
        return self.encoder(torch.cat([f, self.layer(layer)], 1))

    def tokens(self, f: torch.Tensor, layer: torch.Tensor, chunk: int = 1 << 16) -> torch.Tensor:
        """The token ``[P]`` of each point (``chunk`` points at a time)."""
        out = [
            self.quantizer.nearest(self.encode(f[i : i + chunk], layer[i : i + chunk]))
            for i in range(0, len(f), chunk)
        ]
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)

    def decode(
        self, idx: torch.Tensor, layer: torch.Tensor, decoder: nn.Module | None = None
    ) -> torch.Tensor:
        """Standardised features ``[P, 3]`` of tokens ``idx`` in ``layer`` (``decoder``: the
        EMA copy when generating)."""
        q = self.quantizer.codes[idx]
        return (decoder or self.decoder)(torch.cat([q, self.layer(layer)], 1))

    def loss(self, f: torch.Tensor, layer: torch.Tensor, pick: torch.Tensor) -> dict:
        """Feature and commitment losses of points ``f [P, 3]`` in ``layer [P]``; updates the
        codebook and the per-layer code frequencies (``pick``: a permutation of the points,
        for dead-code restarts)."""
        cfg = self.cfg
        z = self.encode(f, layer)
        idx = self.quantizer.nearest(z.detach())
        if self.training:  # moving averages of this assignment (Razavi et al.)
            self.quantizer.update(z.detach(), idx, pick)
            with torch.no_grad():
                hist = torch.zeros_like(self.prior).index_put_(
                    (layer, idx), torch.ones(len(idx)), accumulate=True
                )
                freq = hist / hist.sum(1, keepdim=True).clamp(min=1)
                seen = hist.sum(1, keepdim=True) > 0
                new = torch.where(seen, freq, self.prior)
                self.prior.mul_(cfg.decay).add_(new, alpha=1 - cfg.decay)
        q = self.quantizer.codes[idx]
        commit = (z - q).pow(2).mean()
        q = z + (q - z).detach()  # straight-through
        rec = self.decoder(torch.cat([q, self.layer(layer)], 1))
        mse = (rec - f).pow(2).mean()
        used = int((self.quantizer.count > cfg.dead_below).sum())
        return {"loss": mse + cfg.commitment * commit, "mse": mse, "commit": commit,
                "codes_used": used}  # fmt: skip
