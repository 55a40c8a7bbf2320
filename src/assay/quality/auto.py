"""The default aggregator: MACE, Dawid-Skene, minimax entropy or EBCC, if it
earns its place against majority vote on answers it has not seen."""

from __future__ import annotations

import numpy as np

from assay.quality._answers import Answers
from assay.quality._base import Aggregator
from assay.quality.dawid_skene import DawidSkene, OneCoinDawidSkene
from assay.quality.ebcc import EBCC
from assay.quality.mace import MACE
from assay.quality.majority import MajorityVote
from assay.quality.minimax import MinimaxEntropy

#: fewer answers than this and nothing is held out (too little to judge by)
MIN_ANSWERS_TO_SELECT = 20
#: a model of truth must predict held-out answers better than worker habits
#: alone by at least this much (nats per answer) to count as seeing anything
MIN_GAIN = 0.01
#: minimax entropy keeps a K x K table per answer: it is a candidate only
#: while n_answers * K^2 stays below this (memory ~ 10 such tables, time
#: grows with it too); larger crowds choose between mv and ds
MINIMAX_MAX_CELLS = 2_000_000
#: EBCC keeps a confusion row per worker per (class, subtype) and a (class,
#: subtype) posterior per item, fitted from several random starts: it is a
#: candidate only while n_answers * K^2 * n_subtypes stays below this (a
#: cost bound of the same kind as minimax's; larger crowds choose without it)
EBCC_MAX_CELLS = 2_000_000
#: EBCC's subtypes per class (the authors' default); its random starts when
#: only scored (each start costs a full fit; seeded by ``random_state``) —
#: chosen, it is refitted with the estimator's default starts
EBCC_SUBTYPES = 10
EBCC_SCORING_RESTARTS = 1


def heldout_logprob(model: Aggregator, items, workers, labels) -> np.ndarray:
    """Log-probability a fitted model gives to each answer it did not see:
    ``log sum_k proba_[item, k] * confusion_[worker, k, label]``, or the
    model's own ``heldout_logprob`` where its answers depend on more than the
    worker (minimax entropy: the item's own confusion too)."""
    if hasattr(model, "heldout_logprob"):
        return model.heldout_logprob(items, workers, labels)
    p = np.einsum("ak,ak->a", model.proba_[items], model.confusion_[workers, :, labels])
    return np.log(np.maximum(p, 1e-300))


