"""MACE (Hovy et al. 2013): workers either know the answer or spam."""

from __future__ import annotations

import numpy as np

from assay.errors import InvalidInput
from assay.quality._base import TINY
from assay.quality.dawid_skene import _EM


class MACE(_EM):
    """Multi-Annotator Competence Estimation.

    Each answer is, with probability ``theta_w`` (competence), the true
    label; otherwise the worker "spams" a label drawn from their own
    strategy ``xi_w`` (a distribution over classes). Fitted by EM with
    Beta(``competence_pseudo``) pseudo-counts on theta (known, spam) and
    ``strategy_pseudo`` pseudo-counts on each xi; the class prior is learned.

    Fitted: ``competence_`` (n_workers,), ``strategy_`` (n_workers, K) and
    the common attributes; ``confusion_[w, k, l] = theta_w [k == l] +
    (1 - theta_w) xi_w[l]``.
    """

    def __init__(self, *, competence_pseudo: tuple[float, float] = (1.0, 1.0),
                 strategy_pseudo: float = 1.0, max_iter: int = 200, tol: float = 1e-6,
                 learn_prior: bool = True, duplicates: str = "last") -> None:
        super().__init__(max_iter=max_iter, tol=tol, learn_prior=learn_prior, duplicates=duplicates)
        if min(competence_pseudo) <= 0 or strategy_pseudo <= 0:
            raise InvalidInput("pseudo-counts must be > 0")
        self.competence_pseudo = tuple(competence_pseudo)
        self.strategy_pseudo = strategy_pseudo

    def _fit(self, data, gold_idx, gold_lab):
        k = data.n_classes
        self._theta = np.full(data.n_workers, 0.8)
        self._xi = np.full((data.n_workers, k), 1.0 / k)
        super()._fit(data, gold_idx, gold_lab)
        self.competence_ = self._theta
        self.strategy_ = self._xi

    def _m_step(self, data, post):
        k = data.n_classes
        theta, xi = self._theta, self._xi
        w, lab = data.workers, data.labels
        q = data.at_answers(post)  # P(truth == given label)
        t = theta[w]
        known = q * t / np.maximum(t + (1 - t) * xi[w, lab], TINY)
        spam = 1.0 - known
        a, b = self.competence_pseudo
        n = data.answers_per_worker
        theta = (data.worker_sum(known) + a) / (n + a + b)
        spam_wl = data.worker_label_sum(spam) + self.strategy_pseudo
        xi = spam_wl / spam_wl.sum(axis=1, keepdims=True)
        self._theta, self._xi = theta, xi
        conf = (1 - theta)[:, None, None] * xi[:, None, :] + theta[:, None, None] * np.eye(k)[None]
        prior = self._class_prior(post)
        log_prior = float(np.sum(a * np.log(theta) + b * np.log1p(-theta))
                          + self.strategy_pseudo * np.sum(np.log(xi)) + np.sum(np.log(prior)))
        return conf, prior, log_prior
