"""A confidence target that matches a k-vote majority's accuracy.

Teams that do not know which confidence to ask for usually know what they do
today: every item answered by three people, majority vote. ``target="match"``
asks adaptive redundancy for *that* accuracy, on average, at the least cost:
the per-item stopping target is the lowest one at which the labels the
project would end with are predicted to be as accurate as a k-vote majority
from the same crowd.

Both sides are predicted under the same crowd model (each annotator's
confusion matrix, annotators drawn as often as they answer, the class prior),
by Monte Carlo, so a bias of that model weighs on both alike:

- ``baseline_accuracy``: draw a true class from the prior, k answers, the
  majority (ties at random);
- ``predicted_accuracy``: from every item's current posterior (answers so
  far, and the model's prediction where the ML loop gives one), draw its true
  class from that posterior and keep drawing answers while the item is below
  ``tau`` and under ``max_answers``; then the share of items whose final label
  is the drawn truth. Items already finished keep their label (their accuracy
  is their posterior's).

Per-item thresholds are what spend answers where they buy the most accuracy
(an item that is sure early stops early), so the mean-accuracy goal becomes
the threshold :func:`matching_target` returns.
"""

from __future__ import annotations

import numpy as np

from assay.errors import InvalidInput

#: candidate targets, tested from the highest down
GRID = np.round(np.r_[np.arange(0.99, 0.69, -0.01), np.arange(0.68, 0.49, -0.02)], 4)


def _check(confusions, weights):
    conf = np.asarray(confusions, float)
    w = np.asarray(weights, float)
    if conf.ndim != 3 or conf.shape[1] != conf.shape[2] or w.shape != (conf.shape[0],) or (w < 0).any() \
            or w.sum() <= 0:
        raise InvalidInput("confusions must be (W, K, K) and weights (W,) non-negative with a positive sum")
    return conf, w / w.sum()


def _answers(rng, conf, w, truth):
    """One answer per item: an annotator drawn by ``w``, a label by their confusion row."""
    who = rng.choice(len(w), size=truth.size, p=w)
    rows = conf[who, truth]  # (n, K)
    u = rng.random(truth.size)[:, None]
    lab = (rows.cumsum(axis=1) < u).sum(axis=1)
    return who, np.minimum(lab, conf.shape[1] - 1)


def baseline_accuracy(prior, confusions, weights, *, k: int = 3, n: int = 20000, seed: int = 0) -> float:
    """Predicted accuracy of a ``k``-vote majority (ties broken at random)."""
    conf, w = _check(confusions, weights)
    K = conf.shape[1]
    rng = np.random.default_rng(seed)
    p = np.asarray(prior, float)
    truth = rng.choice(K, size=n, p=p / p.sum())
    votes = np.zeros((n, K))
    for _ in range(k):
        _, lab = _answers(rng, conf, w, truth)
        votes[np.arange(n), lab] += 1
    top = votes == votes.max(axis=1, keepdims=True)
    pick = np.argmax(top * rng.random((n, K)), axis=1)  # a random one of the tied
    return float((pick == truth).mean())


def predicted_accuracy(log_post, answers, open_, confusions, weights, *, tau: float, max_answers: int,
                       seed: int = 0, min_draws: int = 20000) -> float:
    """Predicted accuracy of the final labels if open items stop at ``tau``.

    ``log_post`` (n, K): each item's current unnormalised log posterior;
    ``answers`` (n,): answers it has; ``open_`` (n,): whether it may still get
    more (False: finished — resolved, auto-labeled, sent to review). Items
    are repeated until there are ``min_draws`` of them (Monte Carlo noise)."""
    conf, w = _check(confusions, weights)
    lp = np.array(log_post, float)
    reps = max(1, -(-min_draws // max(lp.shape[0], 1)))  # small projects: repeat items, less noise
    lp = np.tile(lp, (reps, 1))
    answers = np.tile(np.asarray(answers), reps)
    open_ = np.tile(np.asarray(open_, bool), reps)
    n, K = lp.shape
    rng = np.random.default_rng(seed)
    post = np.exp(lp - lp.max(axis=1, keepdims=True))
    post /= post.sum(axis=1, keepdims=True)
    truth = (post.cumsum(axis=1) < rng.random(n)[:, None]).sum(axis=1).clip(0, K - 1)
    got = np.asarray(answers, int).copy()
    going = np.asarray(open_, bool).copy()
    logc = np.log(np.maximum(conf, 1e-12))
    for _ in range(max(int(max_answers), 1)):
        p = np.exp(lp - lp.max(axis=1, keepdims=True))
        going &= (p.max(axis=1) / p.sum(axis=1) < tau) & (got < max_answers)
        idx = np.flatnonzero(going)
        if idx.size == 0:
            break
        who, lab = _answers(rng, conf, w, truth[idx])
        lp[idx] += logc[who, :, lab]
        got[idx] += 1
    return float((lp.argmax(axis=1) == truth).mean())


def matching_target(log_post, answers, open_, prior, confusions, weights, *, max_answers: int, k: int = 3,
                    seed: int = 0, margin: float = 0.0) -> tuple[float, float, float]:
    """The lowest target in :data:`GRID` (tested from the top, stopping at the
    first that falls short) whose predicted accuracy reaches the ``k``-vote
    majority's (plus ``margin``). Returns (target, predicted accuracy at it,
    predicted baseline accuracy); the top of the grid when none reaches it."""
    base = baseline_accuracy(prior, confusions, weights, k=k, seed=seed)
    best, at = float(GRID[0]), None
    for tau in GRID:
        acc = predicted_accuracy(log_post, answers, open_, confusions, weights, tau=float(tau),
                                 max_answers=max_answers, seed=seed)
        if acc < base + margin:
            break
        best, at = float(tau), acc
    return best, (at if at is not None else float("nan")), base
