"""GLAD (Whitehill et al. 2009): worker ability times item easiness."""

from __future__ import annotations

import numpy as np

from assay.errors import InvalidInput
from assay.quality._answers import Answers
from assay.quality._base import Aggregator, clamp_gold, gold_loglik, mv_posterior, softmax_rows


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -x)


class GLAD(Aggregator):
    """Generative model of Labels, Abilities and Difficulties.

    P(worker w answers item i correctly) = sigmoid(alpha_w * beta_i), wrong
    answers are uniform over the other K-1 classes. ``alpha_w`` (any sign) is
    the worker's ability, ``beta_i = exp(b_i) > 0`` the item's easiness.
    Gaussian priors: alpha ~ N(alpha_mean, 1), b ~ N(0, 1). The class prior
    is uniform unless ``learn_prior`` (as in the paper; a learned prior lets
    the symmetric-error model collapse onto the majority class). EM: the E-step is
    exact; the M-step takes ``newton_steps`` rounds of diagonal Newton steps
    on alpha then b (each alpha is independent given b, and vice versa).

    Fitted: ``alpha_`` (n_workers,), ``beta_`` (n_items,) and the common
    attributes (``confusion_`` is measured against the posteriors).
    """

    iterative = True

    def __init__(self, *, alpha_mean: float = 1.0, max_iter: int = 100, tol: float = 1e-6,
                 newton_steps: int = 2, learn_prior: bool = False, duplicates: str = "last") -> None:
        super().__init__(duplicates=duplicates)
        self.learn_prior = learn_prior
        if max_iter < 1 or newton_steps < 1:
            raise InvalidInput("max_iter and newton_steps must be at least 1")
        self.alpha_mean = alpha_mean
        self.max_iter = max_iter
        self.tol = tol
        self.newton_steps = newton_steps

    def _fit(self, data: Answers, gold_idx, gold_lab) -> None:
        k = data.n_classes
        log_km1 = np.log(max(k - 1, 1))
        alpha = np.full(data.n_workers, float(self.alpha_mean))
        b = np.zeros(data.n_items)
        w, it = data.workers, data.items
        post = clamp_gold(mv_posterior(data), gold_idx, gold_lab)
        history: list[float] = []
        converged = False
        for _ in range(self.max_iter):
            # ---- M-step: class prior, then Newton rounds on alpha and b
            prior = self._class_prior(post)
            p_right = data.at_answers(post)
            for _ in range(self.newton_steps):
                beta_a = np.exp(b)[it]
                s = 1.0 / (1.0 + np.exp(-alpha[w] * beta_a))
                r = p_right - s
                g = data.worker_sum(r * beta_a) - (alpha - self.alpha_mean)
                h = data.worker_sum(s * (1 - s) * beta_a**2) + 1.0
                alpha += np.clip(g / h, -2.0, 2.0)
                alpha_a = alpha[w]
                x = alpha_a * beta_a
                s = 1.0 / (1.0 + np.exp(-x))
                r = p_right - s
                g = data.item_sum(r * x) - b
                h = data.item_sum(s * (1 - s) * x**2) + 1.0
                b += np.clip(g / h, -1.0, 1.0)
            # ---- E-step
            x = alpha[w] * np.exp(b)[it]
            log_right = _log_sigmoid(x)
            log_wrong = _log_sigmoid(-x) - log_km1
            logp = np.log(prior) + data.item_sum(log_wrong)[:, None] + data.item_label_sum(log_right - log_wrong)
            post, loglik = softmax_rows(gold_loglik(logp, gold_idx, gold_lab))
            log_prior = float(np.sum(np.log(prior)))
            log_prior -= 0.5 * float(np.sum((alpha - self.alpha_mean) ** 2) + np.sum(b**2))
            history.append(loglik + log_prior)
            if len(history) > 1 and abs(history[-1] - history[-2]) <= self.tol * data.n_answers:
                converged = True
                break
        self.alpha_ = alpha
        self.beta_ = np.exp(b)
        self._finish(data, post, prior=prior, history=history, converged=converged,
                     gold_idx=gold_idx, gold_lab=gold_lab)
