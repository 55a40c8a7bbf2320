"""Simulated annotators for mnist_5k whose accuracies follow the real ones.

Per-worker accuracy is measured on every shared real crowd set
(``../shared/data/crowd/*``: answers against expert truth, workers with at
least ``--min-answers`` answers on items with truth); the simulated crowd
draws its workers' accuracies from that pooled empirical distribution. A
worker answers right with their accuracy, otherwise one of the other nine
digits uniformly. Each item gets ``--per-item`` answers from distinct
workers (the pool the replay draws from).

    python benchmarks/ml/make_mnist_crowd.py --out /tmp/mnist [--workers 100] [--per-item 10] [--seed 0]

Writes ``answers.csv`` (item,worker,label), ``truth.csv`` (item,label) and
``images/<item>.png``; prints the accuracy distribution it used.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def real_accuracies(min_answers: int = 20) -> np.ndarray:
    accs = []
    for d in sorted((DATA / "crowd").iterdir()):
        a = pd.read_csv(d / "answers.csv", dtype=str, keep_default_na=False)
        t = pd.read_csv(d / "truth.csv", dtype=str, keep_default_na=False)
        m = a.merge(t, on="item", suffixes=("", "_true"))
        g = m.assign(ok=m["label"] == m["label_true"]).groupby("worker")["ok"].agg(["mean", "size"])
        accs.extend(g.loc[g["size"] >= min_answers, "mean"].tolist())
    return np.asarray(accs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=100)
    ap.add_argument("--per-item", type=int, default=10)
    ap.add_argument("--min-answers", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from PIL import Image

    out = Path(args.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    real = real_accuracies(args.min_answers)
    acc = rng.choice(real, args.workers, replace=True)
    rows, truth = [], []
    with gzip.open(DATA / "images" / "mnist_5k" / "mnist_5k.csv.gz", "rt") as fh:
        for i, line in enumerate(fh):
            v = [int(x) for x in line.split(",")]
            item, label = f"d{i:04d}", v[784]
            buf = io.BytesIO()
            Image.fromarray(np.asarray(v[:784], np.uint8).reshape(28, 28), mode="L").save(buf, format="PNG")
            (out / "images" / f"{item}.png").write_bytes(buf.getvalue())
            truth.append((item, label))
            for w in rng.choice(args.workers, args.per_item, replace=False):
                ans = label if rng.random() < acc[w] else int(rng.choice([c for c in range(10) if c != label]))
                rows.append((item, f"sim{w}", ans))
    pd.DataFrame(rows, columns=["item", "worker", "label"]).to_csv(out / "answers.csv", index=False)
    pd.DataFrame(truth, columns=["item", "label"]).to_csv(out / "truth.csv", index=False)
    q = np.percentile(real, [10, 25, 50, 75, 90]).round(3).tolist()
    print(json.dumps({"real_workers": int(real.size), "real_accuracy_percentiles_10_25_50_75_90": q,
                      "sim_workers": args.workers, "sim_mean_accuracy": round(float(acc.mean()), 4),
                      "answers": len(rows), "items": len(truth)}))


if __name__ == "__main__":
    main()
