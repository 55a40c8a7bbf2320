"""Annotator skill per class and per class pair (a "nuance"), with its uncertainty.

From answers on items whose true class is known (gold questions, reviewers'
decisions, confident consensus), :func:`estimate_skills` estimates each
annotator's full confusion matrix — row ``t``: how they answer when the
truth is ``t`` — as a Dirichlet posterior, so that every skill comes with
how sure we are of it.

Few answers say little about a row of K cells, so each row is shrunk towards
a prior built from two things that *are* well estimated early:

* the annotator's own overall accuracy (one number, learned from all their
  answers, itself shrunk towards the crowd's accuracy), and
* the crowd's pattern of mistakes on that true class (which wrong classes
  people pick when they miss a ``t``: learned from everyone's answers).

The prior mean of row ``t`` is therefore ``acc_a`` on the diagonal and
``(1 - acc_a)`` spread like the crowd's errors on ``t``. How strongly it
pulls (``strength``, pseudo-answers per row) is not a constant: it is chosen
by empirical Bayes — the value under which the annotators' observed rows
are most probable (the Dirichlet-multinomial marginal likelihood, on a grid).
With many answers a row follows the annotator's own counts; with few, it is
"their accuracy, making the crowd's kind of mistakes". Nothing in it is
fitted to a data set; a crowd whose annotators differ in *which* classes
they confuse gets a small strength, one where they differ only in how often
they err gets a large one.

Pure numpy over integer-coded arrays; no storage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from assay.errors import InvalidInput

#: the grid of prior strengths (pseudo-answers per confusion row) empirical Bayes chooses from
STRENGTHS = np.geomspace(0.25, 256.0, 31)
#: z for the two-sided 90 % interval of a skill (Wilson score interval on its posterior pseudo-counts)
Z90 = 1.6448536269514722


@dataclass(frozen=True)
class SkillEstimate:
    """Per-annotator skills. Arrays are indexed by annotator code ``a`` (0..A-1)
    and class codes ``t`` (truth) and ``j`` (answer)."""

    alpha: np.ndarray  # (A, K, K) Dirichlet posterior of each confusion row
    counts: np.ndarray  # (A, K, K) answers seen: truth t answered as j
    accuracy: np.ndarray  # (A,) overall accuracy (posterior mean)
    strength: float  # the prior strength empirical Bayes chose
    crowd_confusion: np.ndarray  # (K, K) everyone's answers, row-normalised (smoothed)

    @property
    def confusion(self) -> np.ndarray:
        """(A, K, K) posterior mean confusion rows."""
        return self.alpha / self.alpha.sum(axis=2, keepdims=True)

    def class_skill(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mean, low, high)``, each (A, K): the chance the annotator answers
        ``t`` when the truth is ``t``, with a 90 % interval."""
        a = np.einsum("akk->ak", self.alpha)
        n = self.alpha.sum(axis=2)
        return _beta_interval(a, n)

    def pair_confusion(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mean, low, high)``, each (A, K, K): the chance the annotator answers
        ``j`` when the truth is ``t`` (the off-diagonal cells are the nuances
        "t taken for j"), with a 90 % interval."""
        n = self.alpha.sum(axis=2, keepdims=True)
        return _beta_interval(self.alpha, np.broadcast_to(n, self.alpha.shape))

    def loglik(self, workers, truth, labels) -> np.ndarray:
        """log P(answer | truth) of each answer under the estimate (posterior mean)."""
        c = self.confusion
        return np.log(np.maximum(c[np.asarray(workers), np.asarray(truth), np.asarray(labels)], 1e-12))


def _beta_interval(a: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The posterior mean ``a / n`` and a 90 % Wilson score interval on ``n``
    (pseudo-)answers: unlike mean ± z·sd it stays wide near 0 and 1, where
    a handful of answers all alike is no proof of a perfect skill."""
    mean = a / n
    z2 = Z90 * Z90
    centre = (mean + z2 / (2 * n)) / (1 + z2 / n)
    half = Z90 * np.sqrt(mean * (1 - mean) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return mean, np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def _lgamma(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.lgamma, otypes=[float])(x)


def _dirmult_loglik(counts: np.ndarray, prior: np.ndarray) -> float:
    """Sum over rows of the Dirichlet-multinomial log marginal likelihood (up to
    the multinomial coefficient, which does not depend on the prior)."""
    n = counts.sum(axis=-1)
    s = prior.sum(axis=-1)
    rows = n > 0
    return float((_lgamma(s[rows]) - _lgamma(s[rows] + n[rows])).sum()
                 + (_lgamma(prior + counts) - _lgamma(prior))[rows].sum())


def _check(workers, truth, labels, n_classes: int | None, n_workers: int | None):
    w, t, y = (np.asarray(x) for x in (workers, truth, labels))
    if not (w.ndim == t.ndim == y.ndim == 1) or not (len(w) == len(t) == len(y)):
        raise InvalidInput("workers, truth and labels must be 1-d arrays of the same length")
    for name, x in (("workers", w), ("truth", t), ("labels", y)):
        if len(x) and (not np.issubdtype(x.dtype, np.integer) or x.min() < 0):
            raise InvalidInput(f"{name} must be non-negative integer codes")
    k = int(n_classes) if n_classes is not None else int(max(t.max(initial=-1), y.max(initial=-1)) + 1)
    if k < 2:
        raise InvalidInput("skills need at least two classes")
    if len(t) and max(t.max(), y.max()) >= k:
        raise InvalidInput(f"a class code is >= n_classes ({k})")
    a = int(n_workers) if n_workers is not None else int(w.max(initial=-1) + 1)
    if len(w) and w.max() >= a:
        raise InvalidInput(f"a worker code is >= n_workers ({a})")
    return w.astype(np.intp), t.astype(np.intp), y.astype(np.intp), k, a


def estimate_skills(workers, truth, labels, *, n_classes: int | None = None,
                    n_workers: int | None = None) -> SkillEstimate:
    """Each annotator's confusion matrix from their answers ``labels`` on items
    whose class ``truth`` is known (integer codes; ``workers`` 0..A-1), as a
    Dirichlet posterior shrunk towards "their accuracy, making the crowd's kind
    of mistakes" with an empirically chosen strength (module docstring).

    An annotator with no such answers gets the crowd's confusion."""
    w, t, y, k, a = _check(workers, truth, labels, n_classes, n_workers)
    counts = np.zeros((a, k, k))
    np.add.at(counts, (w, t, y), 1.0)
    crowd = counts.sum(axis=0) + 1.0 / k  # a light smoothing: every cell possible
    crowd /= crowd.sum(axis=1, keepdims=True)
    # the crowd's mistakes on each true class, as a distribution over the wrong classes
    off = crowd * (1 - np.eye(k))
    off /= off.sum(axis=1, keepdims=True)
    # each annotator's overall accuracy, shrunk towards the crowd's (Beta, strength by empirical Bayes)
    right = np.einsum("akk->a", counts)
    total = counts.sum(axis=(1, 2))
    acc_crowd = float((right.sum() + 1.0) / (total.sum() + 2.0))
    acc = _shrunk_rate(right, total, acc_crowd)
    best, best_ll = STRENGTHS[0], -np.inf
    for s in STRENGTHS:
        ll = _dirmult_loglik(counts, s * _prior_mean(acc, off))
        if ll > best_ll:
            best, best_ll = float(s), ll
    alpha = best * _prior_mean(acc, off) + counts
    return SkillEstimate(alpha=alpha, counts=counts, accuracy=np.einsum("akk->a", alpha) / alpha.sum(axis=(1, 2)),
                         strength=best, crowd_confusion=crowd)


def _prior_mean(acc: np.ndarray, off: np.ndarray) -> np.ndarray:
    """(A, K, K): ``acc`` on the diagonal, the rest spread like the crowd's mistakes."""
    k = off.shape[0]
    eye = np.eye(k)
    return acc[:, None, None] * eye + (1 - acc)[:, None, None] * off[None]


def rate_skills(hits, n) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, low, high)`` per annotator of a rate (e.g. answers right on a
    nuance's gold items: ``hits`` out of ``n``), each shrunk towards the
    crowd's rate with an empirically chosen strength, and a 90 % interval."""
    hits, n = np.asarray(hits, dtype=float), np.asarray(n, dtype=float)
    if hits.shape != n.shape or (hits < 0).any() or (hits > n).any():
        raise InvalidInput("hits must be between 0 and n, one per annotator")
    pooled = float((hits.sum() + 1.0) / (n.sum() + 2.0))
    strength = _rate_strength(hits, n, pooled)
    return _beta_interval(strength * pooled + hits, strength + n)


def _shrunk_rate(hits: np.ndarray, n: np.ndarray, mean: float) -> np.ndarray:
    """Posterior mean rates under a Beta prior with mean ``mean`` whose strength
    maximises the beta-binomial marginal likelihood of ``hits`` out of ``n``."""
    s = _rate_strength(hits, n, mean)
    mean = min(max(mean, 1e-3), 1 - 1e-3)
    return (s * mean + hits) / (s + n)


def _rate_strength(hits: np.ndarray, n: np.ndarray, mean: float) -> float:
    mean = min(max(mean, 1e-3), 1 - 1e-3)
    rows = n > 0
    best, best_ll = STRENGTHS[0], -np.inf
    for s in STRENGTHS:
        a0, b0 = s * mean, s * (1 - mean)
        ll = float((_lgamma(a0 + hits[rows]) + _lgamma(b0 + n[rows] - hits[rows]) - _lgamma(s + n[rows])).sum()
                   + rows.sum() * (math.lgamma(s) - math.lgamma(a0) - math.lgamma(b0)))
        if ll > best_ll:
            best, best_ll = s, ll
    return float(best)


def confused_pairs(estimate: SkillEstimate, worker: int, *, top: int = 3) -> list[tuple[int, int, float, float]]:
    """The class pairs ``(truth, answer, rate, low)`` the annotator confuses most,
    by the lower end of the 90 % interval (sure mistakes first), off-diagonal only."""
    mean, low, _ = estimate.pair_confusion()
    k = mean.shape[1]
    cells = [(int(t), int(j), float(mean[worker, t, j]), float(low[worker, t, j]))
             for t in range(k) for j in range(k) if t != j]
    return sorted(cells, key=lambda c: (-c[3], -c[2]))[:top]


def rate_interval(hits, n) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(rate, low, high)`` of ``hits`` out of ``n`` (arrays or numbers) on
    the answers alone (no shrinking: a before/after comparison must not pull
    both towards the crowd), with a 90 % Wilson score interval; NaN where
    ``n`` is 0."""
    hits, n = np.asarray(hits, dtype=float), np.asarray(n, dtype=float)
    if hits.shape != n.shape or (hits < 0).any() or (hits > n).any():
        raise InvalidInput("hits must be between 0 and n")
    safe = np.where(n > 0, n, 1.0)
    mean, low, high = _beta_interval(hits, safe)
    empty = n <= 0
    return tuple(np.where(empty, np.nan, x) for x in (mean, low, high))  # type: ignore[return-value]


def difference_interval(hits_before, n_before, hits_after, n_after) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(after − before, low, high)``: the change in a rate with a 90 %
    interval (Newcombe's hybrid score interval, from the two Wilson
    intervals of :func:`rate_interval`); NaN where either side has no answers."""
    p1, l1, u1 = rate_interval(hits_before, n_before)
    p2, l2, u2 = rate_interval(hits_after, n_after)
    d = p2 - p1
    return d, d - np.sqrt((p2 - l2) ** 2 + (u1 - p1) ** 2), d + np.sqrt((u2 - p2) ** 2 + (p1 - l1) ** 2)
