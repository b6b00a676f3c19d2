"""Export of a one-step CaloClouds model with Key4hep DDML's CaloClouds interface.

DDML (key4hep/DDML, ``src/CaloCloudsTwoAngleModel.cc`` and ``src/TorchInference.cc``) loads a
TorchScript module and calls it once per particle, on one CPU thread, with three float32
tensors of shape ``[1, 1]``: the energy in GeV and the polar and azimuthal angles (degrees) of
the particle's direction in the local frame of the calorimeter module. It copies the first
35,000 floats of the returned tensor and reads them as the 30 per-layer point counts followed
by ``(x, y, layer, E)`` per point: ``x, y`` in mm relative to the entry point, ``E`` in MeV
(Geant4's unit: the value goes into ``G4FastHit`` as it is). ``convertOutput`` puts point ``i``
into the layer it names, so the counts must be those of the points that follow.

:class:`DDMLSampler` is that module: it draws its own randomness (``torch.randn``, seeded by the
caller's ``torch.manual_seed`` if at all), so DDML needs nothing but the three inputs. The
conditions DDML does not pass are fixed at export: the particle (``pdg``, when the model takes
it) and the impact point, at the entry point itself (``impact_x = impact_y = 0``: the model's
points are then relative to the entry point, which is DDML's frame). Angles convert from
degrees to the radians pointcalo's conditions use; a model trained at normal incidence ignores
them (the export's card says so).

Truncation (a shower with more than ``(35000 - 30) / 4 = 8,742`` points): the most energetic
points are kept and their energies scaled so the shower keeps its visible energy. Geant4 photon
showers of 10-90 GeV hold about 2,000-3,000 points, so this is rare; the card states the cap.
The output is ``[B, 35000]`` for ``B`` showers (inputs ``[B, 1]``): one row per particle.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from pointcalo.errors import PointcaloError
from pointcalo.validity import PointLimits, ValidPoints

#: Floats DDML reads from the output (``m_maxNumElements`` of CaloCloudsTwoAngleModel).
DDML_FLOATS = 35_000
#: Raw inputs each named condition can be built from: columns of :meth:`DDMLSampler._raw`.
_RAW = ("theta", "phi", "cos_theta", "sin_theta", "cos_phi", "sin_phi")


def condition_map(extra_names: tuple[str, ...], fixed: dict[str, float]) -> tuple[Tensor, Tensor]:
    """``(W [6, C], const [C])``: the model's encoded named conditions as ``raw @ W + const``,
    ``raw`` the columns :data:`_RAW` of the angles DDML passes (radians); a condition DDML
    does not pass takes its value from ``fixed`` (a periodic one its cosine and sine)."""
    from pointcalo.conditions import CONDITIONS

    cols: list[tuple[str | None, float]] = []
    for name in extra_names:
        c = CONDITIONS[name]
        if name in ("theta", "phi"):
            cols += [(f"cos_{name}", 0.0), (f"sin_{name}", 0.0)] if c.periodic else [(name, 0.0)]
        elif name in fixed:
            v = float(fixed[name])
            cols += [(None, math.cos(v)), (None, math.sin(v))] if c.periodic else [(None, v)]
        else:
            raise PointcaloError(
                f"export: --format ddml: the model is conditioned on {name}, which DDML does "
                f"not pass: fix it at export ({CONDITIONS[name].flag})"
            )
    w = torch.zeros(len(_RAW), len(cols), dtype=torch.float64)
    const = torch.zeros(len(cols), dtype=torch.float64)
    for j, (raw, value) in enumerate(cols):
        if raw is None:
            const[j] = value
        else:
            w[_RAW.index(raw), j] = 1.0
    return w, const


def pack_ddml(
    e: Tensor, x: Tensor, y: Tensor, layer: Tensor, counts: Tensor, n_layers: int, floats: int
) -> Tensor:
    """DDML's output rows ``[B, floats]`` from flat points ``e, x, y, layer [P]`` of showers of
    ``counts [B]`` points: per row the ``n_layers`` per-layer counts, then ``(x, y, layer, E)``
    per point in layer order, zeros after. A shower with more points than fit keeps its most
    energetic ones, their energies scaled to the shower's visible energy. Vectorised over the
    showers (sorts and scatters, no loop)."""
    n = counts.shape[0]
    dev = e.device
    cap = (floats - n_layers) // 4
    owner = torch.repeat_interleave(torch.arange(n, device=dev), counts)
    e64 = e.to(torch.float64)
    # rank of each point by energy within its shower: descending energy, then by shower
    order = torch.argsort(e64, descending=True, stable=True)
    order = order[torch.argsort(owner[order], stable=True)]
    start = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.shape[0], device=dev) - start[owner[order]]
    keep = rank < cap
    total = torch.zeros(n, dtype=torch.float64, device=dev).index_add_(0, owner, e64)
    kept = torch.zeros(n, dtype=torch.float64, device=dev).index_add_(0, owner[keep], e64[keep])
    scale = torch.where(kept > 0, total / kept.clamp(min=1e-300), torch.ones_like(total))
    owner, lay = owner[keep], layer[keep].to(torch.int64)
    e64 = e64[keep] * scale[owner]
    px, py = x[keep].to(torch.float64), y[keep].to(torch.float64)
    # layer order within each shower
    order = torch.argsort(lay, stable=True)
    order = order[torch.argsort(owner[order], stable=True)]
    owner, lay, e64, px, py = owner[order], lay[order], e64[order], px[order], py[order]
    out = torch.zeros(n * floats, dtype=torch.float32, device=dev)
    per_layer = torch.bincount(owner * n_layers + lay, minlength=n * n_layers)
    rows = torch.arange(n, device=dev)[:, None] * floats + torch.arange(n_layers, device=dev)
    out[rows.reshape(-1)] = per_layer[: n * n_layers].to(torch.float32)
    n_kept = torch.bincount(owner, minlength=n)
    first = torch.cumsum(n_kept, 0) - n_kept
    slot = torch.arange(owner.shape[0], device=dev) - first[owner]
    base = owner * floats + n_layers + 4 * slot
    values = torch.stack([px, py, lay.to(torch.float64), e64], 1).to(torch.float32)
    cols = torch.arange(4, device=dev)
    out[(base[:, None] + cols[None, :]).reshape(-1)] = values.reshape(-1)
    return out.view(n, floats)


class DDMLSampler(nn.Module):
    """``(energy [B, 1] GeV, theta [B, 1] deg, phi [B, 1] deg) -> [B, 35000]`` float32: the
    whole one-step generation with DDML's interface (module docstring)."""

    def __init__(
        self,
        flow: nn.Module,
        net: nn.Module,
        post: nn.Module,
        cond: Any,
        limits: PointLimits,
        cond_w: Tensor,
        cond_const: Tensor,
        n_features: int,
        max_points: int,
        floats: int = DDML_FLOATS,
    ) -> None:
        super().__init__()
        self.flow, self.net, self.post = flow, net, post
        self.register_buffer("cond_mean", torch.as_tensor(cond[0], dtype=torch.float64))
        self.register_buffer("cond_std", torch.as_tensor(cond[1], dtype=torch.float64))
        self.register_buffer("cond_w", cond_w)
        self.register_buffer("cond_const", cond_const)
        self.valid = ValidPoints(limits)
        self.n_features, self.max_points, self.floats = n_features, max_points, floats

    def forward(self, energy: Tensor, theta: Tensor, phi: Tensor) -> Tensor:
        e_inc = energy.reshape(-1).to(torch.float64) * 1000.0  # GeV -> MeV
        th = theta.reshape(-1).to(torch.float64) * (math.pi / 180.0)
        ph = phi.reshape(-1).to(torch.float64) * (math.pi / 180.0)
        raw = torch.stack([th, ph, torch.cos(th), torch.sin(th), torch.cos(ph), torch.sin(ph)], 1)
        extra = raw @ self.cond_w + self.cond_const
        log_e = torch.log(e_inc)
        n = e_inc.shape[0]
        c = torch.cat([log_e[:, None], torch.zeros_like(log_e)[:, None], extra], 1)
        s = (c - self.cond_mean) / self.cond_std
        context = torch.cat([s[:, :1], s[:, 2:]], 1).to(torch.float32)
        base = torch.randn(n, self.n_features, dtype=torch.float32)
        feats = self.flow(context, base).to(torch.float64)
        counts = torch.round(torch.exp(feats[:, 0])).clamp(1, self.max_points).to(torch.int64)
        noise = torch.randn(int(counts.sum()), 4, dtype=torch.float32)
        s[:, 1] = (torch.log(counts.to(torch.float64)) - self.cond_mean[1]) / self.cond_std[1]
        x0 = self.net(noise, s.to(torch.float32), counts)
        e, px, py, layer = self.post(x0, counts, feats, e_inc)
        e, px, py, layer, counts = self.valid(e, px, py, layer, counts)
        return pack_ddml(e, px, py, layer, counts, self.valid.n_layers, self.floats)


