"""mnist_5k through assay's image embedder (EfficientNet-Lite0, 1280-d), for
bench_mining.py --vectors. The grey digit is resized (bilinear) to SIZE x SIZE
RGB and normalised as the embedder does (array path, no PNG round trip);
SIZE 112 takes ~45 s for the 5,000 digits on 2 shared cores (224: ~4x).
With --concat the output is [PCA-64 of the pixels | EfficientNet], each part
L2-normalised (what the 2026-12-05 figures in docs/benchmarks.md use).

    python benchmarks/ml/mnist_effnet.py OUT.npy [--size 112] [--concat]
"""

import argparse
import gzip
import time
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.decomposition import PCA
from sklearn.preprocessing import normalize

from assay.learn.embedders import EfficientNetLite0Embedder

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--concat", action="store_true", help="prepend PCA-64 of the pixels")
    a = ap.parse_args()
    rows = np.loadtxt(gzip.open(DATA / "images/mnist_5k/mnist_5k.csv.gz", "rt"), delimiter=",", dtype=np.float32)
    e = EfficientNetLite0Embedder(threads=2)
    t, out = time.time(), []
    for s in range(0, len(rows), 64):
        ims = [np.asarray(Image.fromarray(r[:784].reshape(28, 28).astype(np.uint8)).convert("RGB")
                          .resize((a.size, a.size), Image.BILINEAR), np.float32) / 255.0 for r in rows[s:s + 64]]
        x = (np.stack(ims) - e.mean) / e.std
        out.append(e.forward(np.ascontiguousarray(x.transpose(0, 3, 1, 2))))
    v = normalize(np.concatenate(out))
    if a.concat:
        v = np.hstack([normalize(PCA(64, random_state=0).fit_transform(rows[:, :784] / 255.0)), v])
    np.save(a.out, v.astype(np.float32))
    print(f"{len(v)} x {v.shape[1]} in {time.time() - t:.1f} s")


if __name__ == "__main__":
    main()
