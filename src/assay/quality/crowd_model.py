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


def crowd_with_model(items, annotators, labels, pred_probs, *, gold=None,
                     min_answers: int = MIN_ANSWERS) -> CrowdModel | None:
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

    Returns a :class:`CrowdModel`, or None when too few answers are usable
    (items with two or more answers, or one answer and a model prediction).
    """
    items, annotators, labels, pp, gold = _check(items, annotators, labels, pred_probs, gold)
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
                      default_confusion=default, prior=prior)


def annotator_accuracy(confusion, prior) -> float:
    """One annotator's accuracy under a class prior: ``sum_k prior_k * confusion[k, k]``."""
    return float(np.sum(np.asarray(prior) * np.diag(np.asarray(confusion))))
