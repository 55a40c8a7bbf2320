"""2-D projection of item embeddings for the embedding map. Pure numpy
(plus umap-learn for ``method="umap"``), no database.

:func:`project` maps ``(n, d)`` vectors to ``(n, 2)`` float32 coordinates
scaled into ``[-1, 1]`` (the largest absolute coordinate is 1, the centre
is 0), so a viewer can draw them without looking at the range first.

- ``"umap"``: UMAP with the cosine metric and a fixed seed (same input →
  same output). Above ``FIT_AT_MOST`` points the model is fitted on a
  seeded sample of that many and the rest are placed with
  ``transform`` in blocks of ``BLOCK``, which bounds memory and time (the
  neighbour graph of a full fit grows with ``n``). Needs the ``curation``
  extra (``pip install 'assay[curation]'``); a missing umap is an error
  naming it, never a silent fallback.
- ``"pca"``: the two leading principal components of the L2-normalised
  vectors (exact, fast, no extra); chosen explicitly, never as a fallback.
"""

from __future__ import annotations

import numpy as np

from assay.errors import InvalidInput

METHODS = ("umap", "pca")
FIT_AT_MOST = 200_000
BLOCK = 50_000
SEED = 42


def _normalize(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def _scale(xy: np.ndarray) -> np.ndarray:
    xy = np.asarray(xy, dtype=np.float64)
    xy = xy - (xy.max(axis=0) + xy.min(axis=0)) / 2
    m = float(np.abs(xy).max()) if xy.size else 0.0
    return (xy / m if m > 0 else xy).astype(np.float32)


def _pca(v: np.ndarray) -> np.ndarray:
    v = _normalize(v.astype(np.float64))
    v = v - v.mean(axis=0)
    # the covariance (d × d) is small next to the data: eigenvectors of it
    cov = v.T @ v
    w, vec = np.linalg.eigh(cov)
    top = vec[:, np.argsort(w)[::-1][:2]]
    # a fixed sign per component (eigh's sign is arbitrary): the largest
    # loading positive, so the picture does not flip between runs
    top = top * np.sign(top[np.abs(top).argmax(axis=0), [0, 1]])
    return v @ top


def _umap(v: np.ndarray, n_neighbors: int, n_jobs: int) -> np.ndarray:
    try:
        import umap  # noqa: PLC0415 (heavy, optional)
    except ImportError as e:
        raise InvalidInput(
            f"the umap projection needs the curation extra: pip install 'assay[curation]' (missing: {e.name})"
        ) from None
    n = v.shape[0]
    rng = np.random.default_rng(SEED)
    fit_idx = np.sort(rng.choice(n, FIT_AT_MOST, replace=False)) if n > FIT_AT_MOST else np.arange(n)
    # random_state makes UMAP single-threaded; n_jobs > 1 trades the exact
    # repeatability for speed (the caller chooses)
    kw = {"random_state": SEED, "n_jobs": 1} if n_jobs == 1 else {"n_jobs": n_jobs}
    model = umap.UMAP(n_components=2, metric="cosine", n_neighbors=min(n_neighbors, len(fit_idx) - 1), **kw)
    out = np.empty((n, 2), dtype=np.float32)
    out[fit_idx] = model.fit_transform(v[fit_idx])
    if len(fit_idx) < n:
        rest = np.setdiff1d(np.arange(n), fit_idx)
        for s in range(0, len(rest), BLOCK):
            part = rest[s : s + BLOCK]
            out[part] = model.transform(v[part])
    return out


def project(vectors: np.ndarray, method: str = "umap", *, n_neighbors: int = 15, n_jobs: int = 1) -> np.ndarray:
    """``(n, 2)`` float32 coordinates in ``[-1, 1]`` for ``(n, d)`` vectors."""
    if method not in METHODS:
        raise InvalidInput(f"unknown projection method {method!r} (one of {', '.join(METHODS)})")
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2:
        raise InvalidInput("vectors must be a 2-D array (n, d)")
    n = v.shape[0]
    if n == 0:
        return np.zeros((0, 2), dtype=np.float32)
    if n < 4 or v.shape[1] < 2:
        # too few points for a neighbour graph (or one dimension): PCA-like layout
        xy = _pca(v) if v.shape[1] >= 2 else np.column_stack([v[:, 0], np.zeros(n)])
        return _scale(xy)
    xy = _pca(v) if method == "pca" else _umap(v, n_neighbors, n_jobs)
    return _scale(xy)
