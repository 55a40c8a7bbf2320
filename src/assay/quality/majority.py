"""Majority vote and Wawa (worker agreement with aggregate)."""

from __future__ import annotations

import numpy as np

from assay.quality._answers import Answers
from assay.quality._base import Aggregator, mv_posterior


def _tie_broken_argmax(post: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """argmax of each row; among tied classes the one more common overall wins
    (then the lowest code)."""
    top = post.max(axis=1, keepdims=True)
    tied = np.isclose(post, top, rtol=1e-12, atol=1e-15)
    rank = np.argsort(np.argsort(-prior, kind="stable"), kind="stable")  # 0 = most common
    return np.argmin(np.where(tied, rank, prior.size), axis=1)


class MajorityVote(Aggregator):
    """Each item gets its most frequent answer.

    ``proba_`` holds the vote shares. Ties go to the class that is more
    common among all answers (then the lowest code). ``confusion_`` and
    ``accuracy_`` are measured against the vote shares.
    """

    def _fit(self, data: Answers, gold_idx, gold_lab) -> None:
        post = mv_posterior(data)
        prior = data.votes.sum(axis=0) + 1.0
        prior /= prior.sum()
        self._finish(data, post, prior=prior, gold_idx=gold_idx, gold_lab=gold_lab)
        self.labels_ = _tie_broken_argmax(self.proba_, prior)


class Wawa(Aggregator):
    """Worker Agreement With Aggregate: a vote weighted by each worker's
    agreement with the majority vote.

    Skill ``skills_[w]`` = share of the worker's answers that match the
    majority label (gold labels replace it where known); ``proba_`` holds the
    skill-weighted vote shares (uniform for an item whose workers all have
    skill 0).
    """

    def _fit(self, data: Answers, gold_idx, gold_lab) -> None:
        mv = MajorityVote(duplicates=self.duplicates)
        mv._fit(data, gold_idx, gold_lab)
        agree = (mv.labels_[data.items] == data.labels).astype(float)
        n = data.answers_per_worker
        skills = data.worker_sum(agree) / np.maximum(n, 1)
        weighted = data.item_label_sum(skills[data.workers])
        total = weighted.sum(axis=1, keepdims=True)
        k = data.n_classes
        post = np.where(total > 0, weighted / np.where(total > 0, total, 1.0), 1.0 / k)
        post[data.answers_per_item == 0] = mv.prior_
        self.skills_ = skills
        self._finish(data, post, prior=mv.prior_, gold_idx=gold_idx, gold_lab=gold_lab)
        self.labels_ = _tie_broken_argmax(self.proba_, mv.prior_)
