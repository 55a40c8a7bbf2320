"""Minimax conditional entropy (Zhou, Platt, Basu & Mao, NIPS 2012; Zhou,
Liu, Platt & Meek, ICML 2014), the categorical model."""

from __future__ import annotations

import numpy as np

from assay.errors import InvalidInput
from assay.quality._answers import Answers
from assay.quality._base import Aggregator, clamp_gold, gold_loglik, mv_posterior, softmax_rows


def _log_softmax_last(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=-1, keepdims=True)
    out = x - m
    out -= np.log(np.exp(out).sum(axis=-1, keepdims=True))
    return out


class MinimaxEntropy(Aggregator):
    """Categorical minimax conditional entropy.

    The answer of worker ``j`` on item ``i`` whose true class is ``k`` is
    label ``l`` with probability ``softmax_l(sigma_j[k, l] + tau_i[k, l])``:
    a confusion matrix per worker *and* one per item (how this item tends to
    be misread), which is the maximum-entropy distribution matching the
    worker-wise and item-wise confusion statistics (the minimax conditional
    entropy principle). Both are Gaussian-regularised:
    ``lambda_worker / 2 * |sigma_j|^2`` and ``lambda_item / 2 * |tau_i|^2``.
    Defaults as the authors' code: ``lambda_worker = 0.25 K^2`` and
    ``lambda_item = lambda_worker * mean answers per worker / mean answers
    per item``, a uniform class prior (``learn_prior=False``; a class nobody
    answered gets the weight of one answer), majority-vote start, and stop when no
    posterior moves by more than ``tol`` (5e-3) or after ``max_iter`` (50)
    rounds.

    Fitting alternates an E-step over the true classes with an M-step of
    ``inner_iter`` majorise-minimise sweeps over the worker and then the item
    parameters (a gradient step over a bound on the curvature, so the
    penalised likelihood never decreases; the authors run L-BFGS per worker
    and per item, towards the same fixed point). Memory and time per sweep
    are O(n_answers * K^2).

    Fitted: ``sigma_`` (n_workers, K, K), ``tau_`` (n_items, K, K),
    ``confusion_`` = ``softmax(sigma_j)`` (the worker on an average item) and
    the common attributes; ``history_`` holds the penalised log-likelihood
    after each round.
    """

    iterative = True

    def __init__(self, *, lambda_worker: float | None = None, lambda_item: float | None = None,
                 max_iter: int = 50, tol: float = 5e-3, inner_iter: int = 2, learn_prior: bool = False,
                 duplicates: str = "last") -> None:
        super().__init__(duplicates=duplicates)
        if max_iter < 1 or inner_iter < 1:
            raise InvalidInput("max_iter and inner_iter must be at least 1")
        for name, v in (("lambda_worker", lambda_worker), ("lambda_item", lambda_item)):
            if v is not None and v <= 0:
                raise InvalidInput(f"{name} must be > 0")
        self.lambda_worker = lambda_worker
        self.lambda_item = lambda_item
        self.max_iter = max_iter
        self.tol = tol
        self.inner_iter = inner_iter
        self.learn_prior = learn_prior

    def _lambdas(self, data: Answers) -> tuple[float, float]:
        k = data.n_classes
        lw = 0.25 * k * k if self.lambda_worker is None else float(self.lambda_worker)
        if self.lambda_item is not None:
            return lw, float(self.lambda_item)
        per_worker = data.n_answers / max(np.count_nonzero(data.answers_per_worker), 1)
        per_item = data.n_answers / max(np.count_nonzero(data.answers_per_item), 1)
        return lw, lw * per_worker / per_item

    def _fit(self, data: Answers, gold_idx, gold_lab) -> None:
        k = data.n_classes
        lw, lt = self._lambdas(data)
        items, workers, labels = data.items, data.workers, data.labels
        # answers grouped by worker, for the worker-wise segment sums
        w_order = np.argsort(workers, kind="stable")
        w_starts = np.flatnonzero(np.r_[True, workers[w_order][1:] != workers[w_order][:-1]])
        w_present = workers[w_order][w_starts]
        i_starts, i_present = data._item_starts, data._item_present
        onehot = np.zeros((data.n_answers, k))
        onehot[np.arange(data.n_answers), labels] = 1.0

        def worker_sum(x):
            out = np.zeros((data.n_workers,) + x.shape[1:])
            out[w_present] = np.add.reduceat(x[w_order], w_starts, axis=0)
            return out

        def item_sum(x):
            out = np.zeros((data.n_items,) + x.shape[1:])
            out[i_present] = np.add.reduceat(x, i_starts, axis=0)
            return out

        sigma = np.zeros((data.n_workers, k, k))
        tau = np.zeros((data.n_items, k, k))
        post = clamp_gold(mv_posterior(data), gold_idx, gold_lab)
        # uniform over the classes somebody answered (or gold names); a class
        # nobody used keeps the weight of one answer among all of them, so it
        # is never the argmax without gold (its rows have no data to fit)
        used = data.votes.sum(axis=0) > 0
        used[gold_lab] = True
        prior = np.where(used, 1.0, 1.0 / data.n_answers)
        prior /= prior.sum()
        rows = np.arange(data.n_answers)
        history: list[float] = []
        converged = False
        for _ in range(self.max_iter):
            # M-step: majorise-minimise sweeps, each a step of gradient over a
            # curvature bound (the softmax Hessian is at most 1/2 per true
            # class weight), so the objective never decreases
            mu = post[items]  # (n, K): weight of each true class per answer
            bound = 0.5 * mu[:, :, None]
            for _inner in range(self.inner_iter):
                for block in ("worker", "item"):
                    p = np.exp(_log_softmax_last(sigma[workers] + tau[items]))
                    np.subtract(onehot[:, None, :], p, out=p)
                    p *= mu[:, :, None]  # gradient of the expected log-likelihood per answer
                    if block == "worker":
                        sigma += (worker_sum(p) - lw * sigma) / (worker_sum(bound) + lw)
                    else:
                        tau += (item_sum(p) - lt * tau) / (item_sum(bound) + lt)
            # E-step
            logp_ans = _log_softmax_last(sigma[workers] + tau[items])  # (n, K, K)
            at_label = logp_ans[rows, :, labels]  # (n, K): log P(given label | class k)
            if self.learn_prior:
                prior = self._class_prior(post)
            logp = item_sum(at_label) + np.log(prior)
            new, loglik = softmax_rows(gold_loglik(logp, gold_idx, gold_lab))
            new = np.ascontiguousarray(new)
            history.append(loglik - 0.5 * lw * float(np.sum(sigma ** 2)) - 0.5 * lt * float(np.sum(tau ** 2)))
            change = float(np.max(np.abs(new - post)))
            post = new
            if change < self.tol:
                converged = True
                break
        self.sigma_ = sigma
        self.tau_ = tau
        conf = np.exp(_log_softmax_last(sigma))
        self._finish(data, post, prior=prior, confusion=conf, history=history, converged=converged,
                     gold_idx=gold_idx, gold_lab=gold_lab)

    def heldout_logprob(self, items, workers, labels) -> np.ndarray:
        """Log-probability of answers not used in fitting, with the item's
        own ``tau`` (zero for an item the fit never saw)."""
        logit = self.sigma_[workers] + self.tau_[items]
        lp = _log_softmax_last(logit)
        k = lp.shape[1]
        at = np.take_along_axis(lp, np.asarray(labels)[:, None, None].repeat(k, axis=1), axis=2)[:, :, 0]
        m = at.max(axis=1, keepdims=True)
        return (np.log(np.sum(self.proba_[items] * np.exp(at - m), axis=1) + 1e-300) + m[:, 0])
