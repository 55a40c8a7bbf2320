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
              max_answers: int, settled: bool = False) -> str:
    """What adaptive redundancy does after an answer.

    ``"resolved"``: confidence reached ``target`` (stop asking; unleased open
    slots are withdrawn). ``"review"``: ``max_answers`` answers and still
    below target (to the reviewer queue). ``"settled"``: below target, but the
    answers still allowed could not plausibly change the label (``settled``,
    from :func:`settled`): stop asking, like ``"resolved"``. ``"more"``: below
    target, every planned answer is in, room left: ask one more annotator.
    ``"wait"``: below target but answers already planned (open slots or leases).
    """
    if confidence >= target:
        return "resolved"
    if answers >= max_answers:
        return "review"
    if settled:
        return "settled"
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


# ------------------------------------------------------------------ settled labels
#
# Near the cap an item can be settled before its posterior reaches the target:
# when the answers still allowed (max_answers - answers) could not plausibly
# change the label, asking for them buys nothing. Whether they could is a
# question about the crowd the answers would come from, so it is answered at
# each re-fit, once for every (current label c, rival j, answers left m): the
# smallest margin lp[c] - lp[j] at which m more answers, each from an annotator
# drawn like the crowd's answers (workers weighted by how much they answer),
# turn the label to j with probability at most the budget. After an answer
# the check is a table look-up (:func:`settled`).

#: per-answer margin increments are rounded down (towards the rival, so the
#: chance of a flip is over- rather than under-estimated) to this grid (nats) ...
SETTLE_STEP = 0.025
#: ... and clipped to +/- this (an answer never moves the margin further)
SETTLE_CLIP = 16.0
#: margins are tabulated for up to this many answers left; with more left the
#: posterior rule alone decides (the chance of a flip then is about 1 - confidence)
SETTLE_MAX_LEFT = 16
#: projects with more classes than this get no table (the re-fit would spend
#: seconds on it: about 1 s for 10 classes, growing with the square): the
#: posterior rule alone decides
SETTLE_MAX_CLASSES = 20
#: what the table bounds (:func:`settle_margins`): the chance that the label
#: turns ("flip", the default) or the accuracy the answers could add ("gain")
STOP_CRITERIA = ("flip", "gain")


def settle_margins(confusions, weights, budget: float, max_left: int, criterion: str = "flip") -> list:
    """``table[m - 1][c][j]``: the smallest margin ``lp[c] - lp[j]`` (nats) at
    which ``m`` more answers turn label ``c`` into ``j`` with probability at most
    ``budget`` (``None``: no margin on the grid is enough).

    ``confusions`` (W, K, K) and ``weights`` (W,) describe the crowd: the next
    answer comes from annotator w with probability proportional to
    ``weights[w]``. The truth is c or j with the odds the margin says (the
    other classes are left out, so for K > 2 the check is per rival and the
    budget is shared among them by the caller). The sum of the m answers'
    increments is the m-fold convolution of one answer's distribution
    (computed by FFT on a grid of ``SETTLE_STEP`` nats, each increment rounded
    down, so the margins err on the safe side by at most m grid steps).

    ``criterion``: what must stay within ``budget``. ``"flip"`` (the default):
    the chance that the label turns, ``P(c) P_c(turn) + P(j) P_j(turn)``.
    ``"gain"``: the accuracy the answers could add, ``P(j) P_j(turn) -
    P(c) P_c(turn)`` (a turn with truth j makes the label right, one with
    truth c makes it wrong; the value of the information, against the
    truth) — never more than the chance of a flip, so it stops sooner. For
    ``"gain"`` the increments under truth c are rounded up instead (fewer
    wrong turns subtracted), so the gain too is over- rather than
    under-estimated.
    """
    if criterion not in STOP_CRITERIA:
        raise ValueError(f"criterion must be one of {STOP_CRITERIA}, got {criterion!r}")
    c_all = np.asarray(confusions, dtype=float)
    w = np.asarray(weights, dtype=float)
    k = c_all.shape[-1]
    if c_all.shape[0] == 0 or w.sum() <= 0 or max_left < 1:
        return []
    w = w / w.sum()
    logc = np.log(np.maximum(c_all, TINY))
    nb = int(round(2 * SETTLE_CLIP / SETTLE_STEP)) + 1
    table = [[[None] * k for _ in range(k)] for _ in range(max_left)]
    for c in range(k):
        for j in range(k):
            if j == c:
                continue
            # increment of lp[c] - lp[j] per answer label l, for each annotator
            inc = np.clip(logc[:, c, :] - logc[:, j, :], -SETTLE_CLIP, SETTLE_CLIP)  # (W, K)
            idx = np.floor((inc + SETTLE_CLIP) / SETTLE_STEP + 1e-9).astype(np.intp)
            idx_up = np.minimum(np.ceil((inc + SETTLE_CLIP) / SETTLE_STEP - 1e-9).astype(np.intp), nb - 1)
            one = {}
            for truth in (c, j):
                h = np.zeros(nb)
                at = idx_up if (criterion == "gain" and truth == c) else idx
                np.add.at(h, at.ravel(), (w[:, None] * c_all[:, truth, :]).ravel())
                one[truth] = h
            for m in range(1, max_left + 1):
                size = 1 << int(np.ceil(np.log2(m * (nb - 1) + 1)))
                cdf = {}
                for truth in (c, j):
                    d = np.fft.irfft(np.fft.rfft(one[truth], size) ** m, size)[: m * (nb - 1) + 1]
                    cdf[truth] = np.cumsum(np.maximum(d, 0.0))
                # the sum S lies on -m*CLIP + SETTLE_STEP * i; the label turns when margin + S < 0
                margins = SETTLE_STEP * np.arange(0, m * (nb - 1) // 2 + 2)
                # index of the largest grid point < -margin
                pos = np.ceil((-margins + m * SETTLE_CLIP) / SETTLE_STEP - 1e-9).astype(np.intp) - 1
                below = {t: np.where(pos >= 0, cdf[t][np.clip(pos, 0, None)], 0.0) for t in (c, j)}
                p_c = 1.0 / (1.0 + np.exp(-margins))
                if criterion == "gain":
                    risk = (1.0 - p_c) * below[j] - p_c * below[c]
                else:
                    risk = p_c * below[c] + (1.0 - p_c) * below[j]
                ok = risk <= budget
                # the smallest margin from which on every larger one is within budget
                bad = np.flatnonzero(~ok)
                first = 0 if bad.size == 0 else bad[-1] + 1
                if first < margins.size:
                    table[m - 1][c][j] = round(float(margins[first]), 6)
    return table


def settled(log_post: Sequence[float], answers_left: int, table) -> bool:
    """Whether the label cannot plausibly change with ``answers_left`` more
    answers, by the re-fit's table (:func:`settle_margins`)."""
    if not table or answers_left < 1 or answers_left > len(table):
        return False
    best, _ = decision(log_post)
    row = table[answers_left - 1][best]
    for j, need in enumerate(row):
        if j == best:
            continue
        if need is None or log_post[best] - log_post[j] < need:
            return False
    return True
