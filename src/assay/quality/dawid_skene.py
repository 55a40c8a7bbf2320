"""Dawid-Skene (full confusion matrices) and its one-coin special case,
fitted by EM in log space with Dirichlet pseudo-counts."""

from __future__ import annotations

import numpy as np

from assay.errors import InvalidInput
from assay.quality._answers import Answers
from assay.quality._base import Aggregator, TINY, clamp_gold, gold_loglik, mv_posterior, softmax_rows
from assay.quality._special import fit_dirichlet


class _EM(Aggregator):
    """EM skeleton shared by the confusion-matrix models: initialise the
    posteriors with the vote shares, then alternate M and E steps until the
    objective (log-likelihood + log prior) gains less than ``tol`` per answer."""

    iterative = True

    def __init__(self, *, max_iter: int = 200, tol: float = 1e-6, learn_prior: bool = True,
                 duplicates: str = "last") -> None:
        super().__init__(duplicates=duplicates)
        self.learn_prior = learn_prior
        if max_iter < 1:
            raise InvalidInput("max_iter must be at least 1")
        self.max_iter = max_iter
        self.tol = tol

    def _m_step(self, data: Answers, post: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Return (confusion (W, K, K), prior (K,), log prior density of the parameters)."""
        raise NotImplementedError

    def _log_terms(self, data: Answers, conf: np.ndarray) -> np.ndarray:
        """(n_items, K): sum of log P(answer | true class) over each item's answers."""
        return data.log_likelihood_terms(np.log(np.maximum(conf, TINY)))

    def fit(self, items, workers, labels, *, item_prior=None, **kwargs):
        """Like :meth:`Aggregator.fit`, plus ``item_prior``: optional
        (n_items, K) probabilities, another source's belief about each item's
        true class (a model's held-out prediction, as in cleanlab's CROWDLAB),
        used instead of the class prior in every E-step; rows of NaN fall back
        to the class prior. The workers' confusion matrices are then learned
        on items with a single answer too: the prior, not the answer alone,
        says what its true class is likely to be."""
        if item_prior is None:
            self._item_log_prior = None
            return super().fit(items, workers, labels, **kwargs)
        ip = np.asarray(item_prior, dtype=float)
        if ip.ndim != 2:
            raise InvalidInput("item_prior must be (n_items, n_classes) probabilities")
        kwargs.setdefault("n_items", ip.shape[0])
        kwargs.setdefault("n_classes", ip.shape[1])
        if ip.shape != (kwargs["n_items"], kwargs["n_classes"]):
            raise InvalidInput(f"item_prior must be {kwargs['n_items']} x {kwargs['n_classes']}, got {ip.shape}")
        given = np.isfinite(ip).all(axis=1)
        if (ip[given] < 0).any() or not np.allclose(ip[given].sum(axis=1), 1.0, atol=1e-4):
            raise InvalidInput("item_prior rows must be probabilities that sum to 1 (or all NaN)")
        self._item_log_prior = np.where(given[:, None], np.log(np.maximum(np.nan_to_num(ip), TINY)), np.nan)
        try:
            return super().fit(items, workers, labels, **kwargs)
        finally:
            self._item_log_prior = None

    def _log_prior_rows(self, prior: np.ndarray) -> np.ndarray:
        lp = np.log(prior)
        ilp = getattr(self, "_item_log_prior", None)
        if ilp is None:
            return lp
        return np.where(np.isnan(ilp), lp[None, :], ilp)

    def _fit(self, data: Answers, gold_idx, gold_lab) -> None:
        post = clamp_gold(mv_posterior(data), gold_idx, gold_lab)
        history: list[float] = []
        converged = False
        for _ in range(self.max_iter):
            conf, prior, log_prior = self._m_step(data, post)
            logp = self._log_terms(data, conf) + self._log_prior_rows(prior)
            post, loglik = softmax_rows(gold_loglik(logp, gold_idx, gold_lab))
            history.append(loglik + log_prior)
            if len(history) > 1 and abs(history[-1] - history[-2]) <= self.tol * data.n_answers:
                converged = True
                break
        self._finish(data, post, prior=prior, confusion=conf, history=history,
                     converged=converged, gold_idx=gold_idx, gold_lab=gold_lab)


class DawidSkene(_EM):
    """Dawid & Skene (1979): each worker has a full confusion matrix.

    Parameters
    ----------
    alpha : float, default 1.0
        Dirichlet pseudo-count added to every cell of every worker's
        confusion row, so a worker with few answers never gets a 0/1 row.
    alpha_diag : float, default 1.0
        Extra pseudo-count on the diagonal: a prior belief that workers do
        better than chance. With the defaults a worker with no evidence
        about class k answers it correctly with probability 2/(K+1).
    prior : {"fixed", "learned", "one-coin"}, default "fixed"
        ``"one-coin"`` keeps the pseudo-counts' total per row but spreads
        them as each worker's own one-coin skill (their overall share of
        right answers, smoothed): with many classes a worker has few answers
        per true class, and the uniform spread would pull every row towards
        chance (2/(K+1) right) while a worker's overall accuracy is known
        well from all their answers together.
        ``"learned"`` replaces the fixed pseudo-counts by a Dirichlet prior
        per true class fitted to all workers' confusion rows (empirical
        Bayes, Minka's fixed point) at each M-step: workers with little
        evidence are shrunk towards the crowd's typical confusion, by an
        amount the data decides. A Gamma hyperprior centred on the fixed
        pseudo-counts, worth ``hyper_weight`` workers, keeps a crowd of a
        few workers from driving the learned prior to extremes. Beware: on
        noisy, sparse crowds it can collapse onto "one class, workers answer
        by habit" (``Auto`` does not use it; see docs/quality.md).
    max_iter, tol : EM stops after ``max_iter`` iterations or when the
        objective gains less than ``tol`` per answer.

    Gold labels passed to ``fit`` are clamped in every E-step, so they also
    shape the confusion matrices.
    """

    def __init__(self, *, alpha: float = 1.0, alpha_diag: float = 1.0, prior: str = "fixed",
                 hyper_weight: float = 5.0, max_iter: int = 200, tol: float = 1e-6, learn_prior: bool = True,
                 duplicates: str = "last") -> None:
        super().__init__(max_iter=max_iter, tol=tol, learn_prior=learn_prior, duplicates=duplicates)
        if alpha <= 0 or alpha_diag < 0:
            raise InvalidInput("alpha must be > 0 and alpha_diag >= 0")
        if prior not in ("fixed", "learned", "one-coin"):
            raise InvalidInput(f"prior must be 'fixed', 'learned' or 'one-coin', got {prior!r}")
        self.alpha = alpha
        self.alpha_diag = alpha_diag
        self.prior = prior
        self.hyper_weight = hyper_weight

    def _pseudo(self, data: Answers, counts: np.ndarray) -> np.ndarray:
        k = data.n_classes
        base = np.full((k, k), float(self.alpha)) + np.eye(k) * self.alpha_diag
        if self.prior == "one-coin":
            # the same pseudo-counts per row, spread as the worker's own
            # one-coin skill (right with p_w, else uniform) instead of uniformly
            total = float(base[0].sum())
            n = counts.sum(axis=(1, 2))
            p = (np.trace(counts, axis1=1, axis2=2) + self.alpha + self.alpha_diag) / (n + 2 * self.alpha
                                                                                        + self.alpha_diag)
            off = total * (1.0 - p) / max(k - 1, 1)
            pseudo = np.broadcast_to(off[:, None, None], counts.shape).copy()
            idx = np.arange(k)
            pseudo[:, idx, idx] = (total * p)[:, None] if k > 1 else total
            self._alpha_matrix = base
            return pseudo
        if self.prior == "learned":
            prev = getattr(self, "_alpha_matrix", base)
            base = np.stack([fit_dirichlet(counts[:, c, :], prev[c], mode=base[c], weight=self.hyper_weight)
                             for c in range(k)])
        self._alpha_matrix = base
        return base

    def _m_step(self, data, post):
        counts = data.confusion_counts(post)
        pseudo = self._pseudo(data, counts)
        conf = counts + pseudo
        conf /= conf.sum(axis=2, keepdims=True)
        prior = self._class_prior(post)
        # MAP objective; with a learned prior the history is the log-likelihood
        log_prior = float(np.sum(np.log(prior)))
        if self.prior == "fixed":
            log_prior += float(np.sum(pseudo * np.log(conf)))
        return conf, prior, log_prior

    def _fit(self, data, gold_idx, gold_lab):
        self.__dict__.pop("_alpha_matrix", None)
        super()._fit(data, gold_idx, gold_lab)
        self.alpha_matrix_ = self.__dict__.pop("_alpha_matrix")


class OneCoinDawidSkene(_EM):
    """One-coin Dawid-Skene: worker w answers correctly with probability
    ``p_w`` and otherwise picks one of the other K-1 classes uniformly.

    ``correct_pseudo`` / ``wrong_pseudo`` (default 2 / 1) are Beta
    pseudo-counts on ``p_w``; ``skills_`` holds ``p_w``.

    ``learn_prior`` defaults to False (uniform class prior): with symmetric
    errors a learned prior is the only way the model can explain a crowd
    that leans towards one label, and EM then drifts to "everything is the
    majority class".
    """

    def __init__(self, *, correct_pseudo: float = 2.0, wrong_pseudo: float = 1.0,
                 max_iter: int = 200, tol: float = 1e-6, learn_prior: bool = False,
                 duplicates: str = "last") -> None:
        super().__init__(max_iter=max_iter, tol=tol, learn_prior=learn_prior, duplicates=duplicates)
        if correct_pseudo <= 0 or wrong_pseudo <= 0:
            raise InvalidInput("correct_pseudo and wrong_pseudo must be > 0")
        self.correct_pseudo = correct_pseudo
        self.wrong_pseudo = wrong_pseudo

    def _m_step(self, data, post):
        k = data.n_classes
        correct = data.worker_sum(data.at_answers(post))
        n = data.answers_per_worker
        a, b = self.correct_pseudo, self.wrong_pseudo
        p = (correct + a) / (n + a + b)
        self.skills_ = p
        off = (1.0 - p) / max(k - 1, 1)
        conf = np.broadcast_to(off[:, None, None], (data.n_workers, k, k)).copy()
        idx = np.arange(k)
        conf[:, idx, idx] = p[:, None] if k > 1 else 1.0  # one class: nothing to get wrong
        prior = self._class_prior(post)
        log_prior = float(np.sum(a * np.log(p) + b * np.log1p(-p)) + np.sum(np.log(prior)))
        return conf, prior, log_prior

    def _log_terms(self, data, conf):
        # every wrong label costs the same: one sum per item plus a bonus at
        # the given label, instead of K gathers
        k = data.n_classes
        p = np.clip(self.skills_, TINY, 1.0)
        log_right = np.log(p)
        log_wrong = np.log(np.maximum((1.0 - p) / max(k - 1, 1), TINY))
        w = data.workers
        return data.item_sum(log_wrong[w])[:, None] + data.item_label_sum((log_right - log_wrong)[w])
