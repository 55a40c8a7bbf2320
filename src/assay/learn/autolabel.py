"""Auto-labeling with a precision guarantee, and audits that keep checking it.

A threshold on the model's confidence is chosen on held-out items whose
true label people verified, so that the items above it are right at least
``target`` of the time *with confidence* 1 − ``alpha``: the one-sided
Clopper-Pearson lower bound of their accuracy must reach the target.

Thresholds are tested in a fixed sequence, from the most confident down,
stopping at the first that fails (fixed-sequence testing: each test at level
alpha, no correction needed, the family-wise error stays at alpha). The
threshold returned is the lowest one that passed.

Audits: a random share of auto-labeled items still goes to people. If their
answers show, with confidence, that the auto-labels are below the target
(the Clopper-Pearson *upper* bound of audited accuracy < target), the
threshold is raised (chosen again with the audits added to the held-out
data) or, if no threshold passes, auto-labeling stops.
"""

from __future__ import annotations

import numpy as np

from assay.errors import InvalidInput


def clopper_pearson(k: int | np.ndarray, n: int | np.ndarray, alpha: float = 0.05, side: str = "lower"):
    """One-sided Clopper-Pearson bound of a binomial proportion (k of n)."""
    from scipy.stats import beta

    k = np.asarray(k, float)
    n = np.asarray(n, float)
    if side == "lower":
        return np.where(k > 0, beta.ppf(alpha, k, n - k + 1), 0.0)
    return np.where(k < n, beta.ppf(1 - alpha, k + 1, n - k), 1.0)


def first_test_size(target: float = 0.95, alpha: float = 0.05, min_support: int = 20) -> int:
    """How many held-out items the first (most confident) test of
    :func:`choose_threshold` reads: twice the smallest n with
    ``target**n <= alpha`` (where n of n right just passes), at least
    ``min_support``."""
    return max(min_support, 2 * int(np.ceil(np.log(alpha) / np.log(target))))


def choose_threshold(confidence, correct, *, target: float = 0.95, alpha: float = 0.05,
                     min_support: int = 20, step: int | None = None) -> float | None:
    """The lowest confidence threshold whose items (confidence >= it) have a
    Clopper-Pearson lower bound of accuracy >= ``target``; None if none has.

    ``confidence``: the model's confidence on held-out verified items;
    ``correct``: whether its label matched the verified one — or, where the
    verified label is itself uncertain (a crowd's consensus), the posterior
    probability that the model's label is the true one (counts then add up
    as expected numbers of right answers). Candidate
    thresholds are the confidences at every ``step``-th item (default: about
    50 candidates), tested from the top down, starting with the top
    ``2·⌈ln alpha / ln target⌉`` items (at least ``min_support``), where a
    clean record first has a chance to pass."""
    conf = np.asarray(confidence, float)
    ok = np.asarray(correct, float)
    if ((ok < 0) | (ok > 1)).any():
        raise InvalidInput("correct must be booleans or probabilities of being right, in [0, 1]")
    if conf.shape != ok.shape or conf.ndim != 1:
        raise InvalidInput("confidence and correct must be 1-d of the same length")
    if not 0.5 <= target < 1 or not 0 < alpha < 0.5:
        raise InvalidInput("target must be in [0.5, 1) and alpha in (0, 0.5)")
    # The sequence starts where a clean record could pass at all: twice the
    # smallest n with target**n <= alpha (n of n right just passes there).
    start = first_test_size(target, alpha, min_support)
    if conf.size < start:
        return None
    order = np.argsort(-conf, kind="stable")
    c, k = conf[order], np.cumsum(ok[order])
    step = step or max(1, conf.size // 50)
    best = None
    for n in range(start, conf.size + 1, step):
        t = c[n - 1]
        m = int(np.searchsorted(-c, -t, side="right"))  # every item tied at t is in the set
        if clopper_pearson(float(k[m - 1]), m, alpha, "lower") >= target:
            best = float(t)
        else:
            break
    return best


def precision_from_answers(loglik, label, prior, *, tol: float = 1e-8, max_iter: int = 500) -> float:
    """Maximum-likelihood share of items whose ``label`` (a model's, one per
    item) is the true class, from people's answers on them: ``loglik`` is
    (n, K), each class's log-likelihood of an item's answers under the
    annotators' confusion matrices, and ``prior`` (K,) the class prior.

    The true class is the model's with probability pi, otherwise another
    class in proportion to the prior; pi is fitted by EM (the likelihood is
    concave in it). Unlike the mean posterior probability that the label is
    right, this is not pulled towards the class prior when each item has
    only an answer or two: a single agreeing answer from a 70 %-accurate
    annotator among 10 classes leaves that posterior at about 0.7 even when
    the model is always right."""
    ll = np.asarray(loglik, float)
    lab = np.asarray(label, np.intp)
    pr = np.asarray(prior, float)
    if ll.ndim != 2 or lab.shape != (ll.shape[0],) or pr.shape != (ll.shape[1],):
        raise InvalidInput("loglik must be (n, K), label (n,) and prior (K,)")
    if ll.shape[0] == 0:
        raise InvalidInput("no items to estimate a precision on")
    lik = np.exp(ll - ll.max(axis=1, keepdims=True))
    rows = np.arange(ll.shape[0])
    a = lik[rows, lab]
    other = pr[None, :] * lik
    other[rows, lab] = 0.0
    b = other.sum(axis=1) / np.maximum(1.0 - pr[lab], 1e-12)
    pi = 0.5
    for _ in range(max_iter):
        r = pi * a / np.maximum(pi * a + (1 - pi) * b, 1e-300)
        new = float(r.mean())
        if abs(new - pi) < tol:
            return new
        pi = new
    return pi


def audit_verdict(audited_correct: int, audited: int, *, target: float = 0.95, alpha: float = 0.05) -> str:
    """'ok' unless the audits show with confidence that auto-labels fall
    below the target ('fail': raise the threshold or stop)."""
    if audited == 0:
        return "ok"
    upper = float(clopper_pearson(audited_correct, audited, alpha, "upper"))
    return "fail" if upper < target else "ok"