def export_ddml(
    loaded, path: str | Path, fixed: dict[str, float] | None = None, max_points: int = 20_000
) -> tuple[Path, dict[str, Any]]:
    """``loaded`` (a one-step model) as a DDML TorchScript file at ``path`` (atomic write);
    ``fixed``: values of the named conditions DDML does not pass (``pdg``; the impact point
    defaults to the entry point, 0 mm). Returns the path and what the card should say of the
    conditions."""
    from pointcalo.models.consistency.export import _one_step_parts, save_scripted
    from pointcalo.models.showerflow.postprocess import PostProcess

    norm = loaded.normalizer
    fixed = {"impact_x": 0.0, "impact_y": 0.0, **(fixed or {})}
    w, const = condition_map(norm.extra_names, fixed)
    flow, net, n_feats = _one_step_parts(loaded)
    k = const.shape[0]  # encoded named-condition columns
    counts = torch.tensor([7, 5, 9])
    with torch.no_grad():
        traced_flow = torch.jit.trace(flow, (torch.zeros(3, 1 + k), torch.zeros(3, n_feats)))
        traced_net = torch.jit.trace(net, (torch.zeros(21, 4), torch.zeros(3, 2 + k), counts))
    m = loaded.model
    post = PostProcess(norm, m.n_layers, m.widths)
    sampler = DDMLSampler(
        traced_flow, traced_net, post, (norm.cond_mean, norm.cond_std), loaded.limits, w, const,
        n_feats, max_points,
    )  # fmt: skip
    # frozen: about 10 % faster per call at batch 1 (benchmarks/ddml_bench.py), same showers
    path = save_scripted(sampler, path, freeze=True)
    used = {k: v for k, v in fixed.items() if k in norm.extra_names}
    angles = [a for a in ("theta", "phi") if a in norm.extra_names]
    interface = {
        "inputs": {
            "energy": "[1, 1] float32, GeV",
            "theta": "[1, 1] float32, degrees, polar angle to the module's normal",
            "phi": "[1, 1] float32, degrees, azimuth in the module's plane",
        },
        "outputs": {
            "shower": f"[1, {DDML_FLOATS}] float32: {m.n_layers} per-layer counts, then x, y "
            "(mm, from the entry point), layer, E (MeV) per point; at most "
            f"{(DDML_FLOATS - m.n_layers) // 4} points (the most energetic, scaled to the "
            "shower's visible energy)",
        },
        "randomness": "drawn inside (torch.randn)",
    }
    return path, {**interface, "fixed_conditions": used, "angles_used": angles}
