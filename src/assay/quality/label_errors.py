"""Probable label errors: which labelled items most likely carry a wrong label.

Two situations, pure numpy functions over arrays (no database):

- **one given label per item** and a classifier's out-of-fold probabilities
  ``pred_probs`` (N, K): :func:`find_label_errors`, confident learning
  (Northcutt et al., JAIR 2021) written here from the paper's definitions.
  Each class ``j`` gets a threshold ``t_j``, the mean probability of ``j``
  over the items given ``j`` (what the model says about a typical ``j``).
  An item given ``i`` is *confidently* of class ``j`` when ``p_j >= t_j``
  (the most probable such ``j``); counting those pairs gives the confident
  joint ``C[i, j]``, rescaled so that each row holds the items given ``i``.
  Its off-diagonal is the estimated number of errors of each kind, and the
  items flagged are, for every ``(i, j)``, the ``C[i, j]`` items given ``i``
  with the largest margin ``p_j - p_i`` (the *prune by noise rate* rule).
  Nothing is tuned to a data set: the thresholds and counts come from the
  probabilities themselves.
- **several people's answers per item** plus the model's probabilities:
  :func:`crowd_label_errors` takes the posterior of the consensus label
  from :func:`assay.quality.crowd_with_model` (Dawid-Skene with the model's
  prediction as each item's prior, its weight learned on held-out answers);
  ``1 - posterior`` is the chance that the consensus is wrong.

Both rank items by a *label quality* score in [0, 1], low = probably wrong::

    from assay.quality.label_errors import find_label_errors
    res = find_label_errors(given, oof_proba)
    res.order[:20], res.is_error, res.quality
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assay.errors import InvalidInput

#: how an item is flagged: the confident-learning rules
RULES = ("noise_rate", "by_class", "both", "confident_joint", "argmax")


@dataclass(frozen=True)
class LabelErrors:
    """What :func:`find_label_errors` found; arrays over items follow ``labels``."""

    #: (N,) True where the given label is probably wrong
    is_error: np.ndarray
    #: (N,) label quality in [0, 1]: ``(1 + p_given - max_other) / 2`` (low = probably wrong)
    quality: np.ndarray
    #: (N,) item indices, the most probably wrong first (lowest quality)
    order: np.ndarray
    #: (N,) the class the model finds most probable for each item
    suggested: np.ndarray
    #: (K,) per-class thresholds: mean ``p_j`` over the items given ``j``
    thresholds: np.ndarray
    #: (K, K) calibrated confident joint: row = given class, column = probable true class
    confident_joint: np.ndarray

    @property
    def n_estimated(self) -> int:
        """How many wrong labels the confident joint estimates (its off-diagonal)."""
        cj = self.confident_joint
        return int(round(float(cj.sum() - np.trace(cj))))


def _check(labels, pred_probs) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels)
    pp = np.asarray(pred_probs, float)
    if pp.ndim != 2 or pp.shape[1] < 2:
        raise InvalidInput("pred_probs must be an (n_items, n_classes) array with at least 2 classes")
    if y.ndim != 1 or y.size != pp.shape[0]:
        raise InvalidInput(f"labels must be one class code per row of pred_probs ({pp.shape[0]}), got {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise InvalidInput("labels must be integer class codes")
    y = y.astype(np.intp)
    k = pp.shape[1]
    if y.size and (y.min() < 0 or y.max() >= k):
        raise InvalidInput(f"labels must be class codes 0..{k - 1}")
    if not np.isfinite(pp).all() or (pp < 0).any() or not np.allclose(pp.sum(axis=1), 1.0, atol=1e-4):
        raise InvalidInput("pred_probs rows must be finite probabilities that sum to 1")
    return y, pp


def label_quality(labels, pred_probs) -> np.ndarray:
    """Normalised margin: ``(1 + p[given] - max over other classes p) / 2`` in [0, 1].
    Below 0.5: the model prefers another class to the given one."""
    y, pp = _check(labels, pred_probs)
    own = pp[np.arange(y.size), y]
    other = pp.copy()
    other[np.arange(y.size), y] = -np.inf
    return (1.0 + own - other.max(axis=1)) / 2.0


def class_thresholds(labels, pred_probs) -> np.ndarray:
    """``t_j``: the mean of ``p_j`` over the items given ``j`` (a class nobody
    was given: 1.0, so nothing is confidently of it)."""
    y, pp = _check(labels, pred_probs)
    k = pp.shape[1]
    n = np.bincount(y, minlength=k)
    s = np.zeros(k)
    np.add.at(s, y, pp[np.arange(y.size), y])
    return np.where(n > 0, s / np.maximum(n, 1), 1.0)


def _confident_class(pp: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per item, the most probable class among those at or above their
    threshold; -1 where none is."""
    above = pp >= t[None, :] - 1e-12
    masked = np.where(above, pp, -np.inf)
    best = masked.argmax(axis=1)
    return np.where(above.any(axis=1), best, -1)


def confident_joint(labels, pred_probs, *, calibrate: bool = True) -> np.ndarray:
    """``C[i, j]``: items given ``i`` that are confidently of class ``j``.

    Calibrated (default): each row rescaled to the number of items given
    ``i`` (the items confidently of no class are spread like the rest), then
    the whole matrix to ``N``."""
    y, pp = _check(labels, pred_probs)
    k = pp.shape[1]
    conf = _confident_class(pp, class_thresholds(y, pp))
    ok = conf >= 0
    cj = np.zeros((k, k))
    np.add.at(cj, (y[ok], conf[ok]), 1.0)
    if not calibrate:
        return cj
    given = np.bincount(y, minlength=k).astype(float)
    rows = cj.sum(axis=1)
    # a given class with no confident item: take its labels as right
    cj = np.where(rows[:, None] > 0, cj / np.maximum(rows, 1)[:, None] * given[:, None], np.diag(given))
    return cj * (y.size / max(cj.sum(), 1.0))


