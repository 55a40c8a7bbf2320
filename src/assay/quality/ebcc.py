"""EBCC, Enhanced Bayesian Classifier Combination (Li, Rubinstein & Cohn, ICML 2019)."""

from __future__ import annotations

import numpy as np

from assay.errors import InvalidInput
from assay.quality._answers import Answers
from assay.quality._base import Aggregator, clamp_gold, mv_posterior, softmax_rows
from assay.quality._special import digamma


class EBCC(Aggregator):
    """Bayesian Dawid-Skene where every true class has ``n_subtypes`` latent
    subtypes, each with its own worker confusion rows: it captures workers
    whose errors are correlated (they all find the same items hard).

    Mean-field variational Bayes. Priors: class proportions Dir(1);
    subtype proportions Dir(``a_pi`` / n_subtypes); every confusion row
    Dir with ``a_v`` on the true class and ``b_v`` elsewhere. Subtype
    responsibilities start from the vote shares split at random (``seed``).
    Stops when no posterior moves more than ``tol``.

    Fitted: ``confusion_`` (per-worker rows averaged over subtypes),
    ``history_`` (largest posterior change per iteration).
    """

    iterative = True

    def __init__(self, *, n_subtypes: int = 10, a_pi: float = 0.1, a_v: float = 4.0, b_v: float = 1.0,
                 max_iter: int = 500, tol: float = 1e-3, seed: int = 0, duplicates: str = "last") -> None:
        super().__init__(duplicates=duplicates)
        if n_subtypes < 1 or min(a_pi, a_v, b_v) <= 0 or max_iter < 1:
            raise InvalidInput("n_subtypes and max_iter must be >= 1 and the priors > 0")
        self.n_subtypes = n_subtypes
        self.a_pi = a_pi
        self.a_v = a_v
        self.b_v = b_v
        self.max_iter = max_iter
        self.tol = tol
        self.seed = seed

    def _fit(self, data: Answers, gold_idx, gold_lab) -> None:
        k, m = data.n_classes, self.n_subtypes
        n = data.n_items
        rng = np.random.default_rng(self.seed)
        z = clamp_gold(mv_posterior(data), gold_idx, gold_lab)
        zg = (rng.dirichlet(np.ones(m), size=(n, k)) * z[:, :, None]).reshape(n, k * m)
        beta = np.full((k, k), self.b_v) + np.eye(k) * (self.a_v - self.b_v)
        beta_rows = np.repeat(beta, m, axis=0)  # (k*m, K): row of latent column (class, subtype)
        gold_mask = np.zeros(n, bool)
        gold_mask[gold_idx] = True
        history: list[float] = []
        converged = False
        for _ in range(self.max_iter):
            eta = self.a_pi / m + zg.sum(axis=0).reshape(k, m)
            nu = 1.0 + z.sum(axis=0)
            mu = data.confusion_counts(zg) + beta_rows[None]  # (W, k*m, K)
            e_log_pi = digamma(eta) - digamma(eta.sum(axis=1, keepdims=True))
            e_log_tau = digamma(nu) - digamma(nu.sum())
            e_log_v = digamma(mu) - digamma(mu.sum(axis=2, keepdims=True))
            logp = data.log_likelihood_terms(e_log_v) + (e_log_pi + e_log_tau[:, None]).reshape(-1)
            if gold_idx.size:  # only the gold class's subtypes stay possible
                allowed = np.zeros((gold_idx.size, k), bool)
                allowed[np.arange(gold_idx.size), gold_lab] = True
                logp[gold_idx] = np.where(np.repeat(allowed, m, axis=1), logp[gold_idx], -np.inf)
            zg, _ = softmax_rows(logp)
            new = zg.reshape(n, k, m).sum(axis=2)
            change = float(np.max(np.abs(new - z)))
            z = new
            history.append(change)
            if change < self.tol:
                converged = True
                break
        conf = mu.reshape(data.n_workers, k, m, k).sum(axis=2)
        conf /= conf.sum(axis=2, keepdims=True)
        prior = nu / nu.sum()
        self._finish(data, z, prior=prior, confusion=conf, history=history, converged=converged,
                     gold_idx=gold_idx, gold_lab=gold_lab)
