"""EBCC and BCC: Bayesian classifier combination by mean-field variational
Bayes (Kim & Ghahramani 2012; Li, Rubinstein & Cohn, ICML 2019)."""

from __future__ import annotations

import numpy as np

from assay.errors import InvalidInput
from assay.quality._answers import Answers
from assay.quality._base import Aggregator, clamp_gold, mv_posterior, softmax_rows
from assay.quality._special import digamma, gammaln


def _e_log_dirichlet(conc: np.ndarray) -> np.ndarray:
    """E[log p] under Dirichlet(conc), over the last axis."""
    return digamma(conc) - digamma(conc.sum(axis=-1, keepdims=True))


def _kl_dirichlet(post: np.ndarray, prior: np.ndarray) -> float:
    """Sum of KL(Dir(post) || Dir(prior)) over all leading axes."""
    prior = np.broadcast_to(prior, post.shape)
    p0, q0 = post.sum(axis=-1), prior.sum(axis=-1)
    kl = (gammaln(p0) - gammaln(post).sum(axis=-1) - gammaln(q0) + gammaln(prior).sum(axis=-1)
          + np.sum((post - prior) * _e_log_dirichlet(post), axis=-1))
    return float(kl.sum())


class EBCC(Aggregator):
    """Enhanced Bayesian Classifier Combination (Li, Rubinstein & Cohn,
    ICML 2019), fitted by mean-field variational Bayes.

    Each item has a true class ``k`` and, within it, a latent *subtype*
    ``m`` (one of ``n_subtypes``); every worker has a confusion row per
    (class, subtype), so workers who err alike on the same kind of item are
    modelled as correlated. Priors, as in the paper: class shares
    ~ Dirichlet(MV class counts) (``empirical_prior=True``), subtype shares
    ~ Dirichlet(``a_pi / n_subtypes``), each confusion row ~ Dirichlet with
    ``a_v`` on the true class and ``b_v`` elsewhere. ``n_subtypes=1`` is
    plain BCC (Kim & Ghahramani 2012): Dawid-Skene with the confusion
    matrices integrated over, not point-estimated.

    The subtype responsibilities start at random (seeded); the fit is run
    ``n_restarts`` times from different seeds and the one with the highest
    evidence lower bound (ELBO) is kept — chosen on the model's own
    objective, never on accuracy. Iteration stops when no item's class
    posterior moves by more than ``tol``.

    Fitted: ``elbo_`` (of the kept run), ``subtype_proba_`` (n_items, K, M),
    ``confusion_`` (the posterior-mean confusion per worker, summed over
    subtypes) and the common attributes; ``history_`` holds the ELBO after
    each iteration of the kept run.
    """

    iterative = True

    def __init__(self, *, n_subtypes: int = 10, a_pi: float = 0.1, a_v: float = 4.0, b_v: float = 1.0,
                 alpha: float = 1.0, empirical_prior: bool = True, n_restarts: int = 5,
                 random_state: int = 0, max_iter: int = 500, tol: float = 1e-3,
                 duplicates: str = "last") -> None:
        super().__init__(duplicates=duplicates)
        if n_subtypes < 1 or n_restarts < 1 or max_iter < 1:
            raise InvalidInput("n_subtypes, n_restarts and max_iter must be at least 1")
        if a_pi <= 0 or a_v <= 0 or b_v <= 0 or alpha <= 0:
            raise InvalidInput("a_pi, a_v, b_v and alpha must be > 0")
        self.n_subtypes = n_subtypes
        self.a_pi = a_pi
        self.a_v = a_v
        self.b_v = b_v
        self.alpha = alpha
        self.empirical_prior = empirical_prior
        self.n_restarts = n_restarts
        self.random_state = random_state
        self.max_iter = max_iter
        self.tol = tol

    def _fit(self, data: Answers, gold_idx, gold_lab) -> None:
        k, m = data.n_classes, self.n_subtypes
        z0 = clamp_gold(mv_posterior(data), gold_idx, gold_lab)
        answered = data.answers_per_item > 0
        if self.empirical_prior:
            nu0 = z0[answered].sum(axis=0) + 1e-2  # class counts by vote share; never zero
        else:
            nu0 = np.full(k, float(self.alpha))
        beta = np.full((k, k), float(self.b_v)) + np.eye(k) * (self.a_v - self.b_v)
        eta0 = np.full(m, self.a_pi / m)
        seeds = np.random.SeedSequence(self.random_state).spawn(self.n_restarts if m > 1 else 1)
        best = None
        for seed in seeds:
            run = self._run(data, z0, nu0, beta, eta0, np.random.default_rng(seed), gold_idx, gold_lab)
            if best is None or run["elbo"] > best["elbo"]:
                best = run
        self.elbo_ = best["elbo"]
        self.subtype_proba_ = best["zg"].reshape(data.n_items, k, m)
        conf = best["mu"] / best["mu"].sum(axis=2, keepdims=True)  # (W, K*M, K) posterior means
        self._conf_km = conf
        zg = best["zg"].reshape(data.n_items, k, m)
        w_sub = zg[answered].sum(axis=0) + eta0  # subtype weight within each class
        w_sub = w_sub / w_sub.sum(axis=1, keepdims=True)
        conf = np.einsum("wkml,km->wkl", conf.reshape(data.n_workers, k, m, k), w_sub)
        prior = best["nu"] / best["nu"].sum()
        self._finish(data, best["z"], prior=prior, confusion=conf, history=best["history"],
                     converged=best["converged"], gold_idx=gold_idx, gold_lab=gold_lab)

    def heldout_logprob(self, items, workers, labels) -> np.ndarray:
        """Log-probability of answers not used in fitting: the item's
        (class, subtype) posterior times the worker's posterior-mean
        confusion row for it."""
        n = self.subtype_proba_.shape[0]
        zg = self.subtype_proba_.reshape(n, -1)[items]
        p = np.einsum("ac,ac->a", zg, self._conf_km[workers, :, labels])
        return np.log(np.maximum(p, 1e-300))

    def _run(self, data, z0, nu0, beta, eta0, rng, gold_idx, gold_lab) -> dict:
        k, m = data.n_classes, self.n_subtypes
        n = data.n_items
        if m > 1:
            split = rng.dirichlet(np.ones(m), size=(n, k))
        else:
            split = np.ones((n, k, 1))
        zg = (split * z0[:, :, None]).reshape(n, k * m)
        z = z0
        beta_rows = np.repeat(beta, m, axis=0)  # (K*M, K): row (k, m) has class k's prior
        history: list[float] = []
        converged = False
        for _ in range(self.max_iter):
            zg3 = zg.reshape(n, k, m)
            eta = eta0 + zg3.sum(axis=0)                     # (K, M)
            nu = nu0 + z.sum(axis=0)                         # (K,)
            mu = data.confusion_counts(zg) + beta_rows       # (W, K*M, K)
            e_log_v = _e_log_dirichlet(mu)
            score = data.log_likelihood_terms(e_log_v)
            score += (_e_log_dirichlet(eta) + _e_log_dirichlet(nu)[:, None]).reshape(-1)
            if gold_idx.size:  # gold items: only the gold class's subtypes
                mask = np.zeros((gold_idx.size, k, m))
                mask[np.arange(gold_idx.size), gold_lab] = 1.0
                score[gold_idx] = np.where(mask.reshape(gold_idx.size, -1) > 0, score[gold_idx], -np.inf)
            zg, norm = softmax_rows(score)
            zg = np.ascontiguousarray(zg)
            new_z = zg.reshape(n, k, m).sum(axis=2)
            elbo = norm - _kl_dirichlet(mu, beta_rows[None]) - _kl_dirichlet(eta, eta0[None]) \
                - _kl_dirichlet(nu, nu0)
            history.append(elbo)
            change = float(np.max(np.abs(new_z - z))) if n else 0.0
            z = new_z
            if change <= self.tol:
                converged = True
                break
        # the ELBO of the last E-step's posteriors with the parameters it used
        return {"zg": zg, "z": z, "mu": mu, "nu": nu, "elbo": history[-1], "history": history,
                "converged": converged}


class BCC(EBCC):
    """Bayesian Classifier Combination (Kim & Ghahramani 2012) by
    variational Bayes: EBCC with one subtype per class (Dawid-Skene with
    Dirichlet(``a_v`` diagonal, ``b_v`` elsewhere) priors on the confusion
    rows, integrated over rather than point-estimated). Deterministic: no
    restarts are needed."""

    def __init__(self, *, a_v: float = 4.0, b_v: float = 1.0, alpha: float = 1.0,
                 empirical_prior: bool = True, max_iter: int = 500, tol: float = 1e-3,
                 duplicates: str = "last") -> None:
        super().__init__(n_subtypes=1, a_v=a_v, b_v=b_v, alpha=alpha, empirical_prior=empirical_prior,
                         n_restarts=1, max_iter=max_iter, tol=tol, duplicates=duplicates)
