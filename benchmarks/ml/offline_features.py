"""Model-free features for bench_loop.py, for machines that cannot load the
embedding models (no network, no weights): TF-IDF + truncated SVD (256-d) of
sentiment_polarity's sentences and PCA (64-d) of mnist_5k's pixels, written
where bench_loop.py looks for its cache. Weaker than MiniLM / EfficientNet
(the bars in docs/ml.md are for those), but deterministic and enough to
compare two versions of the loop side by side.

    python benchmarks/ml/offline_features.py /tmp/assay-ml-offline
    python benchmarks/ml/bench_loop.py --cache /tmp/assay-ml-offline [--seed 0]
"""

import gzip
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def main() -> None:
    cache = Path(sys.argv[1])
    cache.mkdir(parents=True, exist_ok=True)
    it = pd.read_csv(DATA / "crowd/sentiment_polarity/items.csv", dtype=str, keep_default_na=False)
    X = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True).fit_transform(it["text"])
    v = normalize(TruncatedSVD(256, random_state=0).fit_transform(X)).astype(np.float32)
    np.save(cache / "sentiment_polarity.npy", v)
    (cache / "sentiment_polarity.ids.txt").write_text("\n".join(it["item"]) + "\n")
    with gzip.open(DATA / "images/mnist_5k/mnist_5k.csv.gz", "rt") as fh:
        rows = [[int(x) for x in line.split(",")] for line in fh]
    pixels = np.asarray(rows, np.float32)[:, :784] / 255.0
    v = normalize(PCA(64, random_state=0).fit_transform(pixels)).astype(np.float32)
    np.save(cache / "mnist_5k.npy", v)
    # the item names make_mnist_crowd.py gives the digits
    (cache / "mnist_5k.ids.txt").write_text("\n".join(f"d{i:04d}" for i in range(len(rows))) + "\n")
    print(f"features in {cache}")


if __name__ == "__main__":
    main()
