"""What every aggregator shares: the sklearn-style ``fit`` surface, gold
handling, row-wise softmax in log space and the fitted attributes."""

from __future__ import annotations

import numpy as np

from assay.errors import InvalidInput
from assay.quality._answers import Answers, _as_codes

TINY = 1e-300


def softmax_rows(logp: np.ndarray) -> tuple[np.ndarray, float]:
    """Normalise rows of log scores (n, K) into probabilities.

    Returns ``(post, loglik)`` where ``post`` rows sum to 1 and ``loglik`` is
    ``sum_i log sum_k exp(logp[i, k])``. Works on the (K, n) transpose, where
    reductions over the few classes are fast; ``post`` is that buffer seen as
    (n, K) (Fortran order, so its columns are contiguous).
    """
    lt = np.array(logp.T, order="C", copy=True)
    m = lt.max(axis=0)
    lt -= m
    np.exp(lt, out=lt)
    s = lt.sum(axis=0)
    lt /= s
    return lt.T, float(np.sum(m) + np.sum(np.log(s)))


def clamp_gold(post: np.ndarray, gold_idx: np.ndarray, gold_lab: np.ndarray) -> np.ndarray:
    """Overwrite the rows of gold items with their one-hot gold label."""
    if gold_idx.size:
        post[gold_idx] = 0.0
        post[gold_idx, gold_lab] = 1.0
    return post


def gold_loglik(logp: np.ndarray, gold_idx: np.ndarray, gold_lab: np.ndarray) -> np.ndarray:
    """Replace gold rows of log scores by -inf except at the gold label, so
    the posterior (and the likelihood) is conditioned on the known truth."""
    if gold_idx.size:
        keep = logp[gold_idx, gold_lab]
        logp[gold_idx] = -np.inf
        logp[gold_idx, gold_lab] = keep
    return logp