def _se(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else 0.0


def one_se_choice(logprobs: dict[str, np.ndarray], habits: np.ndarray,
                  departures: dict[str, int] | None = None) -> str:
    """Choose among candidates (dict order: simplest first) by held-out
    log-probabilities of the same answers.

    Every candidate within one standard error of the best (on the paired
    difference) is as good as the data can tell; of those, the one whose
    labels depart least from majority vote wins (``departures``: candidate
    -> items where its labels differ from majority vote's; ties, or no
    ``departures``, go to the simplest; one that departs nowhere is majority
    vote itself, the first candidate). A richer model must beat the noise,
    and so must every item it takes away from the majority. And if the best
    does not beat ``habits`` — a model that knows each worker's label habits
    but treats every item alike — by a standard error and by ``MIN_GAIN``
    nats per answer, the items' inferred truth explains next to nothing (a
    noisy, sparse crowd that lets Dawid-Skene collapse onto "one class,
    workers answer by habit") and the simplest candidate is kept.
    """
    names = list(logprobs)
    best = max(names, key=lambda name: logprobs[name].mean())
    gain = logprobs[best] - habits
    if gain.mean() <= max(_se(gain), MIN_GAIN):
        return names[0]
    tied = [name for name in names if (logprobs[best] - logprobs[name]).mean() <= _se(logprobs[best] - logprobs[name])]
    if departures is None:
        return tied[0]
    closest = min(tied, key=lambda name: (departures[name], names.index(name)))
    # a candidate that labels every item as majority vote does is majority vote
    return names[0] if departures[closest] == 0 else closest


class Auto(Aggregator):
    """MACE, Dawid-Skene, minimax entropy or EBCC when the data supports it,
    majority vote otherwise, decided on answers the models have not seen.

    Candidates, simplest first:

    - ``"mv"``: every worker shares one accuracy and errs uniformly — the
      generative model whose decisions *are* majority vote;
    - ``"mace"``: per worker a competence and a "spam" label distribution
      (``MACE()``);
    - ``"ds"``: Dawid-Skene with a confusion matrix per worker
      (``DawidSkene()``, default pseudo-counts);
    - ``"minimax"``: minimax conditional entropy, a confusion matrix per
      worker and one per item (``MinimaxEntropy()``, the authors' default
      regularisation); only while ``n_answers * K^2 <= MINIMAX_MAX_CELLS``;
    - ``"ebcc"``: EBCC, latent subtypes within each class so that workers
      who err alike on a kind of item are modelled as correlated
      (scored from ``EBCC_SCORING_RESTARTS`` random start, refitted if
      chosen as ``EBCC(n_subtypes=EBCC_SUBTYPES, random_state=random_state)``,
      the estimator's five starts); only while
      ``n_answers * K^2 * EBCC_SUBTYPES <= EBCC_MAX_CELLS``.

    A random ``holdout`` share of the answers (seeded by ``random_state``)
    is set aside and each candidate, fitted on the rest, is scored by the
    log-probability it gives the held-out answers. Of the candidates within
    one standard error of the best (paired over the same answers; the
    "one-standard-error rule"), the one whose labels differ from majority
    vote's on the fewest items is chosen (the simpler on equal counts;
    majority vote itself when that count is zero) — unless the best fails
    to beat a model of each worker's label habits alone (every item alike)
    by a standard error and ``MIN_GAIN`` nats per answer, in which case
    nothing in the items was learned and majority vote is kept. The choice
    is then refitted from scratch on all answers, so ``auto`` returns
    exactly what that candidate returns. With fewer than 20 answers nothing
    is held out and ``ds`` is used. See docs/quality.md (``auto``) for why.

    Fitted: ``method_`` (the chosen candidate), ``scores_`` (candidate, and
    ``"habits"`` -> mean held-out log-probability per answer),
    ``departures_`` (candidate -> items its held-out fit labels unlike
    majority vote; empty when nothing was held out), ``model_`` (the fitted
    estimator) and the common attributes, taken from ``model_``.
    """

    iterative = True

    def __init__(self, *, holdout: float = 0.1, random_state: int = 0, max_iter: int = 200,
                 tol: float = 1e-6, duplicates: str = "last") -> None:
        super().__init__(duplicates=duplicates)
        self.holdout = holdout
        self.random_state = random_state
        self.max_iter = max_iter
        self.tol = tol

    def _candidates(self, data: Answers) -> dict:
        em = dict(max_iter=self.max_iter, tol=self.tol)
        make = {
            "mv": lambda: OneCoinDawidSkene(learn_prior=False, **em),
            "mace": lambda: MACE(**em),
            "ds": lambda: DawidSkene(**em),
        }
        if data.n_answers * data.n_classes ** 2 <= MINIMAX_MAX_CELLS:
            make["minimax"] = lambda: MinimaxEntropy()
        if data.n_answers * data.n_classes ** 2 * EBCC_SUBTYPES <= EBCC_MAX_CELLS:
            make["ebcc"] = lambda: EBCC(n_subtypes=EBCC_SUBTYPES, n_restarts=EBCC_SCORING_RESTARTS,
                                        random_state=self.random_state)
        return make

    def _score(self, data: Answers, make: dict, gold_idx, gold_lab) -> str:
        """Fit every candidate on the answers not held out, score them on the
        held-out ones (``scores_``), count how many items each labels unlike
        majority vote (``departures_``) and return the choice."""
        rng = np.random.default_rng(self.random_state)
        out = np.zeros(data.n_answers, bool)
        out[rng.choice(data.n_answers, size=int(round(self.holdout * data.n_answers)), replace=False)] = True
        logprobs, labels = {}, {}
        for name, factory in make.items():
            if name == "mv":  # one shared worker: the model behind majority vote
                pooled = np.zeros_like(data.workers)
                train = data.subset(~out, n_workers=1, workers=pooled)
                w_out = pooled[out]
            else:
                train = data.subset(~out)
                w_out = data.workers[out]
            model = factory()
            if name in ("mv", "mace", "ds"):
                model.tol = max(self.tol, 1e-5)  # only scored; the winner is refitted to self.tol
            model._fit_data(train, gold_idx, gold_lab)
            logprobs[name] = heldout_logprob(model, data.items[out], w_out, data.labels[out])
            labels[name] = model.labels_
            self.scores_[name] = float(logprobs[name].mean())
        answered = train.answers_per_item > 0
        self.departures_ = {name: int(np.count_nonzero((lab != labels["mv"])[answered]))
                            for name, lab in labels.items()}
        # each worker's habits, every item alike: DS with one latent class
        habits_model = DawidSkene(prior="learned", tol=max(self.tol, 1e-5))
        habits_model._fit_data(data.subset(~out), np.arange(data.n_items), np.zeros(data.n_items, np.intp))
        habits = heldout_logprob(habits_model, data.items[out], data.workers[out], data.labels[out])
        self.scores_["habits"] = float(habits.mean())
        return one_se_choice(logprobs, habits, self.departures_)

    def _fit(self, data: Answers, gold_idx, gold_lab) -> None:
        make = self._candidates(data)
        self.scores_ = {}
        self.departures_ = {}
        chosen = "ds"
        if data.n_answers >= MIN_ANSWERS_TO_SELECT and int(round(self.holdout * data.n_answers)) >= 1:
            chosen = self._score(data, make, gold_idx, gold_lab)
        if chosen == "mv":
            model = MajorityVote()._fit_data(data, gold_idx, gold_lab)
        elif chosen == "ebcc":  # the estimator's own number of random starts
            model = EBCC(n_subtypes=EBCC_SUBTYPES, random_state=self.random_state)._fit_data(data, gold_idx, gold_lab)
        else:
            model = make[chosen]()._fit_data(data, gold_idx, gold_lab)
        self.method_ = chosen
        self.model_ = model
        for attr, value in vars(model).items():
            if attr.endswith("_") and not attr.startswith("_"):
                setattr(self, attr, value)
