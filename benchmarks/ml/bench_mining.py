"""Needle mining on real digits (issue 15): one mnist_5k digit is the rare
class, down-sampled to 1 % of the pool; from 5 known examples, search ->
label -> re-rank (:mod:`assay.learn.mining`) until 80 % of the other rare
items are found. Features: PCA (64-d) of the pixels, as offline_features.py
(no model weights needed). Each row is what ``assay simulate --mine``
prints, plus the wall time; the random baseline is in every row.

    python benchmarks/ml/bench_mining.py OUT.jsonl [--digits 0,1,...] [--seeds 0,1,2]

Bar: labels used <= 5x the rare items (``ratio`` <= 5), found_share >= 0.8.
"""

import argparse
import gzip
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.preprocessing import normalize

from assay.simulation.mine import simulate_mine

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def features(tmp: Path, vectors: Path | None = None) -> tuple[Path, Path, Path]:
    """PCA-64 of the pixels, or ``vectors`` (an (N, d) .npy in the csv's row
    order, e.g. the image embedder's: benchmarks/ml/mnist_effnet.py), L2-normalised."""
    rows = np.loadtxt(gzip.open(DATA / "images/mnist_5k/mnist_5k.csv.gz", "rt"), delimiter=",", dtype=np.float32)
    y = rows[:, 784].astype(int)
    if vectors is None:
        v = normalize(PCA(64, random_state=0).fit_transform(rows[:, :784] / 255.0)).astype(np.float32)
    else:
        v = normalize(np.load(vectors)).astype(np.float32)
    np.save(tmp / "f.npy", v)
    (tmp / "ids.txt").write_text("".join(f"d{i:04d}\n" for i in range(len(y))))
    (tmp / "truth.csv").write_text("item,label\n" + "".join(f"d{i:04d},{c}\n" for i, c in enumerate(y)))
    return tmp / "f.npy", tmp / "ids.txt", tmp / "truth.csv"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--digits", default=",".join(map(str, range(10))))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--vectors", type=Path, default=None, help="an (N, d) .npy of features instead of pixel PCA")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as t, a.out.open("w") as out:
        f, ids, truth = features(Path(t), a.vectors)
        for d in a.digits.split(","):
            for s in map(int, a.seeds.split(",")):
                t0 = time.perf_counter()
                r = simulate_mine(f, ids, truth, d, rare_share=0.01, seeds=5, seed=s)
                r["wall_s"] = round(time.perf_counter() - t0, 2)
                r["features"] = f"mnist_5k {a.vectors.name}" if a.vectors else "mnist_5k PCA-64 of pixels"
                out.write(json.dumps(r) + "\n")
                out.flush()
                print(d, s, r["labels_used"], r["rare_items"], round(r["ratio"], 2), r["found_share"],
                      round(r["random_ratio"], 1), flush=True)


if __name__ == "__main__":
    main()
