"""BWA, Bayesian Weighted Average (Li, Rubinstein & Cohn, WWW 2019)."""

from __future__ import annotations

import numpy as np

from assay.errors import InvalidInput
from assay.quality._answers import Answers
from assay.quality._base import Aggregator, clamp_gold, mv_posterior


class BWA(Aggregator):
    """Bayesian Weighted Average.

    Each class is treated as a 0/1 indicator; a worker's answers are noisy
    readings of the item's true indicator with a per-worker, per-class
    precision ``v`` (Gamma prior with shape ``a_v``, scale set from the vote
    spread, with the paper's prior correction). The item score is the
    precision-weighted average of its answers, shrunk towards the class mean
    with weight ``lam``; mean-field updates until the scores move less than
    ``tol``. ``proba_`` is the scores clipped at 0 and normalised.

    Fitted: ``precision_`` (n_workers, K); ``history_`` holds the largest
    score change per iteration (BWA has no cheap objective).
    """

    iterative = True

    def __init__(self, *, a_v: float = 15.0, lam: float = 1.0, max_iter: int = 500,
                 tol: float = 1e-5, duplicates: str = "last") -> None:
        super().__init__(duplicates=duplicates)
        if a_v <= 0 or lam <= 0 or max_iter < 1:
            raise InvalidInput("a_v and lam must be > 0 and max_iter >= 1")
        self.a_v = a_v
        self.lam = lam
        self.max_iter = max_iter
        self.tol = tol

    def _fit(self, data: Answers, gold_idx, gold_lab) -> None:
        k = data.n_classes
        n_i = data.answers_per_item
        n_j = data.answers_per_worker.astype(float)
        z = clamp_gold(mv_posterior(data), gold_idx, gold_lab)
        z[n_i == 0] = 0.0
        spread = np.sum(n_i[:, None] * z * (1 - z), axis=0) / data.n_answers
        b_v = self.a_v * spread * 4.0 * (1.0 - 1.0 / k) + 1e-12
        counts = data.worker_label_sum(None)  # answers of worker w with label k
        answered = n_i > 0
        history: list[float] = []
        converged = False
        for _ in range(self.max_iter):
            mu = z[answered].mean(axis=0)
            # sum over a worker's answers of (z[i, k] - [label == k])^2
            sq = data.worker_item_sum(z * z)
            hit = data.worker_label_sum(data.at_answers(z))
            resid = np.maximum(sq - 2.0 * hit + counts, 0.0)
            v = (self.a_v + n_j[:, None]) / (b_v + resid)
            num = data.item_label_sum(v[data.workers, data.labels])
            den = data.item_worker_sum(v)
            new = (self.lam * mu + num) / (self.lam + den)
            new[~answered] = 0.0
            clamp_gold(new, gold_idx, gold_lab)
            change = float(np.max(np.abs(new - z)))
            z = new
            history.append(change)
            if change < self.tol:
                converged = True
                break
        self.precision_ = v
        prior = data.votes.sum(axis=0) + 1.0
        prior /= prior.sum()
        score = np.maximum(z, 0.0)
        total = score.sum(axis=1, keepdims=True)
        post = np.where(total > 0, score / np.where(total > 0, total, 1.0), prior)
        self._finish(data, post, prior=prior, history=history, converged=converged,
                     gold_idx=gold_idx, gold_lab=gold_lab)
