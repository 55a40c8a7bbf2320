"""The ML-in-the-loop bars: `assay simulate --ml` against the 3-vote
majority-vote baseline measured in the same run.

- sentiment_polarity: real sentences (embedded with all-MiniLM-L6-v2), real
  MTurk answers replayed, real truth. Bar: accuracy >= baseline with <= 50 %
  of the baseline's human answers.
- mnist_5k: real digits (EfficientNet-Lite0), simulated annotators whose
  accuracies follow the real ones (make_mnist_crowd.py). Bar: accuracy >=
  baseline with <= 25 % of its answers.
- Both: accuracy of the auto-labeled items >= the target (0.95).

Every run also writes the simulated project's export (``simulate --export``)
and scores that file against the truth (``export_accuracy``): the labels a
user gets, which must be the ``accuracy`` the run reports.

    python benchmarks/ml/bench_loop.py [--sets sentiment_polarity,mnist_5k] [--cache /tmp/assay-ml-cache] [--seed 0] [-- extra simulate flags]

Every setting is simulate --ml's default (``--target match``: people are
asked for what makes the labels as accurate as the 3-vote baseline).
Embeddings are cached under --cache (an .npy and ids per set) after the
first run, so repeated runs time the loop, not the model.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
DATA = ROOT.parent / "shared" / "data"
BARS = {"sentiment_polarity": 0.50, "mnist_5k": 0.25}


def _features(name: str, cache: Path, crowd: Path | None) -> tuple[Path, Path]:
    import pandas as pd

    from assay.learn import get_embedder

    f, ids = cache / f"{name}.npy", cache / f"{name}.ids.txt"
    if f.is_file() and ids.is_file():
        return f, ids
    cache.mkdir(parents=True, exist_ok=True)
    if name == "mnist_5k":
        files = sorted((crowd / "images").glob("*.png"))
        emb = get_embedder(kind="image")
        blobs = [p.read_bytes() for p in files]
        v = np.concatenate([emb.embed(blobs[i:i + 64]) for i in range(0, len(blobs), 64)])
        names = [p.stem for p in files]
    else:
        it = pd.read_csv(DATA / "crowd" / name / "items.csv", dtype=str, keep_default_na=False)
        emb = get_embedder()
        texts = it["text"].tolist()
        v = np.concatenate([emb.embed(texts[i:i + 256]) for i in range(0, len(texts), 256)])
        names = it["item"].tolist()
    np.save(f, v)
    ids.write_text("\n".join(names) + "\n")
    return f, ids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sets", default="sentiment_polarity,mnist_5k")
    ap.add_argument("--cache", default="/tmp/assay-ml-cache")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("extra", nargs="*", help="more flags for assay simulate --ml")
    args = ap.parse_args()
    cache = Path(args.cache)
    rows = []
    for name in args.sets.split(","):
        if name == "mnist_5k":
            crowd = cache / "mnist_crowd"
            if not (crowd / "answers.csv").is_file():
                subprocess.run([sys.executable, str(ROOT / "benchmarks/ml/make_mnist_crowd.py"), "--out", str(crowd),
                                "--seed", str(args.seed)], check=True)
            answers, truth = crowd / "answers.csv", crowd / "truth.csv"
        else:
            crowd = None
            answers, truth = DATA / "crowd" / name / "answers.csv", DATA / "crowd" / name / "truth.csv"
        f, ids = _features(name, cache, crowd)
        cmd = [sys.executable, "-m", "assay.cli", "simulate", "--ml", "--answers", str(answers), "--truth", str(truth),
               "--features", str(f), "--feature-ids", str(ids), "--seed", str(args.seed),
               "--export", str(cache / f"{name}-seed{args.seed}-export.jsonl"), *args.extra]
        t = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        r["wall_s"] = round(time.perf_counter() - t, 1)
        from _common import score_export

        r.update(score_export(cache / f"{name}-seed{args.seed}-export.jsonl", truth))
        rows.append((name, r))
        print(json.dumps({name: r}), flush=True)
    print()
    print("| set | baseline: answers / acc | loop: answers (share of baseline) / acc | auto-labeled: items / acc "
          "| export: labeled / acc | bar |")
    print("|---|---|---|---|---|---|")
    for name, r in rows:
        b = r["baseline"]
        share = r["answers_used"] / b["answers"]
        ok = share <= BARS.get(name, 1) and r["accuracy"] >= b["accuracy"] and (
            r["accuracy_auto_labeled"] is None or r["accuracy_auto_labeled"] >= r["settings"]["auto_label_target"])
        auto = (f"{r['items_auto_labeled']} / {100 * r['accuracy_auto_labeled']:.2f}"
                if r["accuracy_auto_labeled"] is not None else f"{r['items_auto_labeled']} / –")
        print(f"| {name} | {b['answers']:,} / {100 * b['accuracy']:.2f} | {r['answers_used']:,} ({100 * share:.1f} %) / "
              f"{100 * r['accuracy']:.2f} | {auto} | {r['export_labeled']:,} / {100 * r['export_accuracy']:.2f} | "
              f"{'holds' if ok else 'fails'} (≤ {100 * BARS.get(name, 1):.0f} %) |")


if __name__ == "__main__":
    main()
