"""Multi-label truth inference: binary relevance.

Each answer is a *set* of classes. For every class, "did this worker put
the class in the set?" is a binary answer about the item, and any
single-label aggregator (default ``auto``) infers it from the crowd with a
per-worker model of that decision. The item's label set is every class
whose posterior probability of being present is at least 0.5.

The classes are treated independently given the item (the usual
binary-relevance assumption, as in crowd-kit's ``BinaryRelevance``); the
probability of the whole set is the product of the per-class probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from assay.errors import InvalidInput


class BinaryRelevance:
    """One binary aggregator per class over integer-coded answers.

    ``fit(items, workers, chosen)``: ``chosen`` is an (n, K) 0/1 matrix, row
    ``j`` the classes answer ``j`` picked (an empty row is a valid answer:
    "none of these"). ``gold``: optional (n_items, K) matrix of 1 (present),
    0 (absent) or -1 (unknown).

    Fitted: ``proba_`` (n_items, K) P(class present), ``labels_`` (n_items,
    K) bool, ``set_confidence_`` (n_items,) probability of the chosen set,
    ``accuracy_`` (n_workers,) mean per-class accuracy, ``models_`` the K
    fitted binary aggregators (their ``confusion_`` etc.).
    """

    def __init__(self, *, method: str = "auto", threshold: float = 0.5, **params) -> None:
        if not 0.0 < threshold < 1.0:
            raise InvalidInput("threshold must be between 0 and 1")
        self.method = method
        self.threshold = threshold
        self.params = params

    def fit(self, items, workers, chosen, *, gold=None, n_items: int | None = None,
            n_workers: int | None = None) -> BinaryRelevance:
        from assay.quality import make_aggregator

        chosen = np.asarray(chosen)
        items = np.asarray(items)
        if chosen.ndim != 2 or chosen.shape[0] != items.shape[0]:
            raise InvalidInput("chosen must be an (n_answers, n_classes) 0/1 matrix, one row per answer")
        if chosen.shape[0] == 0:
            raise InvalidInput("no answers to aggregate (empty input)")
        if not np.isin(chosen, (0, 1)).all():
            raise InvalidInput("chosen must hold only 0 and 1")
        k = chosen.shape[1]
        n_items = int(items.max()) + 1 if n_items is None else n_items
        if gold is not None:
            gold = np.asarray(gold)
            if gold.shape != (n_items, k):
                raise InvalidInput(f"gold must have shape (n_items, n_classes) = {(n_items, k)}")
        self.models_ = []
        proba = np.empty((n_items, k))
        acc = []
        for c in range(k):
            m = make_aggregator(self.method, **self.params)
            m.fit(items, workers, chosen[:, c].astype(np.intp), n_items=n_items, n_workers=n_workers,
                  n_classes=2, gold=None if gold is None else gold[:, c].astype(np.intp))
            proba[:, c] = m.proba_[:, 1]
            acc.append(m.accuracy_)
            self.models_.append(m)
        self.proba_ = proba
        self.labels_ = proba >= self.threshold
        self.set_confidence_ = np.where(self.labels_, proba, 1.0 - proba).prod(axis=1)
        with np.errstate(invalid="ignore"):
            self.accuracy_ = np.nanmean(np.vstack(acc), axis=0) if k else np.zeros(0)
        return self


@dataclass
class MultiLabelResult:
    """Decoded output of :func:`aggregate_multilabel`: per item the list of
    classes (``labels``), the set's probability (``confidence``) and the
    per-class probabilities (``proba``, columns ``classes``)."""

    item_ids: np.ndarray
    labels: list[list]
    confidence: np.ndarray
    proba: np.ndarray
    classes: np.ndarray
    worker_ids: np.ndarray
    model: BinaryRelevance

    def to_frame(self, sep: str = "|") -> pd.DataFrame:
        return pd.DataFrame({"item": self.item_ids, "label": [sep.join(map(str, x)) for x in self.labels],
                             "confidence": self.confidence})


def aggregate_multilabel(items: Sequence, workers: Sequence, label_sets: Sequence[Sequence], *,
                         method: str = "auto", classes: Sequence | None = None,
                         gold: Mapping | None = None, **params) -> MultiLabelResult:
    """Multi-label aggregation over any ids: ``label_sets[j]`` is the list of
    classes answer ``j`` chose. ``gold`` maps item id -> its true list of
    classes. ``classes`` fixes the class list (default: every class seen,
    sorted)."""
    items = np.asarray(items, dtype=object)
    workers = np.asarray(workers, dtype=object)
    if items.ndim != 1 or items.shape != workers.shape or len(label_sets) != items.size:
        raise InvalidInput("items, workers and label sets must be 1-d and of the same length")
    if items.size == 0:
        raise InvalidInput("no answers to aggregate (empty input)")
    sets = [list(s) for s in label_sets]
    if classes is None:
        seen = {c for s in sets for c in s} | {c for s in (gold or {}).values() for c in s}
        classes = sorted(seen, key=str)
    classes = np.asarray(list(classes), dtype=object)
    index = {c: i for i, c in enumerate(classes)}
    if len(index) != classes.size:
        raise InvalidInput("classes must be unique")
    icode, item_ids = pd.factorize(items)
    wcode, worker_ids = pd.factorize(workers)
    if (icode < 0).any() or (wcode < 0).any():
        raise InvalidInput("answers have missing item or worker values")
    chosen = np.zeros((items.size, classes.size), np.intp)
    for j, s in enumerate(sets):
        for c in s:
            if c not in index:
                raise InvalidInput(f"label {c!r} is not among the classes {classes.tolist()}")
            chosen[j, index[c]] = 1
    gold_m = None
    if gold:
        gold_m = np.full((item_ids.size, classes.size), -1, np.intp)
        pos = pd.Index(item_ids).get_indexer(pd.Index(list(gold.keys()), dtype=object))
        for p, s in zip(pos, gold.values()):
            if p < 0:
                continue  # gold for an item without answers
            gold_m[p] = 0
            for c in s:
                if c not in index:
                    raise InvalidInput(f"gold label {c!r} is not among the classes {classes.tolist()}")
                gold_m[p, index[c]] = 1
    model = BinaryRelevance(method=method, **params).fit(
        icode, wcode, chosen, gold=gold_m, n_items=item_ids.size, n_workers=worker_ids.size)
    labels = [classes[row].tolist() for row in model.labels_]
    return MultiLabelResult(np.asarray(item_ids, dtype=object), labels, model.set_confidence_, model.proba_,
                            classes, np.asarray(worker_ids, dtype=object), model)