def _by_noise_rate(y, pp, cj) -> np.ndarray:
    """For each off-diagonal ``(i, j)``: the ``round(C[i, j])`` items given
    ``i`` with the largest ``p_j - p_i``. At least one item per given class
    stays unflagged."""
    k = pp.shape[1]
    flag = np.zeros(y.size, bool)
    for i in range(k):
        idx = np.flatnonzero(y == i)
        if idx.size <= 1:
            continue
        budget = idx.size - 1
        for j in range(k):
            m = int(round(cj[i, j]))
            if j == i or m <= 0:
                continue
            margin = pp[idx, j] - pp[idx, i]
            m = min(m, budget)
            top = idx[np.argsort(-margin, kind="stable")[:m]]
            flag[top] = True
    return flag


def _by_class(y, pp, cj) -> np.ndarray:
    """For each given class ``i``: the ``round(sum_j!=i C[i, j])`` items given
    ``i`` with the lowest ``p_i``."""
    k = pp.shape[1]
    flag = np.zeros(y.size, bool)
    for i in range(k):
        idx = np.flatnonzero(y == i)
        m = min(int(round(cj[i].sum() - cj[i, i])), max(idx.size - 1, 0))
        if m > 0:
            flag[idx[np.argsort(pp[idx, i], kind="stable")[:m]]] = True
    return flag


def find_label_errors(labels, pred_probs, *, rule: str = "noise_rate") -> LabelErrors:
    """Flag the items whose given label is probably wrong.

    - ``labels`` (N,): the given class code of each item (0..K-1).
    - ``pred_probs`` (N, K): the model's **out-of-fold** probabilities (each
      item predicted by a model that did not train on it; in-sample ones
      agree with the given labels and hide the errors).
    - ``rule``: ``"noise_rate"`` (default; per (given, probable) pair, the
      confident joint's count of items with the largest margin),
      ``"by_class"`` (per given class, its estimated errors with the lowest
      self-confidence), ``"both"`` (flagged by both), ``"confident_joint"``
      (the items counted off the diagonal, uncalibrated), ``"argmax"`` (the
      model's most probable class differs from the given one).
    """
    y, pp = _check(labels, pred_probs)
    if rule not in RULES:
        raise InvalidInput(f"unknown rule {rule!r}; choose one of: {', '.join(RULES)}")
    t = class_thresholds(y, pp)
    cj = confident_joint(y, pp)
    quality = label_quality(y, pp)
    suggested = pp.argmax(axis=1)
    if rule == "noise_rate":
        flag = _by_noise_rate(y, pp, cj)
    elif rule == "by_class":
        flag = _by_class(y, pp, cj)
    elif rule == "both":
        flag = _by_noise_rate(y, pp, cj) & _by_class(y, pp, cj)
    elif rule == "confident_joint":
        conf = _confident_class(pp, t)
        flag = (conf >= 0) & (conf != y)
    else:
        flag = suggested != y
    order = np.argsort(quality, kind="stable")
    return LabelErrors(is_error=flag, quality=quality, order=order, suggested=suggested, thresholds=t,
                       confident_joint=cj)


@dataclass(frozen=True)
class CrowdLabelErrors:
    """What :func:`crowd_label_errors` found; arrays over items follow the
    rows of ``pred_probs``."""

    #: (N,) consensus class (-1: the item has no answer)
    consensus: np.ndarray
    #: (N,) posterior of the consensus class (NaN without answers); low = probably wrong
    quality: np.ndarray
    #: answered items, the most probably wrong consensus first
    order: np.ndarray
    #: (N, K) posterior class probabilities (to score any other label: ``proba[i, label]``)
    proba: np.ndarray


def crowd_label_errors(items, annotators, labels, pred_probs, **fit_args) -> CrowdLabelErrors:
    """How likely each item's consensus label is wrong, from several people's
    answers (long rows ``items, annotators, labels``; ``items`` index the
    rows of ``pred_probs``) and the model's out-of-fold probabilities
    (all-NaN row: no prediction). The consensus and its posterior are
    :func:`assay.quality.crowd_with_model`'s (``fit_args`` go to it); too
    few answers for a fit: majority vote, with the share of votes as quality
    (and as ``proba``)."""
    from assay.quality.crowd_model import crowd_with_model

    pp = np.asarray(pred_probs, float)
    fit = crowd_with_model(items, annotators, labels, pp, **fit_args)
    if fit is None:
        consensus, quality, proba = _vote_share(np.asarray(items, np.intp), np.asarray(labels, np.intp), pp.shape)
    else:
        consensus, quality, proba = fit.consensus_label, fit.consensus_quality, fit.proba
    answered = consensus >= 0
    q = np.where(answered, quality, np.inf)
    order = np.argsort(q, kind="stable")[: int(answered.sum())]
    return CrowdLabelErrors(consensus=consensus, quality=quality, order=order, proba=proba)


def _vote_share(items: np.ndarray, labels: np.ndarray, shape):
    n, k = shape
    votes = np.zeros((n, k))
    np.add.at(votes, (items, labels), 1.0)
    tot = votes.sum(axis=1)
    label = np.where(tot > 0, votes.argmax(axis=1), -1)
    quality = np.where(tot > 0, votes.max(axis=1) / np.maximum(tot, 1), np.nan)
    proba = np.where(tot[:, None] > 0, votes / np.maximum(tot, 1)[:, None], 1.0 / k)
    return label, quality, proba
