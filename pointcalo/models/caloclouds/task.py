"""CaloClouds: shower-level flow + point diffusion, trained by the engine and sampled.

Generation follows CaloClouds II (Buhmann et al., arXiv 2309.05704): the shower flow gives the
number of points, the visible energy, the centre of gravity and the fraction of points and of
energy in every layer for an incident energy; the diffusion model generates that many points;
the points are then assigned to layers in order of their generated depth so each layer gets
its share of points, each layer's energies are scaled to the flow's energy in that layer (the
energy of a layer left without points goes to the others in proportion, so the shower keeps
the flow's visible energy), and the shower is shifted to the flow's transverse centre of
gravity.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from pointcalo.models.caloclouds.calibrate import calibrate
from pointcalo.models.caloclouds.features import (
    ShowerFlow,
    n_shower_features,
    shower_features,
)
from pointcalo.models.caloclouds.loss import edm_loss
from pointcalo.models.caloclouds.network import denoiser_net
from pointcalo.models.caloclouds.precond import EDMPrecond
from pointcalo.models.streams import cloud_generators, point_noise
from pointcalo.train.data import Normalizer, PointCloudData


class CaloClouds(nn.Module):
    """Denoiser (EDM-preconditioned point network) and shower flow."""

    def __init__(self, cfg, n_features: int, mean_points: float, n_layers: int) -> None:
        super().__init__()
        net = denoiser_net(cfg, n_features, mean_points)
        self.denoiser = EDMPrecond(net, torch.ones(n_features))  # features are standardised
        self.widths = getattr(cfg, "flow_widths", False)
        self.flow = ShowerFlow(
            n_shower_features(n_layers, self.widths), cfg.flow_transforms, cfg.flow_hidden
        )
        self.n_layers = n_layers


class CaloCloudsTask:
    """Training of CaloClouds by the engine: EDM loss for the denoiser, maximum likelihood for
    the shower flow, both every step."""

    def __init__(self, cfg, n_features: int, mean_points: float, data: PointCloudData) -> None:
        self.cfg = cfg
        self.model = CaloClouds(cfg.model, n_features, mean_points, data.spec.integer_max + 1)
        feats = data_features(data, self.model.widths)
        self.model.flow.fit_scaling(feats)
        self.feats = torch.as_tensor(feats, dtype=torch.float32)
        self.den = self.model.denoiser

    def optimizers(self) -> dict[str, tuple[torch.optim.Optimizer, float]]:
        t = self.cfg.train
        return {
            "denoiser": (torch.optim.Adam(self.model.denoiser.parameters(), lr=t.lr), t.lr),
            "flow": (
                torch.optim.Adam(self.model.flow.parameters(), lr=self.cfg.model.flow_lr),
                self.cfg.model.flow_lr,
            ),
        }

    def ema_target(self) -> nn.Module:
        return self.model.denoiser

    def wrap(self, wrap) -> None:
        self.den = wrap(self.model.denoiser)

    def step(self, batch, ctx, opts) -> dict[str, Any]:
        from pointcalo.train.task import all_reduce_grads

        m = self.cfg.model
        gens = cloud_generators(ctx.keys)
        counts = batch.counts.tolist()
        ln_sigma = torch.stack([m.p_mean + m.p_std * torch.randn(1, generator=g)[0] for g in gens])
        noise = point_noise(gens, counts, batch.points.shape[1])
        x0, cond, ptr = (
            batch.points.to(ctx.device),
            batch.cond.to(ctx.device),
            batch.ptr.to(ctx.device),
        )
        with ctx.amp:
            loss = edm_loss(
                self.den,
                x0,
                ptr,
                (cond, ptr),
                ln_sigma=ln_sigma.to(ctx.device),
                noise=noise.to(ctx.device),
            )
        opts["denoiser"].zero_grad(set_to_none=True)
        loss.backward()
        ctx.clip(self.model.denoiser)
        opts["denoiser"].step()
        feats = self.feats[torch.as_tensor(ctx.index)].to(ctx.device)
        loss_f = self.model.flow.nll(feats, cond[:, 0].float())
        opts["flow"].zero_grad(set_to_none=True)
        loss_f.backward()
        all_reduce_grads(self.model.flow, ctx.world)
        ctx.clip(self.model.flow)
        opts["flow"].step()
        return {"loss_edm": loss.item(), "loss_flow": loss_f.item()}


@torch.no_grad()
def generate_caloclouds(
    model: CaloClouds,
    denoiser: nn.Module,
    normalizer: Normalizer,
    condition: np.ndarray,
    cfg,
    *,
    seed: int = 0,
    first_index: int = 0,
    device: Any = "cpu",
    batch_size: int = 256,
    sampler: str | None = None,
    steps: int | None = None,
    max_points: int = 20000,
):
    """Showers for incident energies ``condition [N]`` (MeV); see the module docstring."""
    from pointcalo.models.generate import GeneratedClouds
    from pointcalo.sampling import SAMPLERS, karras_sigmas

    m = cfg
    sample = SAMPLERS[sampler or m.sampler]
    sigmas = karras_sigmas(steps or m.steps, m.sigma_min, m.sigma_max, m.rho)
    denoiser.eval()
    n_feat, n_layers = len(normalizer.spec.features), model.n_layers
    layer_col = normalizer.spec.features.index("layer")
    offsets, cols = [np.zeros(1, np.int64)], []
    for start in range(0, len(condition), batch_size):
        stop = min(start + batch_size, len(condition))
        e_inc = np.asarray(condition[start:stop], dtype=np.float64)
        gens = cloud_generators([(seed, first_index + i) for i in range(start, stop)])
        base = torch.stack([torch.randn(model.flow.mean.shape[0], generator=g) for g in gens])
        log_c = normalizer.encode_cond(e_inc, np.ones(len(e_inc)))[:, 0]
        feats = model.flow.sample(torch.as_tensor(log_c), base).double().numpy()
        counts = np.clip(np.rint(np.exp(feats[:, 0])), 1, max_points).astype(np.int64)
        cond = torch.as_tensor(normalizer.encode_cond(e_inc, counts), device=device)
        ptr = torch.as_tensor(np.concatenate([[0], np.cumsum(counts)]), device=device)
        x = point_noise(gens, counts, n_feat)

        def fresh_noise(step: int, gens=gens, counts=counts) -> torch.Tensor:
            return point_noise(gens, counts, n_feat)

        x0 = sample(
            lambda xx, s, c: denoiser(xx, s, c),
            (x * sigmas[0]).float().to(device),
            sigmas,
            cond=(cond, ptr),
            generator=fresh_noise,
        )
        x0 = x0.float().cpu().numpy()
        pts = normalizer.decode_points(x0)
        depth = x0[:, layer_col]  # continuous generated depth, for the layer assignment
        calibrate(pts, depth, counts, feats, e_inc, n_layers, model.widths)
        cols.append(pts)
        offsets.append(offsets[-1][-1] + np.cumsum(counts))
    points = {k: np.concatenate([c[k] for c in cols]) for k in normalizer.spec.features}
    return GeneratedClouds(np.concatenate(offsets), points, np.asarray(condition, np.float64))


def data_features(data: PointCloudData, widths: bool = False) -> np.ndarray:
    """Shower features (:func:`.features.shower_features`) of layered training clouds."""
    if data.spec.integer_feature is None:
        raise ValueError("CaloClouds needs layered showers (features E, x, y, layer)")
    return shower_features(
        data.offsets, data.points, data.condition, data.spec.integer_max + 1, widths
    )
