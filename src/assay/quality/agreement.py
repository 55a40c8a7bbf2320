"""Inter-annotator agreement: Krippendorff's alpha for nominal labels.

Pure numpy over the same long, integer-coded answers the aggregators take:
``(items[n], workers[n], labels[n])``.
"""

from __future__ import annotations

import numpy as np

from assay.errors import InvalidInput
from assay.quality._answers import _as_codes


def coincidence_matrix(items, workers, labels, n_classes: int | None = None) -> np.ndarray:
    """Krippendorff's (K, K) coincidence matrix ``o``.

    ``o[c, k] = sum over items u of (pairs of answers (c, k) in u) / (m_u - 1)``
    where ``m_u`` is the item's number of answers; ordered pairs of
    *different* answers, so ``o`` is symmetric. Items with fewer than two
    answers contribute nothing. Duplicate (item, worker) rows: the last one
    counts (a worker's latest answer), as in the aggregators.
    """
    it = _as_codes("items", items)
    wk = _as_codes("workers", workers)
    lab = _as_codes("labels", labels)
    if not (it.size == wk.size == lab.size):
        raise InvalidInput(f"items, workers and labels differ in length ({it.size}, {wk.size}, {lab.size})")
    k = int(lab.max()) + 1 if lab.size else 0
    if n_classes is not None:
        if int(n_classes) < k:
            raise InvalidInput(f"n_classes={n_classes} but the labels go up to {k - 1}")
        k = int(n_classes)
    if it.size == 0 or k == 0:
        return np.zeros((k, k))
    # keep the last row of each (item, worker)
    key = it.astype(np.int64) * (int(wk.max()) + 1) + wk
    _, last_rev = np.unique(key[::-1], return_index=True)
    keep = it.size - 1 - last_rev
    it, lab = it[keep], lab[keep]
    _, icode = np.unique(it, return_inverse=True)
    n_units = int(icode.max()) + 1
    counts = np.bincount(icode * k + lab, minlength=n_units * k).reshape(n_units, k).astype(float)
    m = counts.sum(axis=1)
    pairable = m >= 2
    counts, m = counts[pairable], m[pairable]
    if not counts.size:
        return np.zeros((k, k))
    w = counts / (m - 1.0)[:, None]
    o = w.T @ counts  # sum_u v_u v_u^T / (m_u - 1)
    o -= np.diag(w.sum(axis=0))  # minus the diagonal v_u / (m_u - 1): a value is no pair with itself
    return o


def krippendorff_alpha(items, workers, labels, n_classes: int | None = None) -> float:
    """Krippendorff's alpha for nominal data.

    ``alpha = 1 - D_o / D_e`` with the observed disagreement
    ``D_o = sum_{c != k} o[c, k] / n`` and the expected one
    ``D_e = sum_{c != k} n_c n_k / (n (n - 1))``, where ``o`` is the
    coincidence matrix (:func:`coincidence_matrix`), ``n_c`` its row sums and
    ``n`` the number of pairable answers. Items with fewer than two answers
    do not count; missing answers are fine (any number of workers per item).

    1 is perfect agreement, 0 agreement at chance level, below 0 systematic
    disagreement.

    Returns ``nan`` when alpha is undefined: no item has two or more answers
    (nothing pairable), or every pairable answer is the same class
    (``D_e = 0``, no variation to agree on).
    """
    o = coincidence_matrix(items, workers, labels, n_classes)
    nc = o.sum(axis=1)
    n = float(nc.sum())
    if n < 2:
        return float("nan")
    observed = float(o.sum() - np.trace(o))
    expected = float(n * n - np.sum(nc * nc))  # sum_{c != k} n_c n_k
    if expected <= 0:
        return float("nan")
    return 1.0 - (n - 1.0) * observed / expected


def wilson_interval(p: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95 % by default) of a proportion ``p``
    estimated from ``n`` observations; ``(0, 1)`` when ``n`` is 0."""
    if n <= 0:
        return 0.0, 1.0
    p = min(max(float(p), 0.0), 1.0)
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))
