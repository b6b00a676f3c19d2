"""Export of a one-step consistency model: TorchScript (the whole generation in one file) and
ONNX (flow and denoiser networks plus the numpy glue of :mod:`pointcalo.models.showerflow.
onnx_glue`); the interface and the split are described in :mod:`pointcalo.export`."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from pointcalo.errors import PointcaloError
from pointcalo.io.atomic import atomic_folder, atomic_path, write_json
from pointcalo.models.showerflow.features import draw_features
from pointcalo.models.showerflow.postprocess import PostProcess
from pointcalo.streams import cloud_generators, point_noise
from pointcalo.validity import PointLimits, ValidPoints

#: The numpy files of the ONNX glue, copied into the export as the package ``glue``.
GLUE_FILES = ("onnx_glue.py", "calibrate.py", "glue_validity.py")


class FlowSample(nn.Module):
    """``(log_c [B] standardised log energy, base [B, D]) -> features [B, D]`` (physical)."""

    def __init__(self, flow: nn.Module) -> None:
        super().__init__()
        self.flow = flow

    def forward(self, log_c: Tensor, base: Tensor) -> Tensor:
        return self.flow.sample(log_c, base)


class OneStep(nn.Module):
    """``(noise [P, F], cond [B, 2], counts [B]) -> x0 [P, F]``: the consistency model's one
    step from ``noise * sigma_max`` (:func:`pointcalo.sampling.sample_consistency`)."""

    def __init__(self, denoiser: nn.Module, sigma_max: float) -> None:
        super().__init__()
        self.denoiser, self.sigma_max = denoiser, float(sigma_max)

    def forward(self, noise: Tensor, cond: Tensor, counts: Tensor) -> Tensor:
        ptr = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
        sigma = torch.full((1,), self.sigma_max, dtype=noise.dtype)
        return self.denoiser(noise * self.sigma_max, sigma, (cond, ptr))


class ExportedSampler(nn.Module):
    """The whole one-step generation (scripted), see the module docstring."""

    def __init__(
        self, flow: nn.Module, net: nn.Module, post: nn.Module, cond: Any, limits: PointLimits
    ) -> None:
        super().__init__()
        self.flow, self.net, self.post = flow, net, post
        self.register_buffer("cond_mean", torch.as_tensor(cond[0], dtype=torch.float64))
        self.register_buffer("cond_std", torch.as_tensor(cond[1], dtype=torch.float64))
        self.valid = ValidPoints(limits)

    def forward(self, energy: Tensor, base: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
        log_e = torch.log(energy.to(torch.float64))
        log_c = ((log_e - self.cond_mean[0]) / self.cond_std[0]).to(torch.float32)
        feats = self.flow(log_c, base).to(torch.float64)
        n_max = noise.shape[1]
        counts = torch.round(torch.exp(feats[:, 0])).clamp(1, n_max).to(torch.int64)
        keep = torch.arange(n_max, device=noise.device)[None, :] < counts[:, None]
        x = noise[keep]
        log_n = torch.log(counts.to(torch.float64).clamp(min=1.0))
        cond = (torch.stack([log_e, log_n], 1) - self.cond_mean) / self.cond_std
        x0 = self.net(x, cond.to(torch.float32), counts)
        e, px, py, layer = self.post(x0, counts, feats, energy.to(torch.float64))
        e, px, py, layer, counts = self.valid(e, px, py, layer, counts)
        return torch.stack([e, px, py, layer.to(torch.float32)], 1), counts


def _one_step_parts(loaded) -> tuple[nn.Module, nn.Module, int]:
    """Flow and one-step network of a loaded consistency model, and the flow's feature count."""
    from pointcalo.models.consistency.model import sampling_config

    if loaded.model.blocks is not None:
        raise PointcaloError(
            "export: a two-level (block) model's re-expansion into sub-cells is not in the "
            "exported graph yet; sample it with pointcalo sample"
        )
    m = sampling_config(loaded.model, loaded.cfg)
    # weight norm stays a parametrisation (traced as its ops): removing it from a copy would
    # delete the weight property of the class the original shares
    net = copy.deepcopy(loaded.net).float().eval()
    flow = FlowSample(copy.deepcopy(loaded.model.flow).eval())
    return flow, OneStep(net, m.sigma_max).eval(), loaded.model.flow.mean.shape[0]


