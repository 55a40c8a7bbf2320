"""benchmarks/ml/bench_mining.py --vectors: other features (e.g. the image
embedder's) replace the pixel PCA row for row, L2-normalised."""

import importlib.util
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_mining", ROOT / "benchmarks/ml/bench_mining.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_vectors_replace_the_pca_row_for_row(tmp_path):
    bench = _bench()
    rng = np.random.default_rng(0)
    given = rng.normal(size=(5000, 7)).astype(np.float32) * rng.uniform(0.5, 3, size=(5000, 1)).astype(np.float32)
    np.save(tmp_path / "given.npy", given)
    out = tmp_path / "out"
    out.mkdir()
    f, ids, truth = bench.features(out, tmp_path / "given.npy")
    v = np.load(f)
    assert v.shape == (5000, 7)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-5)
    # same direction as the row given, in the same order
    cos = (v * given).sum(axis=1) / np.linalg.norm(given, axis=1)
    np.testing.assert_allclose(cos, 1.0, rtol=1e-5)
    assert ids.read_text().split()[:2] == ["d0000", "d0001"]
    assert len(truth.read_text().splitlines()) == 5001
    pca, _, _ = bench.features(tmp_path, None)
    assert np.load(pca).shape == (5000, 64)
