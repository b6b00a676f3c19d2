"""Export a one-step (consistency-distilled) CaloClouds model for the experiments' software:
``ddml`` for Key4hep's DDML (the module draws its own randomness and takes energy and angles
as DDML passes them: :mod:`pointcalo.models.consistency.ddml`), ``torchscript`` and ``onnx``
for callers that own the randomness.

The ``torchscript`` / ``onnx`` interface (README, "Export") is fixed:

* inputs: ``energy [B]`` float64 incident energies (MeV); ``base [B, D]`` float32 standard
  normal numbers of the shower flow; ``noise [B, N, F]`` float32 standard normal numbers of
  the points (row ``i`` of shower ``b`` is its ``i``-th point's noise; ``N`` bounds the number
  of points of a shower);
* outputs: ``points [P, 4]`` float32 (``E`` MeV, ``x``, ``y`` mm, ``layer``), shower by shower,
  and ``counts [B]`` int64 points per shower.

Fed with the numbers pointcalo's own sampler draws
(:func:`pointcalo.models.consistency.export.stream_inputs`), the export makes pointcalo's
showers. The export itself is the family's (``Family.export`` in the registry).

TorchScript holds the whole generation in one file: the shower flow (traced: zuko's flows are
not scriptable) and the one-step denoiser (traced) inside a scripted module that gathers the
noise, runs the post-processing of :mod:`pointcalo.models.showerflow.postprocess` and writes the
points. ONNX cannot express the post-processing (data-dependent loops of sorts and searches),
so the ONNX export is a documented split: ``flow.onnx`` (base noise -> shower features),
``denoiser.onnx`` (point noise -> generated normalised points), ``meta.json`` (scalings) and
the glue in plain numpy (:mod:`pointcalo.models.showerflow.onnx_glue`, with the numpy
post-processing it imports), copied beside them so they run without pointcalo.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from pointcalo.errors import PointcaloError
from pointcalo.io.atomic import write_json
from pointcalo.models import registry

FORMATS = ("torchscript", "onnx", "ddml")


def _check_output(out: Path, fmt: str) -> None:
    """Refuse, before any work, an output the export could not complete: a folder where a file
    goes, a name whose model card (``<name>.json``) would be too long for the file system."""
    from voxelize.atomic import NAME_MAX

    if fmt != "onnx" and (out.is_dir() or not out.name):
        raise PointcaloError(f"-o: {out} is a folder; --format {fmt} writes a file: name it")
    if len(out.name) + len(".json") > NAME_MAX:
        raise PointcaloError(
            f"-o: {out.name[:40]}...: the name is too long for its model card (<name>.json); "
            f"at most {NAME_MAX - len('.json')} characters"
        )


def export(
    loaded,
    out: str | Path,
    fmt: str,
    card: dict[str, Any] | None = None,
    fixed: dict[str, float] | None = None,
) -> Path:
    """Export ``loaded`` (a one-step model) as ``fmt`` to ``out``; writes the model card
    (``card`` plus the interface) beside it as ``<out>.json``. ``fixed``: for ``ddml``, the
    values of named conditions DDML does not pass (``pdg``)."""
    if fmt not in FORMATS:
        raise PointcaloError(f"export: --format '{fmt}' is not one of {', '.join(FORMATS)}")
    _check_output(Path(out), fmt)
    family = registry.get(loaded.cfg.model.name)
    if family.export is None:
        raise PointcaloError(
            f"export: only one-step (consistency) models export; this is '{family.name}'"
        )
    if loaded.normalizer.extra_names and fmt != "ddml":
        raise PointcaloError(
            f"export: the model is conditioned on {', '.join(loaded.normalizer.extra_names)} "
            "besides the energy; --format torchscript and onnx take the energy only: use "
            "--format ddml (energy and angles)"
        )
    with warnings.catch_warnings():  # tracer notes on shapes: the tests check other B and P
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Constant folding")
        # the TorchScript-based ONNX exporter, chosen on purpose: torch.export cannot trace
        # the data-dependent point counts of repeat_interleave
        warnings.filterwarnings("ignore", message="You are using the legacy")
        path, extra = family.export(loaded, out, fmt, fixed=fixed)
    if fmt == "ddml":  # the family describes its DDML module (inputs, outputs, conditions)
        full = {**(card or {}), "export": {"format": "ddml", **extra}}
        write_json(json.loads(json.dumps(full, default=str)), Path(f"{path}.json"))
        return path
    interface = {
        "format": fmt,
        "inputs": {
            "energy": "[B] float64, incident energy (MeV)",
            "base": f"[B, {loaded.model.flow.mean.shape[0]}] float32, standard normal",
            "noise": "[B, N, 4] float32, standard normal (N bounds the points per shower)",
        },
        "outputs": {
            "points": "[P, 4] float32: E (MeV), x, y (mm), layer; shower by shower",
            "counts": "[B] int64",
        },
    }
    full = {**(card or {}), "export": interface}
    write_json(json.loads(json.dumps(full, default=str)), Path(f"{path}.json"))
    return path
