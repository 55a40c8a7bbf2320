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
    start = max(min_support, 2 * int(np.ceil(np.log(alpha) / np.log(target))))
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


def audit_verdict(audited_correct: int, audited: int, *, target: float = 0.95, alpha: float = 0.05) -> str:
    """'ok' unless the audits show with confidence that auto-labels fall
    below the target ('fail': raise the threshold or stop)."""
    if audited == 0:
        return "ok"
    upper = float(clopper_pearson(audited_correct, audited, alpha, "upper"))
    return "fail" if upper < target else "ok"
