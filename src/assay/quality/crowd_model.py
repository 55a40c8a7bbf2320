"""The crowd and a model together: consensus labels, their quality, and how
good each annotator is, from people's answers plus a classifier's
probabilities (the shape of cleanlab's CROWDLAB ``get_label_quality_
multiannotator``; the math is Dawid-Skene with the model's prediction as
each item's prior).

::

    from assay.quality import crowd_with_model
    fit = crowd_with_model(items, annotators, labels, pred_probs)
    fit.consensus_label, fit.consensus_quality, fit.annotator_quality

Answers are long rows ``(items[n], annotators[n], labels[n])``: ``items``
index the rows of ``pred_probs`` (``(N, K)``), ``labels`` are class codes
``0..K-1``. A row of NaN in ``pred_probs`` means "no prediction for this
item" (for example a validation item people label unaided): the learned
class prior stands in for it.

Why the model's prior matters: with a model in the loop most items stop
after one answer, and the items answered twice are mostly those whose
first answer disagreed with the model — a sample of the annotators'
mistakes. Skills learned from those alone come out too low. With the
model's (held-out) prediction as each item's prior, items with one answer
count too. Items with one answer and no prior are left out of the skill
fit (they would only "agree" with their annotator). Confusion rows are
shrunk towards each annotator's own overall accuracy (``DawidSkene(prior=
"one-coin")``): with many classes an annotator has few answers per class.

numpy only (plus :mod:`assay.quality`'s own estimators).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from assay.errors import InvalidInput

#: fewer usable answers than this: nothing to learn skills from
MIN_ANSWERS = 20
_TINY = 1e-12


@dataclass(frozen=True)
class CrowdModel:
    """What :func:`crowd_with_model` learned. Arrays over items are indexed
    like the rows of ``pred_probs``; arrays over annotators like
    ``annotators_`` (the distinct annotator ids, sorted)."""

    #: (N,) the consensus class of each item; -1 where it has no answer
    consensus_label: np.ndarray
    #: (N,) the posterior probability of that class (NaN without answers)
    consensus_quality: np.ndarray
    #: (N, K) posterior class probabilities (the item's prior where it has no answer)
    proba: np.ndarray
    #: (A,) annotator ids, sorted
    annotators_: np.ndarray
    #: (A, K, K) confusion matrices: row = true class, column = the answer
    confusion: np.ndarray
    #: (A,) each annotator's accuracy under the class prior (sum_k prior_k * confusion[k, k])
    annotator_quality: np.ndarray
    #: (A,) answers each annotator gave that the fit used
    answers_used: np.ndarray
    #: (K, K) what an annotator with no answers of their own is taken to be
    default_confusion: np.ndarray
    #: (K,) the learned class prior
    prior: np.ndarray
    #: w: the fit used ``pred_probs ** w`` (renormalised) as each item's prior
    #: (learned by default; 1.0: as given)
    prior_weight: float = 1.0

    def item_prior(self, pred_probs) -> np.ndarray:
        """``pred_probs`` as the fit weighs them: ``pred_probs ** prior_weight``,
        rows renormalised (NaN rows stay NaN)."""
        return weigh(pred_probs, self.prior_weight)

    def skills(self) -> dict[int, list[list[float]]]:
        """``{annotator id: K x K confusion as lists}`` (the stored form)."""
        return {int(u): self.confusion[j].tolist() for j, u in enumerate(self.annotators_)}


def _check(items, annotators, labels, pred_probs, gold):
    items = np.asarray(items, np.intp).ravel()
    annotators = np.asarray(annotators, np.int64).ravel()
    labels = np.asarray(labels, np.intp).ravel()
    pp = np.asarray(pred_probs, float)
    if pp.ndim != 2 or pp.shape[1] < 2:
        raise InvalidInput("pred_probs must be an (n_items, n_classes) array with at least 2 classes")
    n, k = pp.shape
    if not items.size == annotators.size == labels.size:
        raise InvalidInput("items, annotators and labels must have the same length")
    if items.size and (items.min() < 0 or items.max() >= n):
        raise InvalidInput(f"items must index the rows of pred_probs (0..{n - 1})")
    if labels.size and (labels.min() < 0 or labels.max() >= k):
        raise InvalidInput(f"labels must be class codes 0..{k - 1}")
    finite = np.isfinite(pp).all(axis=1)
    if (np.isnan(pp).any(axis=1) & ~np.isnan(pp).all(axis=1)).any():
        raise InvalidInput("a pred_probs row is either all probabilities or all NaN")
    if finite.any() and ((pp[finite] < 0).any() or not np.allclose(pp[finite].sum(axis=1), 1.0, atol=1e-6)):
        raise InvalidInput("pred_probs rows must be probabilities that sum to 1 (or all NaN)")
    if gold is not None:
        gold = np.asarray(gold, np.intp).ravel()
        if gold.size != n or (gold >= k).any():
            raise InvalidInput("gold must be (n_items,) class codes, -1 where unknown")
    return items, annotators, labels, pp, gold


def answer_loglik(items, annotators, labels, skills: dict, default, n_items: int, n_classes: int):
    """``(log_lik, n)``: the (n_items, K) sum of ``log P(answer | class)`` over
    each item's answers under ``skills`` (``{annotator id: K x K}``; ``default``
    for annotators without), and the answers per item. Answers add up in the
    order given."""
    ll = np.zeros((n_items, n_classes))
    items = np.asarray(items, np.intp)
    n = np.bincount(items, minlength=n_items).astype(np.intp)
    if items.size == 0:
        return ll, n
    users, inv = np.unique(np.asarray(annotators, np.int64), return_inverse=True)
    log_conf = np.log(np.maximum(np.array([np.asarray(skills.get(int(u), default), float) for u in users]), _TINY))
    # (answers, K): log P(given label | each true class)
    np.add.at(ll, items, log_conf[inv, :, np.asarray(labels, np.intp)])
    return ll, n


def admit_unseen(pred_probs) -> np.ndarray:
    """A model's probabilities made fit to be a prior: a class it gives
    exactly 0 (one it was never trained on: no logit at all) gets ``1 / K``,
    the rest share what is left in their proportions; NaN rows stay NaN.

    A model trained on the first few labels knows only the classes they
    happen to hold. Taken as given, its zeros rule the other classes out for
    every item: no answer can bring them back, the annotators' confusions
    are learned to explain those answers as mistakes, and the training
    labels decoded with them never hold those classes either — the loop
    locks itself onto the classes it saw first (on a weak 8-class crowd every
    final label fell in 3 classes). A model knows nothing of a class it never
    saw, which is what 1/K says."""
    pp = np.array(pred_probs, float)
    if pp.ndim != 2 or not pp.size:
        return pp
    k = pp.shape[1]
    ok = np.isfinite(pp).all(axis=1)
    zero = (pp == 0) & ok[:, None]
    rows = zero.any(axis=1) & ~zero.all(axis=1)
    if rows.any():
        share = 1.0 - zero[rows].sum(axis=1, keepdims=True) / k
        sub = pp[rows]
        pp[rows] = np.where(zero[rows], 1.0 / k, sub / sub.sum(axis=1, keepdims=True) * share)
    return pp


def weigh(pred_probs, weight: float) -> np.ndarray:
    """``pred_probs ** weight``, rows renormalised (a temperature of
    ``1 / weight`` on the log probabilities); NaN rows stay NaN."""
    pp = np.array(pred_probs, float)
    ok = np.isfinite(pp).all(axis=1) if pp.ndim == 2 else np.zeros(0, bool)
    if weight == 1.0 or not ok.any():
        return pp
    lp = weight * np.log(np.maximum(pp[ok], _TINY))
    e = np.exp(lp - lp.max(axis=1, keepdims=True))
    pp[ok] = e / e.sum(axis=1, keepdims=True)
    return pp


def crowd_with_model(items, annotators, labels, pred_probs, *, gold=None,
                     min_answers: int = MIN_ANSWERS, prior_weight: float | str = "learn") -> CrowdModel | None:
    """Fit annotator confusion matrices with the model's probabilities as
    each item's prior, and the consensus of every item.

    - ``items`` (n,): row of ``pred_probs`` each answer is about;
      ``annotators`` (n,): integer annotator ids; ``labels`` (n,): class codes.
    - ``pred_probs`` (N, K): the model's **held-out** probabilities (out-of-fold
      where it trained on the item: in-sample ones would flatter it); an all-NaN
      row: no prediction for that item.
    - ``gold`` (N,), optional: a known class per item, -1 where unknown; those
      items are clamped at it.
    - ``min_answers``: fewer usable answers than this returns None.
    - ``prior_weight``: the prior is ``pred_probs ** w`` (renormalised);
      ``"learn"`` (default): :func:`learn_prior_weight`, the ``w`` under
      which the answers are best predicted on items the skills were not
      learned on. A model whose temperature was fitted on noisy labels is
      under-confident about the truth, and a weak crowd's single answers
      would overrule it.

    Returns a :class:`CrowdModel`, or None when too few answers are usable
    (items with two or more answers, or one answer and a model prediction).
    """
    items, annotators, labels, pp, gold = _check(items, annotators, labels, pred_probs, gold)
    if prior_weight != "learn" and not (isinstance(prior_weight, (int, float)) and prior_weight > 0):
        raise InvalidInput(f"prior_weight must be 'learn' or a number > 0, got {prior_weight!r}")
    n_items, k = pp.shape
    from assay.quality import online
    from assay.quality.dawid_skene import DawidSkene

    has_prior = np.isfinite(pp).all(axis=1)
    per_item = np.bincount(items, minlength=n_items)
    use = has_prior[items] | (per_item[items] >= 2)
    if int(use.sum()) < min_answers:
        return None
    items_u, icode = np.unique(items[use], return_inverse=True)
    users_u, ucode = np.unique(annotators[use], return_inverse=True)
    g = None
    if gold is not None and (gold[items_u] >= 0).any():
        g = gold[items_u]
    w = (learn_prior_weight(items, annotators, labels, pp, gold=gold, min_answers=min_answers)
         if prior_weight == "learn" else float(prior_weight))
    pp = weigh(pp, w)
    ds = DawidSkene(prior="one-coin").fit(icode, ucode, labels[use], n_classes=k, n_items=len(items_u),
                                          item_prior=pp[items_u], gold=g)
    conf = np.asarray(ds.confusion_, float)
    prior = np.asarray(ds.prior_, float)
    used = np.bincount(ucode, minlength=len(users_u))
    default = np.asarray(online.crowd_confusion(conf, used), float)
    skills = {int(u): conf[j] for j, u in enumerate(users_u)}
    ll, n = answer_loglik(items, annotators, labels, skills, default, n_items, k)
    lp = np.where(has_prior[:, None], np.log(np.maximum(np.nan_to_num(pp), _TINY)), np.log(np.maximum(prior, _TINY)))
    lp = lp + ll
    proba = np.exp(lp - lp.max(axis=1, keepdims=True))
    proba /= proba.sum(axis=1, keepdims=True)
    if gold is not None:  # a known class is the consensus
        known = gold >= 0
        proba[known] = np.eye(k)[gold[known]]
    answered = n > 0
    label = np.where(answered, proba.argmax(axis=1), -1)
    quality = np.where(answered, proba.max(axis=1), np.nan)
    accuracy = np.einsum("k,akk->a", prior, conf)
    return CrowdModel(consensus_label=label, consensus_quality=quality, proba=proba, annotators_=users_u,
                      confusion=conf, annotator_quality=accuracy, answers_used=used,
                      default_confusion=default, prior=prior, prior_weight=w)


#: where :func:`learn_prior_weight` looks for ``w`` (a temperature of 1/10 to 10)
WEIGHT_RANGE = (0.1, 10.0)
#: golden-section steps of that search (the bracket ends within 3 % of w)
WEIGHT_STEPS = 12


def _heldout_loglik(items, annotators, labels, pp, gold, fold, w: float, min_answers: int) -> float | None:
    """The answers' log-likelihood on each fold's items under skills learned
    on the other fold with the prior ``pp ** w`` (summed over the two folds;
    None when a fold has too few usable answers)."""
    n_items, k = pp.shape
    pw = weigh(pp, w)
    total = 0.0
    for learn in (fold, ~fold):
        on = learn[items]
        fit = crowd_with_model(items[on], annotators[on], labels[on], np.where(learn[:, None], pp, np.nan),
                               gold=None if gold is None else np.where(learn, gold, -1), min_answers=min_answers,
                               prior_weight=w)
        if fit is None:
            return None
        ll, n = answer_loglik(items[~on], annotators[~on], labels[~on], fit.skills(), fit.default_confusion,
                              n_items, k)
        test = ~learn & (n > 0) & np.isfinite(pw).all(axis=1)
        if gold is not None:
            test &= gold < 0  # a known class: nothing to predict
        lp = np.log(np.maximum(pw[test], _TINY)) + ll[test]
        m = lp.max(axis=1)
        total += float((m + np.log(np.exp(lp - m[:, None]).sum(axis=1))).sum())
    return total


def learn_prior_weight(items, annotators, labels, pred_probs, *, gold=None, min_answers: int = MIN_ANSWERS,
                       seed: int = 0) -> float:
    """How much a model's probabilities are worth as each item's prior: the
    ``w`` (prior = ``pred_probs ** w``, renormalised) that best predicts the
    people's answers on items whose annotators' skills were learned without
    them (two folds of the items, each predicted from skills learned on the
    other; golden-section search over ``log w`` in :data:`WEIGHT_RANGE`).

    Held out, because in-sample the likelihood always prefers a sharper prior:
    with the posteriors pinned to the model's guess, every annotator's
    confusion matrix is re-fitted to agreement with the model and explains
    the answers as well, while the truth (two answers that agree with each
    other against the model) is what an unseen item's answers test. 1.0 when
    there is too little to learn from (fewer than ``min_answers`` usable
    answers in a fold). Arguments as :func:`crowd_with_model`'s."""
    items, annotators, labels, pp, gold = _check(items, annotators, labels, pred_probs, gold)
    n_items = pp.shape[0]
    fold = np.random.default_rng(seed).random(n_items) < 0.5
    cache: dict[float, float | None] = {}

    def score(log_w: float) -> float:
        if log_w not in cache:
            cache[log_w] = _heldout_loglik(items, annotators, labels, pp, gold, fold, float(np.exp(log_w)),
                                           min_answers)
        v = cache[log_w]
        return -np.inf if v is None else v

    if score(0.0) == -np.inf:
        return 1.0
    a, b = np.log(WEIGHT_RANGE[0]), np.log(WEIGHT_RANGE[1])
    g = (np.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    for _ in range(WEIGHT_STEPS):
        if score(c) > score(d):
            b, d = d, c
            c = b - g * (b - a)
        else:
            a, c = c, d
            d = a + g * (b - a)
    best = max(cache, key=lambda x: cache[x] if cache[x] is not None else -np.inf)
    return float(np.exp(best))


def annotator_accuracy(confusion, prior) -> float:
    """One annotator's accuracy under a class prior: ``sum_k prior_k * confusion[k, k]``."""
    return float(np.sum(np.asarray(prior) * np.diag(np.asarray(confusion))))
