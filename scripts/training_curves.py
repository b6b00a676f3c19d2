"""Training losses of runs against compute: each run folder's ``log.jsonl`` (written by
``pointcalo train``), one panel per run, every logged loss against CPU-hours, smoothed over
``--window`` logged steps; a PNG and, per run, ``learning_curve.json`` (the smoothed values
every ``--every`` steps) for ``training/``.

    python scripts/training_curves.py runs/vqvae_points runs/gpt_points --out curves.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SKIP = {"step", "lr", "clouds_per_s", "cpu_h", "tokens", "codes_used"}


def curves(run: Path, window: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """``(steps, cpu_h, {loss name: smoothed values})`` of one run's log."""
    rows = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines() if x.strip()]
    rows = [r for r in rows if "cpu_h" in r]
    steps = np.array([r["step"] for r in rows])
    cpu = np.array([r["cpu_h"] for r in rows])
    names = [k for k in rows[0] if k not in SKIP and isinstance(rows[0][k], (int, float))]
    kernel = np.ones(window) / window
    out = {}
    for k in names:
        v = np.array([r.get(k, np.nan) for r in rows], dtype=float)
        pad = np.concatenate([np.full(window - 1, v[0]), v])
        out[k] = np.convolve(pad, kernel, mode="valid")
    return steps, cpu, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True, help="PNG to write")
    ap.add_argument("--window", type=int, default=10)
    ap.add_argument("--every", type=int, default=100)
    args = ap.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.runs), figsize=(4 * len(args.runs), 3.2), squeeze=False)
    for ax, run in zip(axes[0], args.runs, strict=True):
        steps, cpu, losses = curves(run, args.window)
        keep = np.flatnonzero(steps % args.every == 0)
        table = [
            {"step": int(steps[i]), "cpu_h": round(float(cpu[i]), 4),
             **{k: round(float(v[i]), 4) for k, v in losses.items()}}
            for i in keep
        ]  # fmt: skip
        (run / "learning_curve.json").write_text(json.dumps(table, indent=1))
        for k, v in losses.items():
            ax.plot(cpu, v, label=k)
        ax.set_yscale("log")
        ax.set_xlabel("CPU-hours")
        ax.set_title(f"{run.name} (step {steps[-1]})", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
