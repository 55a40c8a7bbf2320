"""Active learning: which items people should label next.

A batch mixes three things: the model's most *uncertain* items (smallest
margin between its top two classes), spread out over the embedding space
(greedy k-center among the uncertain candidates, so the batch is not forty
near-copies of one confusing case), and a small *random* share (keeps the
labeled set representative, which calibration and the auto-label threshold
rely on). Before any label exists (cold start) the batch is a k-center
cover of the pool: diverse from the first item.
"""

from __future__ import annotations

import numpy as np


def margin_uncertainty(proba: np.ndarray) -> np.ndarray:
    """1 − (p_top1 − p_top2): 1 = a coin flip, 0 = certain."""
    part = np.partition(proba, -2, axis=1)
    return 1.0 - (part[:, -1] - part[:, -2])


def entropy_uncertainty(proba: np.ndarray) -> np.ndarray:
    p = np.clip(proba, 1e-12, 1)
    return -(p * np.log(p)).sum(axis=1) / np.log(proba.shape[1])


def kcenter_greedy(X: np.ndarray, k: int, *, anchors: np.ndarray | None = None,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """``k`` row indices of ``X``, each the farthest (Euclidean) from the
    anchors and the rows already picked. Without anchors the first is random."""
    n = X.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, np.intp)
    rng = rng or np.random.default_rng(0)
    sq = (X * X).sum(axis=1)
    if anchors is not None and len(anchors):
        A = np.asarray(anchors, np.float32)
        dist = np.full(n, np.inf)
        for lo in range(0, A.shape[0], 2048):
            a = A[lo:lo + 2048]
            d = sq[:, None] - 2 * X @ a.T + (a * a).sum(axis=1)[None, :]
            dist = np.minimum(dist, d.min(axis=1))
        first = int(np.argmax(dist))
    else:
        dist = np.full(n, np.inf)
        first = int(rng.integers(n))
    picked = [first]
    dist = np.minimum(dist, sq - 2 * X @ X[first] + sq[first])
    for _ in range(k - 1):
        nxt = int(np.argmax(dist))
        picked.append(nxt)
        dist = np.minimum(dist, sq - 2 * X @ X[nxt] + sq[nxt])
    return np.asarray(picked, np.intp)


def select_batch(X: np.ndarray, proba: np.ndarray | None, labeled: np.ndarray, k: int, *,
                 random_share: float = 0.1, pool_factor: int = 10, max_cold_pool: int = 20000,
                 rng: np.random.Generator | None = None) -> np.ndarray:
    """Indices (into ``X``) of up to ``k`` unlabeled items to label next.

    ``labeled``: (n,) bool. ``proba``: the model's probabilities for every
    row, or None before there is a model (cold start)."""
    rng = rng or np.random.default_rng(0)
    pool = np.flatnonzero(~np.asarray(labeled, bool))
    if pool.size == 0 or k <= 0:
        return np.zeros(0, np.intp)
    k = min(k, pool.size)
    n_random = int(round(k * random_share)) if proba is not None else 0
    chosen: list[int] = []
    if proba is None:
        cand = pool if pool.size <= max_cold_pool else rng.choice(pool, max_cold_pool, replace=False)
        anchors = X[np.asarray(labeled, bool)]
        chosen = cand[kcenter_greedy(X[cand], k, anchors=anchors, rng=rng)].tolist()
    else:
        n_unc = k - n_random
        u = margin_uncertainty(proba[pool])
        top = pool[np.argsort(-u, kind="stable")[: max(n_unc * pool_factor, n_unc)]]
        anchors = X[np.asarray(labeled, bool)]
        if anchors.shape[0] > 5000:
            anchors = anchors[rng.choice(anchors.shape[0], 5000, replace=False)]
        chosen = top[kcenter_greedy(X[top], n_unc, anchors=anchors, rng=rng)].tolist()
        rest = np.setdiff1d(pool, chosen, assume_unique=False)
        if n_random and rest.size:
            chosen += rng.choice(rest, min(n_random, rest.size), replace=False).tolist()
    return np.asarray(chosen, np.intp)
