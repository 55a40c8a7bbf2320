"""assay.learn.projection: vectors -> 2-D map coordinates."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from assay.errors import InvalidInput
from assay.learn import projection
from assay.learn.projection import project


def clusters(n_per: int, d: int = 32, k: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 5
    v = np.concatenate([c + rng.normal(size=(n_per, d)) * 0.3 for c in centres]).astype(np.float32)
    return v, np.repeat(np.arange(k), n_per)


def separated(xy: np.ndarray, labels: np.ndarray) -> bool:
    """Every point is nearer its own cluster's centroid than any other's."""
    cent = np.stack([xy[labels == c].mean(axis=0) for c in np.unique(labels)])
    d = np.linalg.norm(xy[:, None, :] - cent[None], axis=2)
    return bool((d.argmin(axis=1) == labels).all())


@pytest.mark.parametrize("method", ["pca", "umap"])
def test_shape_range_determinism_and_separation(method):
    v, labels = clusters(60)
    a = project(v, method)
    assert a.shape == (180, 2) and a.dtype == np.float32
    assert np.abs(a).max() == pytest.approx(1.0) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, project(v, method))
    assert separated(a, labels)


def test_large_input_is_fitted_on_a_sample_and_the_rest_transformed(monkeypatch):
    monkeypatch.setattr(projection, "FIT_AT_MOST", 120)
    monkeypatch.setattr(projection, "BLOCK", 50)
    v, labels = clusters(100)
    xy = project(v, "umap")
    assert xy.shape == (300, 2) and np.isfinite(xy).all()
    assert separated(xy, labels)


def test_tiny_empty_and_bad_inputs():
    assert project(np.zeros((0, 8))).shape == (0, 2)
    assert project(np.eye(3, 8)).shape == (3, 2)
    with pytest.raises(InvalidInput, match="method"):
        project(np.eye(5), "tsne")
    with pytest.raises(InvalidInput, match="2-D"):
        project(np.zeros(5))


def test_missing_umap_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)
    with pytest.raises(InvalidInput, match=r"assay\[curation\]"):
        project(clusters(10)[0], "umap")
