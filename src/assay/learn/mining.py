"""Needle mining: find the rest of a rare case from a few examples, with as
few human labels as possible. Pure numpy + scikit-learn, no database.

The loop (:func:`mine`): score every unlabeled item, show people the top
``batch``, record their yes/no, re-rank, repeat until ``budget`` labels are
spent, ``goal`` positives are found or the pool is empty.

Choices, and why (none is tuned to a benchmark):

- **Two signals.** (a) max cosine similarity to the confirmed positives
  (seeds and every positive found so far): needs no negatives, so it works
  from the first round, and it follows every mode of the rare case that
  has one confirmed example (a rare class is often several small clusters).
  (b) a logistic regression on the labels so far (positives vs. labeled
  negatives): it learns which directions separate the case from the
  near misses people rejected, which similarity alone cannot (it keeps
  proposing the neighbours of a positive that are wrong). Before any
  negative (or with only one class labeled) the model cannot be fitted
  and (a) is used alone.
- **Blend by rank, equal weights.** A probability and a cosine are on
  different scales; averaging their ranks (percentiles among the
  unlabeled items) makes them comparable without a weight to tune, and we
  have no prior that either is better, so each counts half.
- **Class-balanced regression, default C=1.** Positives are a few percent
  of the labels; ``class_weight="balanced"`` keeps the model from
  predicting "no" everywhere. C=1 is scikit-learn's default: no tuning.
- **Top of the ranking, no exploration.** The goal is recall of one known
  case, not a good model of everything; the similarity term already
  spreads attention over every confirmed mode. Items never near any
  confirmed positive are left, the stated limit of example-driven search.
- **Small batches (default 10).** Each label changes the ranking; smaller
  batches waste fewer labels on a stale ranking, while 10 is a page of
  items a person reviews at once. Refits are cheap at this scale.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from assay.errors import InvalidInput

BATCH = 10  # items shown per round (one page)


@dataclass
class MiningResult:
    """``order``: row indices in the order people labeled them; ``labels``:
    their answers (True = the rare case); ``curve``: one dict per round,
    ``{"labels": labels used so far, "found": positives found so far}``
    (seeds not counted in either)."""

    order: list[int] = field(default_factory=list)
    labels: list[bool] = field(default_factory=list)
    curve: list[dict] = field(default_factory=list)

    @property
    def found(self) -> int:
        return int(sum(self.labels))


def _ranks(v: np.ndarray) -> np.ndarray:
    """Percentile ranks in [0, 1] (ties share the mean rank)."""
    order = np.argsort(v, kind="stable")
    r = np.empty(len(v), np.float64)
    r[order] = np.arange(len(v), dtype=np.float64)
    # equal values get their mean rank, so a constant signal adds nothing
    uniq, inv = np.unique(v, return_inverse=True)
    if len(uniq) < len(v):
        sums = np.bincount(inv, weights=r)
        r = (sums / np.bincount(inv))[inv]
    return r / max(len(v) - 1, 1)


def fit_model(X_pos: np.ndarray, X_neg: np.ndarray):
    """The in-loop model: a class-balanced logistic regression of the
    confirmed positives against the rejected items (None without negatives)."""
    if len(X_neg) == 0:
        return None
    from sklearn.linear_model import LogisticRegression

    y = np.r_[np.ones(len(X_pos)), np.zeros(len(X_neg))]
    return LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000).fit(np.vstack([X_pos, X_neg]), y)


def signals(X_cand: np.ndarray, X_pos: np.ndarray, model) -> tuple[np.ndarray, np.ndarray | None]:
    """For candidate rows (unit vectors): max cosine similarity to the
    positives, and the model's probability (None without a model). Chunks
    of candidates can be scored apart and joined before :func:`blend`."""
    sim = (X_cand @ X_pos.T).max(axis=1)
    return sim, None if model is None else model.predict_proba(X_cand)[:, 1]


def blend(sim: np.ndarray, prob: np.ndarray | None) -> np.ndarray:
    """The look-first score: the two signals' ranks averaged (similarity alone without a model)."""
    return sim if prob is None else 0.5 * _ranks(sim) + 0.5 * _ranks(prob)


def scores(X: np.ndarray, positives: Sequence[int], negatives: Sequence[int], candidates: np.ndarray) -> np.ndarray:
    """The blended score of each row in ``candidates`` (higher = look first)."""
    model = fit_model(X[list(positives)], X[list(negatives)])
    return blend(*signals(X[candidates], X[list(positives)], model))


def mine(X: np.ndarray, seeds: Sequence[int], oracle: Callable[[list[int]], Sequence[bool]], budget: int,
         batch: int = BATCH, goal: int | None = None) -> MiningResult:
    """Search -> label -> re-rank from ``seeds`` (row indices of known
    examples of the rare case) over ``X`` (one row per item; rows are
    unit-normalised here). ``oracle(rows)`` returns people's yes/no for
    those rows. Stops after ``budget`` labels, when ``goal`` positives
    (beyond the seeds) are found, or when every item is labeled."""
    X = np.asarray(X, np.float64)
    if X.ndim != 2 or len(X) == 0:
        raise InvalidInput("features must be a non-empty 2-d array (one row per item)")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise InvalidInput("mining needs at least one seed example")
    if any(s < 0 or s >= len(X) for s in seeds):
        raise InvalidInput(f"seed rows must be in 0..{len(X) - 1}")
    if batch < 1 or budget < 0:
        raise InvalidInput("batch must be >= 1 and budget >= 0")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    X = X / np.where(norms == 0, 1.0, norms)
    positives, negatives = list(dict.fromkeys(seeds)), []
    unlabeled = np.ones(len(X), bool)
    unlabeled[positives] = False
    res = MiningResult()
    while len(res.order) < budget and unlabeled.any() and (goal is None or res.found < goal):
        cand = np.flatnonzero(unlabeled)
        s = scores(X, positives, negatives, cand)
        k = min(batch, budget - len(res.order), len(cand))
        top = cand[np.argsort(-s, kind="stable")[:k]].tolist()
        answers = [bool(a) for a in oracle(top)]
        if len(answers) != len(top):
            raise InvalidInput(f"the oracle answered {len(answers)} of {len(top)} items")
        for row, yes in zip(top, answers):
            (positives if yes else negatives).append(row)
            unlabeled[row] = False
        res.order += top
        res.labels += answers
        res.curve.append({"labels": len(res.order), "found": res.found})
    return res


def random_expected_labels(pool: int, rare: int, want: int) -> float:
    """Expected labels for random sampling without replacement from ``pool``
    items holding ``rare`` positives to find ``want`` of them (the negative
    hypergeometric mean: ``want * (pool + 1) / (rare + 1)``)."""
    if want > rare:
        raise InvalidInput(f"cannot find {want} of {rare} rare items")
    return want * (pool + 1) / (rare + 1)
