"""Design study (session 13): fine-tune only the shower flow of a CaloClouds-family checkpoint.

The flow draws each shower's per-layer energies, point counts and widths; the point network and
the libraries only place what it drew. The block models' flow was fine-tuned jointly with the
block network, 16 showers per step, and its negative log-likelihood was still falling when that
run stopped (``training/caloclouds_ild_blocks/log.jsonl``). Here the flow alone trains on the
same features with larger batches, its validation likelihood measured every ``--eval-every``
steps; the best state replaces the flow of the checkpoint (and of ``--student``, a distilled
model that carries the same flow). Network, EMA, libraries and the flow's standardisation stay.

    python scripts/flow_finetune.py pointcalo/pretrained/ild-photon-bcc.pt \\
        --data runs/blocks/train.h5 --val runs/blocks/val.h5 --steps 4000 --out runs/flow/bcc.pt \\
        --student pointcalo/pretrained/ild-photon-bcm.pt --student-out runs/flow/bcm.pt
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import copy
import json
import math
import time
from pathlib import Path

import numpy as np
import torch


def features(path: str, loaded) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features [N, D], flow context [N, C])`` of the showers of ``path``, normalised as
    the checkpoint's training data."""
    from pointcalo.frames import to_model_frame
    from pointcalo.models.showerflow.features import data_features, flow_context
    from pointcalo.train.datasets import load_training_data

    cfg = loaded.cfg.data
    data = to_model_frame(load_training_data(cfg, seed=0, path=path), cfg.frame)
    m = loaded.model
    feats = data_features(data, m.widths, m.hits)
    extra = {k: np.asarray(v) for k, v in data.extra.items()} or None
    cond = loaded.normalizer.encode_cond(data.condition, np.ones(len(data)), extra)
    context = flow_context(torch.as_tensor(cond))
    return torch.as_tensor(feats, dtype=torch.float32), context


def replace_flow(path: str, flow: torch.nn.Module, out: Path, note: dict) -> None:
    """``path``'s checkpoint with ``flow``'s weights, written to ``out``."""
    from pointcalo.checkpoint import load_checkpoint, save_checkpoint

    state = load_checkpoint(path)
    state = {k: v for k, v in state.items() if k != "checksum"}
    for name, value in flow.state_dict().items():
        key = f"flow.{name}"
        if key not in state["model"]:
            raise SystemExit(f"{path}: no {key} in its weights")
        state["model"][key] = value.clone()
    state["meta"] = {**state["meta"], "flow_finetune": note}
    save_checkpoint(out, state)
    print(f"wrote {out}")


def main() -> None:
    from pointcalo.generation import load_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--data", required=True, help="the checkpoint's training showers")
    ap.add_argument("--val", required=True, help="validation showers (the best step by NLL)")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--student", default=None, help="a distilled model with the same flow")
    ap.add_argument("--student-out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)

    loaded = load_model(args.checkpoint)
    flow = loaded.model.flow.train()
    x_tr, c_tr = features(args.data, loaded)
    x_va, c_va = features(args.val, loaded)
    opt = torch.optim.Adam(flow.parameters(), lr=args.lr)
    rng = np.random.default_rng(args.seed)

    def val_nll() -> float:
        with torch.no_grad():
            return float(flow.nll(x_va, c_va))

    best, best_step, curve = val_nll(), 0, []
    best_state = copy.deepcopy(flow.state_dict())
    print(f"step 0: validation NLL {best:.3f}")
    curve.append({"step": 0, "val_nll": best})
    t0 = time.perf_counter()
    for step in range(1, args.steps + 1):
        lr = args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / args.steps)))
        for g in opt.param_groups:
            g["lr"] = lr
        idx = torch.as_tensor(rng.choice(len(x_tr), args.batch, replace=False))
        loss = flow.nll(x_tr[idx], c_tr[idx])
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(flow.parameters(), 1.0)
        opt.step()
        if step % args.eval_every == 0 or step == args.steps:
            v = val_nll()
            curve.append({"step": step, "val_nll": v, "train_nll": loss.item()})
            print(f"step {step}: train {loss.item():.3f} validation {v:.3f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)  # fmt: skip
            if v < best:
                best, best_step, best_state = v, step, copy.deepcopy(flow.state_dict())
    flow.load_state_dict(best_state)
    note = {"steps": args.steps, "batch": args.batch, "lr": args.lr, "best_step": best_step,
            "val_nll": best, "initial_val_nll": curve[0]["val_nll"], "data": args.data}  # fmt: skip
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    replace_flow(args.checkpoint, flow, out, note)
    (out.parent / f"{out.stem}_curve.json").write_text(json.dumps(curve, indent=1))
    if args.student:
        replace_flow(args.student, flow, Path(args.student_out), note)


if __name__ == "__main__":
    main()
