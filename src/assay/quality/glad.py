"""GLAD (Whitehill et al. 2009): worker ability times item easiness."""

from __future__ import annotations

import numpy as np

from assay.errors import InvalidInput
from assay.quality._answers import Answers
from assay.quality._base import Aggregator, clamp_gold, gold_loglik, mv_posterior, softmax_rows

INITS = ("votes", "params")


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


class GLAD(Aggregator):
    """Generative model of Labels, Abilities and Difficulties.

    P(worker w answers item i correctly) = sigmoid(alpha_w * beta_i), wrong
    answers are uniform over the other K-1 classes. ``alpha_w`` (any sign) is
    the worker's ability, ``beta_i = exp(b_i) > 0`` the item's easiness.
    Gaussian priors: alpha ~ N(alpha_mean, 1), b ~ N(b_mean, 1) (defaults
    1 and 1, as in crowd-kit); both start at their prior means. The class prior is uniform unless ``learn_prior``
    (as in the paper; a learned prior lets the symmetric-error model
    collapse onto the majority class).

    EM. ``init="params"`` (default) starts from an E-step at the starting
    parameters (all abilities equal: a sharpened majority vote), as
    crowd-kit does; ``init="votes"`` starts from the vote shares.
    The E-step is exact. The M-step takes up to ``newton_steps`` rounds of
    diagonal Newton steps on alpha then b (each alpha is independent given
    b, and vice versa; the curvature is the Fisher information, raised to
    the exact one where that is larger, so the rounds converge), stopping
    early once no parameter moves by more than ``m_tol``. Two rounds (the default) is a partial
    M-step: each EM iteration is cheap and EM climbs to the same fixed
    point. ``newton_steps=25`` runs each M-step close to its optimum, like
    crowd-kit's 25 conjugate-gradient steps; crowd-kit's labels after
    ``n_iter`` iterations correspond to ours after ``max_iter = n_iter - 1``
    (it reports the E-step before its last M-step). ``b_mean=0,
    init="votes"`` was the default before 2026-11-26.
    See docs/quality.md for the comparison.

    Fitted: ``alpha_`` (n_workers,), ``beta_`` (n_items,) and the common
    attributes (``confusion_`` is measured against the posteriors).
    """

    iterative = True

    def __init__(self, *, alpha_mean: float = 1.0, b_mean: float = 1.0, init: str = "params",
                 max_iter: int = 100, tol: float = 1e-6, newton_steps: int = 2, m_tol: float = 1e-4,
                 learn_prior: bool = False, duplicates: str = "last") -> None:
        super().__init__(duplicates=duplicates)
        self.learn_prior = learn_prior
        if max_iter < 1 or newton_steps < 1:
            raise InvalidInput("max_iter and newton_steps must be at least 1")
        if init not in INITS:
            raise InvalidInput(f"init must be one of {INITS}, got {init!r}")
        self.alpha_mean = alpha_mean
        self.b_mean = b_mean
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.newton_steps = newton_steps
        self.m_tol = m_tol

    def _e_step(self, data: Answers, alpha, b, prior, gold_idx, gold_lab):
        """Posteriors (n_items, K) and the log-likelihood."""
        x = alpha[data.workers] * np.exp(b)[data.items]
        log_right = _log_sigmoid(x)
        log_wrong = _log_sigmoid(-x) - np.log(max(data.n_classes - 1, 1))
        logp = np.log(prior) + data.item_sum(log_wrong)[:, None] + data.item_label_sum(log_right - log_wrong)
        return softmax_rows(gold_loglik(logp, gold_idx, gold_lab))

    def _m_step(self, data: Answers, post, alpha, b) -> None:
        """Newton rounds on alpha, then b, in place."""
        w, it = data.workers, data.items
        p_right = data.at_answers(post)
        for _ in range(self.newton_steps):
            beta_a = np.exp(b)[it]
            s = 1.0 / (1.0 + np.exp(-alpha[w] * beta_a))
            g = data.worker_sum((p_right - s) * beta_a) - (alpha - self.alpha_mean)
            h = data.worker_sum(s * (1 - s) * beta_a**2) + 1.0
            step_a = np.clip(g / h, -2.0, 2.0)
            alpha += step_a
            x = alpha[w] * beta_a
            s = 1.0 / (1.0 + np.exp(-x))
            slope = data.item_sum((p_right - s) * x)
            g = slope - (b - self.b_mean)
            # Fisher information, plus the part of the exact curvature that
            # it leaves out where that part is positive (slope < 0): without
            # it the b steps can overshoot and cycle instead of converging
            h = data.item_sum(s * (1 - s) * x**2) + 1.0 + np.maximum(-slope, 0.0)
            step_b = np.clip(g / h, -1.0, 1.0)
            b += step_b
            if max(np.abs(step_a).max(initial=0.0), np.abs(step_b).max(initial=0.0)) <= self.m_tol:
                break

    def _fit(self, data: Answers, gold_idx, gold_lab) -> None:
        k = data.n_classes
        alpha = np.full(data.n_workers, float(self.alpha_mean))
        b = np.full(data.n_items, float(self.b_mean))
        prior = np.full(k, 1.0 / k)
        if self.init == "params":
            post, _ = self._e_step(data, alpha, b, prior, gold_idx, gold_lab)
        else:
            post = clamp_gold(mv_posterior(data), gold_idx, gold_lab)
        history: list[float] = []
        converged = False
        for _ in range(self.max_iter):
            prior = self._class_prior(post)
            self._m_step(data, post, alpha, b)
            post, loglik = self._e_step(data, alpha, b, prior, gold_idx, gold_lab)
            log_prior = float(np.sum(np.log(prior)))
            log_prior -= 0.5 * float(np.sum((alpha - self.alpha_mean) ** 2) + np.sum((b - self.b_mean) ** 2))
            history.append(loglik + log_prior)
            if len(history) > 1 and abs(history[-1] - history[-2]) <= self.tol * data.n_answers:
                converged = True
                break
        self.alpha_ = alpha
        self.beta_ = np.exp(b)
        self._finish(data, post, prior=prior, history=history, converged=converged,
                     gold_idx=gold_idx, gold_lab=gold_lab)
