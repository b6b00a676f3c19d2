"""numpy reference of one-step CaloClouds generation from an ONNX export: the glue between the
exported networks that a C++ port (e.g. a Geant4 fast-simulation hook) would follow.

It imports only numpy and its siblings :mod:`.calibrate` (the shower-flow post-processing) and
:mod:`.glue_validity` (relative imports), so ``pointcalo export ... --format onnx`` copies
the three files into the export's ``glue`` package and they run where pointcalo is not
installed (with onnxruntime for the networks).

Steps for ``energy [B]`` (MeV), ``base [B, D]``, ``noise [B, N, 4]``:

1. ``log_c = (log E - cond_mean[0]) / cond_std[0]``; ``features = flow(log_c, base)``;
2. ``counts = clip(round(exp(features[:, 0])), 1, N)``; the first ``counts[b]`` rows of
   ``noise[b]``, shower by shower;
3. ``cond = ((log E, log counts) - cond_mean) / cond_std``; ``x0 = denoiser(noise, cond, counts)``;
4. decode ``x0`` with the normaliser (``E`` from log, ``x``, ``y`` onto the 0.848 mm lattice);
5. :func:`.calibrate.calibrate` with the continuous depth ``x0[:, 3]``, then onto the lattice;
6. the points made valid (:func:`.glue_validity.make_valid`: one per sub-cell, positive,
   inside the training data's extent, energies capped at its largest).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .calibrate import calibrate
from .glue_validity import make_valid


def decode(x0: np.ndarray, norm: dict, clip: float = 10.0) -> dict[str, np.ndarray]:
    """Physical ``E, x, y, layer`` from normalised ``x0 [P, 4]`` (the normaliser's dict)."""
    spec = norm["spec"]
    x = np.clip(np.nan_to_num(x0.astype(np.float64)), -clip, clip) * norm["std"] + norm["mean"]
    out = {}
    for j, name in enumerate(spec["features"]):
        col = x[:, j]
        if name in spec["log_features"]:
            col = np.exp(col)
        if name == spec["integer_feature"]:
            out[name] = np.clip(np.floor(col), 0, spec["integer_max"]).astype(np.int32)
            continue
        if name in spec.get("lattice_features", ()) and spec.get("lattice_pitch", 0) > 0:
            col = on_lattice(col, spec["lattice_pitch"])
        out[name] = col.astype(np.float32)
    return out


def on_lattice(col: np.ndarray, pitch: float) -> np.ndarray:
    """Centres ``(k + 1/2) pitch`` of the lattice cells holding ``col``."""
    return (np.floor(col / pitch) + 0.5) * pitch


class OnnxSampler:
    """``sampler(energy, base, noise) -> (points [P, 4] float32, counts [B] int64)`` from
    the ``flow.onnx``, ``denoiser.onnx`` and ``meta.json`` of an export directory."""

    def __init__(self, directory: str | Path, threads: int = 1) -> None:
        import onnxruntime as ort

        d = Path(directory)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = threads
        cpu = ["CPUExecutionProvider"]
        self.flow = ort.InferenceSession(str(d / "flow.onnx"), opts, providers=cpu)
        self.net = ort.InferenceSession(str(d / "denoiser.onnx"), opts, providers=cpu)
        self.meta = json.loads((d / "meta.json").read_text())
        norm = self.meta["normalizer"]
        self.norm = {**norm, "mean": np.asarray(norm["mean"]), "std": np.asarray(norm["std"])}
        self.cond_mean = np.asarray(norm["cond_mean"], np.float64)
        self.cond_std = np.asarray(norm["cond_std"], np.float64)

    def __call__(
        self, energy: np.ndarray, base: np.ndarray, noise: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        energy = np.asarray(energy, np.float64)
        log_e = np.log(energy)
        log_c = ((log_e - self.cond_mean[0]) / self.cond_std[0]).astype(np.float32)
        feats = self.flow.run(None, {"log_c": log_c, "base": base.astype(np.float32)})[0]
        feats = feats.astype(np.float64)
        n_max = noise.shape[1]
        counts = np.clip(np.rint(np.exp(feats[:, 0])), 1, n_max).astype(np.int64)
        keep = np.arange(n_max)[None, :] < counts[:, None]
        log_n = np.log(np.maximum(counts, 1).astype(np.float64))
        cond = ((np.stack([log_e, log_n], 1) - self.cond_mean) / self.cond_std).astype(np.float32)
        feed = {"noise": noise[keep].astype(np.float32), "cond": cond, "counts": counts}
        x0 = self.net.run(None, feed)[0]
        pts = decode(x0, self.norm)
        meta = self.meta
        calibrate(pts, x0[:, 3], counts, feats, energy, meta["n_layers"], meta["widths"])
        pitch = self.norm["spec"].get("lattice_pitch", 0)
        for name in self.norm["spec"].get("lattice_features", ()):
            pts[name] = on_lattice(pts[name], pitch).astype(np.float32)
        if meta.get("point_limits") is not None:
            pts, counts = make_valid(pts, counts, meta["point_limits"])
        points = np.stack([pts["E"], pts["x"], pts["y"], pts["layer"].astype(np.float32)], 1)
        return points, counts
