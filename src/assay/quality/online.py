"""Incremental item posteriors for adaptive redundancy.

Between two full re-fits (Dawid-Skene over all answers) the annotators'
confusion matrices are held fixed. An item's posterior over the true class
is then a product over its answers, so it can be kept as a running sum of
logs and updated in O(K) per answer::

    log_post = log prior + sum over answers (w, l) of log confusion[w][:, l]

Pure functions over plain lists / numpy arrays; no database.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

TINY = 1e-12


def default_confusion(n_classes: int, alpha: float = 1.0, alpha_diag: float = 1.0) -> list[list[float]]:
    """The confusion matrix assumed for an annotator nobody has measured yet.

    The mean of :class:`~assay.quality.DawidSkene`'s own Dirichlet prior
    (``alpha`` in every cell plus ``alpha_diag`` on the diagonal): right with
    probability (alpha + alpha_diag) / (K·alpha + alpha_diag) — 2/3 for two
    classes — errors spread evenly.
    """
    k = int(n_classes)
    row_sum = k * alpha + alpha_diag
    off = alpha / row_sum
    on = (alpha + alpha_diag) / row_sum
    return [[on if i == j else off for j in range(k)] for i in range(k)]


def initial_log_post(prior: Sequence[float] | None, n_classes: int) -> list[float]:
    """The log posterior of an item without answers: the class prior (uniform if None)."""
    if prior is None:
        return [0.0] * n_classes
    return [math.log(max(float(p), TINY)) for p in prior]


def update(log_post: Sequence[float], confusion: Sequence[Sequence[float]], label: int) -> list[float]:
    """Add one answer ``label`` by an annotator with ``confusion`` (rows = true class)."""
    return [lp + math.log(max(float(row[label]), TINY)) for lp, row in zip(log_post, confusion)]


def normalise(log_post: Sequence[float]) -> list[float]:
    """Probabilities from an unnormalised log posterior."""
    m = max(log_post)
    e = [math.exp(x - m) for x in log_post]
    s = sum(e)
    return [x / s for x in e]


def decision(log_post: Sequence[float]) -> tuple[int, float]:
    """``(label, confidence)``: the argmax class (lowest code on ties) and its probability."""
    p = normalise(log_post)
    best = max(range(len(p)), key=lambda k: (p[k], -k))
    return best, p[best]


def posterior(labels: Sequence[int], confusions: Sequence[Sequence[Sequence[float]]],
              prior: Sequence[float] | None, n_classes: int) -> np.ndarray:
    """From scratch: the posterior of one item given all its answers at once.

    ``labels[i]`` was given by an annotator with ``confusions[i]``. Equals
    folding :func:`update` over the answers in any order (the reference the
    incremental path is tested against).
    """
    lp = np.array(initial_log_post(prior, n_classes), dtype=float)
    if len(labels):
        c = np.asarray(confusions, dtype=float)  # (n, K, K)
        lab = np.asarray(labels, dtype=np.intp)
        lp = lp + np.log(np.maximum(c[np.arange(len(lab)), :, lab], TINY)).sum(axis=0)
    lp -= lp.max()
    p = np.exp(lp)
    return p / p.sum()


def next_step(confidence: float, answers: int, needed: int, *, target: float,
              max_answers: int) -> str:
    """What adaptive redundancy does after an answer.

    ``"resolved"``: confidence reached ``target`` (stop asking; unleased open
    slots are withdrawn). ``"review"``: ``max_answers`` answers and still
    below target (to the reviewer queue). ``"more"``: below target, every
    planned answer is in, room left: ask one more annotator. ``"wait"``:
    below target but answers already planned (open slots or leases).
    """
    if confidence >= target:
        return "resolved"
    if answers >= max_answers:
        return "review"
    if answers >= needed:
        return "more"
    return "wait"


def crowd_confusion(confusion: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The answer-weighted mean confusion matrix of a fitted crowd: what a
    new annotator is assumed to be until a re-fit has measured them."""
    w = np.asarray(weights, dtype=float)
    if confusion.shape[0] == 0 or w.sum() <= 0:
        k = confusion.shape[-1]
        return np.asarray(default_confusion(k))
    m = np.tensordot(w / w.sum(), confusion, axes=1)
    return m / m.sum(axis=1, keepdims=True)