def check_gold(gold, n_items: int, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``gold`` is None or an int array of length n_items with -1 for unknown.

    Returns the (item indices, labels) of the known ones.
    """
    if gold is None:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    g = np.asarray(gold)
    if g.ndim != 1 or g.size != n_items:
        raise InvalidInput(f"gold must be a 1-d array of length n_items={n_items} (-1 = unknown), got shape {g.shape}")
    if g.size and not np.issubdtype(g.dtype, np.integer):
        raise InvalidInput(f"gold must hold integer class codes or -1, got dtype {g.dtype}")
    g = g.astype(np.intp, copy=False)
    if g.size and (g.min() < -1 or g.max() >= n_classes):
        raise InvalidInput(f"gold codes must be -1 (unknown) or in 0..{n_classes - 1}")
    idx = np.flatnonzero(g >= 0)
    return idx, g[idx]


class Aggregator:
    """Base class: infer each item's true label from several noisy answers.

    Input is long integer-coded rows ``(items[n], workers[n], labels[n])``.
    After ``fit`` every aggregator has:

    - ``labels_`` (n_items,) int: the inferred label, argmax of ``proba_``;
    - ``proba_`` (n_items, K) float: posterior over classes, rows sum to 1;
    - ``confusion_`` (n_workers, K, K): P(worker answers l | true class k),
      rows (true class) sum to 1;
    - ``accuracy_`` (n_workers,): expected share of the worker's answers that
      are correct, ``mean(proba_[item, label])`` over their answers (nan for
      a worker with no answers);
    - ``prior_`` (K,): class prior; an item with no answers gets it as ``proba_``;
    - ``history_`` (n_iter,) float: objective after each iteration (empty
      for one-shot methods); ``n_iter_``, ``converged_``;
    - ``n_duplicates_``: duplicate (item, worker) rows seen in the input.

    Duplicate (item, worker) rows: ``duplicates="last"`` (default) keeps only
    the last row in input order (a worker's latest answer); ``"all"`` counts
    every row as a separate answer.
    """

    iterative = False

    def __init__(self, *, duplicates: str = "last") -> None:
        self.duplicates = duplicates

    # -------------------------------------------------------------- public

    def fit(self, items, workers, labels, *, gold=None, n_items: int | None = None,
            n_workers: int | None = None, n_classes: int | None = None):
        """Fit on integer codes.

        ``items``, ``workers``, ``labels``: (n,) non-negative ints. ``gold``:
        optional (n_items,) ints, the known true class or -1; known items are
        clamped to it during fitting and in the output. ``n_items``,
        ``n_workers``, ``n_classes`` default to the largest code + 1 (pass
        them to include items, workers or classes that have no answers).
        """
        if gold is not None:  # gold may name classes (and items) the answers do not
            g = np.asarray(gold)
            if g.ndim == 1 and g.size and np.issubdtype(g.dtype, np.integer):
                if n_classes is None:
                    lab = _as_codes("labels", labels)
                    n_classes = max(int(lab.max()) + 1 if lab.size else 0, int(g.max()) + 1)
                if n_items is None:
                    it = _as_codes("items", items)
                    n_items = max(g.size, int(it.max()) + 1 if it.size else 0)
        data = Answers(items, workers, labels, n_items=n_items, n_workers=n_workers,
                       n_classes=n_classes, duplicates=self.duplicates)
        gold_idx, gold_lab = check_gold(gold, data.n_items, data.n_classes)
        return self._fit_data(data, gold_idx, gold_lab)

    def _fit_data(self, data: Answers, gold_idx: np.ndarray, gold_lab: np.ndarray):
        """Fit on an already validated :class:`Answers` (used by ``Auto``)."""
        self.n_duplicates_ = data.n_duplicates
        self.history_ = np.zeros(0)
        self.n_iter_ = 0
        self.converged_ = True
        self._fit(data, gold_idx, gold_lab)
        return self

    def fit_predict(self, items, workers, labels, **kwargs) -> np.ndarray:
        return self.fit(items, workers, labels, **kwargs).labels_

    def fit_predict_proba(self, items, workers, labels, **kwargs) -> np.ndarray:
        return self.fit(items, workers, labels, **kwargs).proba_

    def get_params(self) -> dict:
        """Constructor parameters (sklearn style)."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------ internals

    def _fit(self, data: Answers, gold_idx: np.ndarray, gold_lab: np.ndarray) -> None:
        raise NotImplementedError

    def _class_prior(self, post: np.ndarray) -> np.ndarray:
        """Class prior for the next E-step: learned from the posteriors (one
        pseudo-count per class) or uniform when ``learn_prior`` is False."""
        k = post.shape[1]
        if not getattr(self, "learn_prior", True):
            return np.full(k, 1.0 / k)
        c = post.sum(axis=0) + 1.0
        return c / c.sum()

    def _finish(self, data: Answers, post: np.ndarray, *, prior: np.ndarray,
                confusion: np.ndarray | None = None, history=None, converged: bool = True,
                gold_idx=None, gold_lab=None) -> None:
        post = np.ascontiguousarray(post, dtype=float)
        if gold_idx is not None:
            clamp_gold(post, gold_idx, gold_lab)
        self.proba_ = post
        self.labels_ = np.argmax(post, axis=1)
        self.prior_ = prior
        if confusion is None:
            confusion = empirical_confusion(data, post)
        self.confusion_ = confusion
        n = data.answers_per_worker
        with np.errstate(invalid="ignore", divide="ignore"):
            self.accuracy_ = data.worker_sum(data.at_answers(post)) / n
        self.accuracy_[n == 0] = np.nan
        self.history_ = np.asarray(history if history is not None else [], float)
        self.n_iter_ = int(self.history_.size)
        self.converged_ = bool(converged)
        self.n_classes_ = data.n_classes


def empirical_confusion(data: Answers, post: np.ndarray) -> np.ndarray:
    """Posterior-weighted confusion counts, rows normalised; a row with no
    mass (the worker never saw that class) is uniform."""
    counts = data.confusion_counts(post)
    total = counts.sum(axis=2, keepdims=True)
    k = data.n_classes
    return np.where(total > 0, counts / np.where(total > 0, total, 1.0), 1.0 / k)


def class_prior(post: np.ndarray, pseudo: float = 1.0) -> np.ndarray:
    """Class prior from posteriors with ``pseudo`` counts per class (never 0)."""
    c = post.sum(axis=0) + pseudo
    return c / c.sum()


def mv_posterior(data: Answers, smoothing: float = 0.0) -> np.ndarray:
    """Vote shares per item; items without answers get the overall label shares."""
    votes = data.votes
    overall = votes.sum(axis=0) + 1.0
    overall /= overall.sum()
    votes = votes + smoothing
    n = votes.sum(axis=1, keepdims=True)
    return np.where(n > 0, votes / np.where(n > 0, n, 1.0), overall)
