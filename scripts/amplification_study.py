"""The amplification study of docs/amplification.md: how many Geant4 showers the shipped
photon model and frozen-shower libraries of N = 250, 1,000 and 4,000 training showers are
worth, per observable (``pointcalo amplify``).

    python scripts/amplification_study.py [--split runs/split] [--out runs/amplify] [--n 20000]

``--split``: the train / val / test files of the photon split (``pointcalo split
../shared/data/g4_ild_photons.h5 --out runs/split``). Truths are Geant4 showers no model
saw: the libraries' is val + test + the training showers from index 4,000 on (4,750); the
shipped models' (trained on all 6,562 training showers) val + test (2,188). The libraries'
Geant4 curves are drawn from training showers 0-3,999. Prints the table of factors.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import awkward as ak

from pointcalo import io
from pointcalo.cli import main as cli

LIBRARY_N = (250, 1000, 4000)
MODELS = (("ild-photon-cm", 20_000), ("ild-photon-cc", 2_000))


def run(args: list[str]) -> None:
    if cli(args) != 0:
        raise SystemExit(f"pointcalo {' '.join(args)} failed")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="runs/split")
    ap.add_argument("--out", default="runs/amplify")
    ap.add_argument("--n", type=int, default=20_000, help="library showers sampled per N")
    ap.add_argument("--bootstrap", type=int, default=100)
    ap.add_argument("--skip-teacher", action="store_true", help="leave out ild-photon-cc")
    args = ap.parse_args()
    split, out = Path(args.split), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train = io.read(split / "train.h5")
    unseen = ak.concatenate([io.read(split / "val.h5"), io.read(split / "test.h5")])
    files = {
        "truth_shipped": io.write(unseen, out / "truth_shipped.h5"),
        "truth_library": io.write(
            ak.concatenate([unseen, train[max(LIBRARY_N) :]]), out / "truth_library.h5"
        ),
        "pool": io.write(train[: max(LIBRARY_N)], out / "pool.h5"),
    }
    common = ["--bootstrap", str(args.bootstrap), "-q"]
    reports = {}
    for n in LIBRARY_N:
        data = io.write(train[:n], out / f"library_{n}_train.h5")
        ckpt = out / f"library_{n}"
        if not (ckpt / "checkpoint.pt").exists():
            run(["train", "configs/library.yaml", "--data", str(data), "--out", str(ckpt), "-q"])
        report = out / f"report_library_{n}"
        run(["amplify", "--model", str(ckpt / "checkpoint.pt"), "--n", str(args.n),
             "--truth", str(files["truth_library"]), "--pool", str(files["pool"]),
             "--n-train", str(n), "--out", str(report), *common])  # fmt: skip
        reports[f"library, N = {n:,}"] = report
    for name, m in MODELS:
        if args.skip_teacher and name == "ild-photon-cc":
            continue
        report = out / f"report_{name}"
        run(["amplify", "--model", name, "--n", str(m), "--truth",
             str(files["truth_shipped"]), "--n-train", str(len(train)),
             "--out", str(report), *common])  # fmt: skip
        reports[f"{name}, N = {len(train):,}"] = report
    rows = {k: json.loads((p / "amplify.json").read_text()) for k, p in reports.items()}
    names = list(next(iter(rows.values()))["summary"])

    def cell(s: dict) -> str:
        def f(v):
            return "inf" if v == "inf" else f"{v:.2f}"

        return f"{f(s['factor'])} ({f(s['interval'][0])}-{f(s['interval'][1])})"

    print("| model | generated | truth | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 3) + "|")
    for label, r in rows.items():
        cells = [cell(r["summary"][n]) if n in r["summary"] else "-" for n in names]
        print(f"| {label} | {r['n_generated']:,} | {r['n_truth']:,} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
