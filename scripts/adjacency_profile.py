"""Diagnostic: do a sample's points sit next to each other as Geant4's do, ring by ring?

For rings of distance from each shower's axis, the mean number of points per shower and the
share of points with another point of their layer within 1.5 sub-cell pitches
(:func:`pointcalo.metrics.point_structure.adjacency_profile`). Geant4's halo deposits sit on
tracks (most have a neighbour even 30-60 mm out); a generator that draws its points
independently given the shower leaves its halo points isolated. No grid is involved.

    python scripts/adjacency_profile.py runs/split/val.h5 ild-photon-cc RUN/checkpoint.pt gen.h5 \\
        [--n 300] [--labels ...] [--out runs/adjacency]

The first file is the reference; its second half (``--n`` showers from ``--n`` on) is scored
as "reference (other showers)", the floor. Every other argument is a shower file or a
checkpoint / shipped model name (then showers are generated at the reference's incident
energies, seed 1; ``NAME@SAMPLER:STEPS``, e.g. ``ild-photon-cc@heun:50``, picks the sampler and
its steps). Writes ``adjacency.json`` and ``adjacency.png``.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np


def load_sample(spec: str, energy: np.ndarray, n: int):
    """Showers of a file (its first ``n``), or of a checkpoint generated at ``energy``."""
    from pointcalo import io
    from pointcalo.generation import generate, load_model
    from pointcalo.pretrained import available
    from pointcalo.showers import make_showers

    name, _, how = spec.partition("@")
    if name.endswith(".pt") or name in available():
        sampler, _, steps = how.partition(":")
        m = load_model(name)
        c = generate(
            m.model,
            m.net,
            m.normalizer,
            energy,
            m.cfg,
            seed=1,
            limits=m.limits,
            sampler=sampler or None,
            steps=int(steps) if steps else None,
        )
        return make_showers(energy.astype(np.float32), c.points, offsets=c.offsets)
    return io.read(spec)[:n]


def main() -> None:
    from pointcalo import io
    from pointcalo.io.atomic import write_json
    from pointcalo.metrics.point_structure import RING_EDGES, adjacency_profile
    from pointcalo.plots import pyplot, save_png

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("reference")
    ap.add_argument("samples", nargs="*", help="shower files, checkpoints or shipped names")
    ap.add_argument("--labels", default=None, help="comma-separated labels of the samples")
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--pitch", type=float, default=0.848, help="sub-cell pitch of the data (mm)")
    ap.add_argument("--out", type=Path, default=Path("runs/adjacency"))
    args = ap.parse_args()
    ref_all = io.read(args.reference)
    ref = ref_all[: args.n]
    energy = np.asarray(ref.incident_energy, np.float64)
    labels = args.labels.split(",") if args.labels else args.samples
    rows = {"reference": ref, "reference (other showers)": ref_all[args.n : 2 * args.n]}
    for label, spec in zip(labels, args.samples, strict=True):
        rows[label] = load_sample(spec, energy, args.n)
    result = {"ring_edges_mm": [float(x) for x in RING_EDGES], "pitch_mm": args.pitch}
    print("rings (mm): " + " ".join(f"{a:g}-{b:g}" for a, b in itertools.pairwise(RING_EDGES)))
    for label, showers in rows.items():
        points, share = adjacency_profile(showers, args.pitch)
        result[label] = {
            "n_showers": len(showers),
            "points": points.tolist(),
            "adjacent": share.tolist(),
        }
        print(
            f"{label[-32:]:>32s} points "
            + " ".join(f"{v:6.0f}" for v in points)
            + " | adjacent "
            + " ".join(f"{v:4.2f}" for v in share)
        )
    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    centres = np.sqrt(np.maximum(RING_EDGES[:-1], 0.5) * np.minimum(RING_EDGES[1:], 128.0))
    for i, label in enumerate(k for k in result if isinstance(result[k], dict)):
        style = {"color": "k" if i < 2 else f"C{i - 2}", "ls": "--" if i == 1 else "-"}
        a1.plot(centres, result[label]["points"], marker="o", label=label, **style)
        a2.plot(centres, result[label]["adjacent"], marker="o", label=label, **style)
    a1.set(
        xscale="log",
        yscale="log",
        xlabel="distance from the shower axis [mm]",
        ylabel="points per shower in the ring",
    )
    a2.set(
        xscale="log",
        ylim=(0, 1.02),
        xlabel="distance from the shower axis [mm]",
        ylabel=f"share with a neighbour within {1.5 * args.pitch:.2f} mm",
    )
    a2.legend(fontsize=8)
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    save_png(fig, args.out / "adjacency.png")
    write_json(result, args.out / "adjacency.json")
    print(f"wrote {args.out / 'adjacency.json'} and adjacency.png")


if __name__ == "__main__":
    main()
