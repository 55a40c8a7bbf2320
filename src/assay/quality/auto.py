"""The default aggregator: a hierarchical Dawid-Skene that must earn its
place against majority vote on answers it has not seen."""

from __future__ import annotations

import numpy as np

from assay.quality._answers import Answers
from assay.quality._base import Aggregator
from assay.quality.dawid_skene import DawidSkene, OneCoinDawidSkene

#: fewer answers than this and nothing is held out (too little to judge by)
MIN_ANSWERS_TO_SELECT = 20


def heldout_loglik(model: Aggregator, items, workers, labels) -> float:
    """Mean log-probability a fitted model gives to answers it did not see:
    ``log sum_k proba_[item, k] * confusion_[worker, k, label]``."""
    p = np.einsum("ak,ak->a", model.proba_[items], model.confusion_[workers, :, labels])
    return float(np.mean(np.log(np.maximum(p, 1e-300))))


class Auto(Aggregator):
    """Pick the model the data supports, by held-out answer likelihood.

    Candidates, simplest first:

    - ``"mv"``: every worker shares one accuracy and errs uniformly — the
      generative model whose decisions *are* majority vote;
    - ``"one-coin"``: a per-worker accuracy (weighted vote);
    - ``"ds"``: Dawid-Skene with per-worker confusion matrices under a
      Dirichlet prior per true class learned from all workers (empirical
      Bayes, ``DawidSkene(prior="learned")``): sparse workers are shrunk
      towards the crowd's typical confusion.

    A random ``holdout`` share of the answers (seeded by ``random_state``)
    is set aside, every candidate is fitted on the rest and scored by the
    mean log-probability it gives the held-out answers; the best one is then
    refitted on all answers (warm-started). A richer model is chosen only
    when it predicts unseen answers better, so ``auto`` falls back to
    majority vote where per-worker models overfit. With fewer than 20
    answers nothing is held out and ``"ds"`` is used.

    Fitted: ``method_`` (the chosen candidate), ``scores_`` (candidate ->
    held-out log-likelihood per answer), ``model_`` (the fitted estimator)
    and the common attributes, taken from ``model_``.
    """

    iterative = True

    def __init__(self, *, holdout: float = 0.1, random_state: int = 0, max_iter: int = 200,
                 tol: float = 1e-6, duplicates: str = "last") -> None:
        super().__init__(duplicates=duplicates)
        self.holdout = holdout
        self.random_state = random_state
        self.max_iter = max_iter
        self.tol = tol

    def _candidates(self) -> dict:
        em = dict(max_iter=self.max_iter, tol=self.tol)
        return {
            "mv": lambda: OneCoinDawidSkene(learn_prior=False, **em),
            "one-coin": lambda: OneCoinDawidSkene(learn_prior=False, **em),
            "ds": lambda: DawidSkene(prior="learned", **em),
        }

    def _fit(self, data: Answers, gold_idx, gold_lab) -> None:
        make = self._candidates()
        self.scores_ = {}
        init = None
        chosen = "ds"
        n_out = int(round(self.holdout * data.n_answers))
        if data.n_answers >= MIN_ANSWERS_TO_SELECT and n_out >= 1:
            rng = np.random.default_rng(self.random_state)
            out = np.zeros(data.n_answers, bool)
            out[rng.choice(data.n_answers, size=n_out, replace=False)] = True
            fitted = {}
            for name, factory in make.items():
                if name == "mv":  # one shared worker: the model behind majority vote
                    pooled = np.zeros_like(data.workers)
                    train = data.subset(~out, n_workers=1, workers=pooled)
                    w_out = pooled[out]
                else:
                    train = data.subset(~out)
                    w_out = data.workers[out]
                model = factory()
                model.tol = max(self.tol, 1e-5)  # only scored; the winner is refitted to self.tol
                model._fit_data(train, gold_idx, gold_lab)
                self.scores_[name] = heldout_loglik(model, data.items[out], w_out, data.labels[out])
                fitted[name] = model
            chosen = max(self.scores_, key=self.scores_.get)  # a tie keeps the simpler one
            init = fitted[chosen].proba_
        if chosen == "mv":
            from assay.quality.majority import MajorityVote

            model = MajorityVote()._fit_data(data, gold_idx, gold_lab)
        elif init is not None:
            model = make[chosen]()._fit_data(data, gold_idx, gold_lab, init=init)
        else:
            model = make[chosen]()._fit_data(data, gold_idx, gold_lab)
        self.method_ = chosen
        self.model_ = model
        for attr, value in vars(model).items():
            if attr.endswith("_") and not attr.startswith("_"):
                setattr(self, attr, value)