def stream_inputs(
    loaded, energy: np.ndarray, n_max: int, seed: int = 0, first_index: int = 0
) -> dict[str, np.ndarray]:
    """The export's inputs holding the numbers pointcalo's sampler draws for these showers
    (``seed``, shower indices from ``first_index``), so the export reproduces its showers.
    Draws the flow once to know each shower's number of points."""
    energy = np.asarray(energy, np.float64)
    gens = cloud_generators([(seed, first_index + i) for i in range(len(energy))])
    with torch.no_grad():
        base, _, counts = draw_features(loaded.model.flow, loaded.normalizer, energy, gens, n_max)
    counts = counts.numpy()
    noise = np.zeros((len(energy), n_max, 4), np.float32)
    flat_noise = point_noise(gens, counts, 4).numpy()
    ptr = np.concatenate([[0], np.cumsum(counts)])
    for b, n in enumerate(counts):
        noise[b, :n] = flat_noise[ptr[b] : ptr[b + 1]]
    return {"energy": energy, "base": base.numpy(), "noise": noise}


def _trace_inputs(n_feats: int) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    """Example inputs the flow and the network are traced with (3 showers, 21 points; the
    traced graphs take any B and P)."""
    counts = torch.tensor([7, 5, 9])
    return (torch.zeros(3), torch.zeros(3, n_feats)), (
        torch.zeros(21, 4),
        torch.zeros(3, 2),
        counts,
    )


def export_torchscript(loaded, path: str | Path) -> Path:
    """The whole one-step generation as one TorchScript file (atomic write)."""
    flow, net, n_feats = _one_step_parts(loaded)
    flow_in, net_in = _trace_inputs(n_feats)
    m = loaded.model
    with torch.no_grad():
        traced_flow = torch.jit.trace(flow, flow_in)
        traced_net = torch.jit.trace(net, net_in)
    post = PostProcess(loaded.normalizer, m.n_layers, m.widths)
    norm = loaded.normalizer
    cond = (norm.cond_mean, norm.cond_std)
    sampler = ExportedSampler(traced_flow, traced_net, post, cond, loaded.limits)
    return save_scripted(sampler, path)


def save_scripted(module: nn.Module, path: str | Path, freeze: bool = False) -> Path:
    """Script ``module`` (inference only: no parameter keeps its gradient; ``freeze``: weights
    and attributes inlined as constants) and write it to ``path`` atomically, a failure of
    torch's C++ writer (a full disk, a read-only folder) as one line naming the file."""
    for p in module.parameters():
        p.requires_grad_(False)
    scripted = torch.jit.script(module.eval())
    if freeze:
        scripted = torch.jit.freeze(scripted)
    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            scripted.save(str(tmp))
        except RuntimeError as err:
            first = " ".join(str(err).split())[:200]
            raise PointcaloError(f"{path}: could not be written: {first}") from None
    return path


def export_onnx(loaded, out: str | Path, opset: int = 17) -> Path:
    """``flow.onnx``, ``denoiser.onnx``, ``meta.json`` and the numpy glue (package ``glue``)
    in the directory ``out`` (built beside it, then renamed into place)."""
    with atomic_folder(out, flag="-o") as tmp:
        _write_onnx(loaded, tmp, opset)
    return out


def _write_onnx(loaded, tmp: Path, opset: int) -> None:
    """The files of an ONNX export into the folder ``tmp``."""
    flow, net, n_feats = _one_step_parts(loaded)
    flow_in, net_in = _trace_inputs(n_feats)
    (tmp / "glue").mkdir()
    with torch.no_grad():
        torch.onnx.export(
            flow,
            flow_in,
            str(tmp / "flow.onnx"),
            input_names=["log_c", "base"],
            output_names=["features"],
            dynamic_axes={"log_c": {0: "B"}, "base": {0: "B"}, "features": {0: "B"}},
            opset_version=opset,
            dynamo=False,
        )
        torch.onnx.export(
            net,
            net_in,
            str(tmp / "denoiser.onnx"),
            input_names=["noise", "cond", "counts"],
            output_names=["x0"],
            dynamic_axes={
                "noise": {0: "P"},
                "cond": {0: "B"},
                "counts": {0: "B"},
                "x0": {0: "P"},
            },
            opset_version=opset,
            dynamo=False,
        )
    m, norm = loaded.model, loaded.normalizer
    meta = {
        "n_layers": m.n_layers,
        "widths": bool(m.widths),
        "normalizer": norm.to_dict(),
        "point_limits": loaded.limits.bounds(),
    }
    write_json(meta, tmp / "meta.json")
    here = Path(__file__).parents[1] / "showerflow"
    for name in GLUE_FILES:
        shutil.copy(here / name, tmp / "glue" / name)
    (tmp / "glue" / "__init__.py").write_text(
        '"""numpy glue of a pointcalo ONNX export (see onnx_glue.py)."""\n'
        "from .onnx_glue import OnnxSampler\n"
    )
