"""From any ids and labels to integer codes and back: the edge between
people's data and the array algorithms (pandas is used here, for its fast
factorize, and nowhere inside the algorithms)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from assay.errors import InvalidInput


@dataclass(frozen=True)
class EncodedAnswers:
    """Integer codes plus the values they stand for.

    ``items``/``workers``/``labels``: (n,) int codes; ``item_ids``,
    ``worker_ids``, ``classes``: the original values, indexed by code
    (items and workers in order of first appearance).
    """

    items: np.ndarray
    workers: np.ndarray
    labels: np.ndarray
    item_ids: np.ndarray
    worker_ids: np.ndarray
    classes: np.ndarray

    def encode_gold(self, gold: Mapping | None) -> np.ndarray | None:
        """(n_items,) gold class codes, -1 where unknown; gold for items
        without answers is ignored. Labels must be among ``classes``."""
        if not gold:
            return None
        codes = np.full(self.item_ids.size, -1, np.intp)
        pos = pd.Index(self.item_ids).get_indexer(pd.Index(list(gold.keys()), dtype=object))
        cls = pd.Index(self.classes).get_indexer(pd.Index(list(gold.values()), dtype=object))
        if (cls < 0).any():
            bad = [v for v, c in zip(gold.values(), cls) if c < 0][:3]
            raise InvalidInput(f"gold labels not among the classes: {bad}")
        found = pos >= 0
        codes[pos[found]] = cls[found]
        return codes


def _natural_order(values) -> list:
    """Classes sorted numerically when they all look like numbers, else as text."""
    vals = list(values)
    try:
        return sorted(vals, key=lambda v: (float(v), str(v)))
    except (TypeError, ValueError):
        return sorted(vals, key=str)


def encode_answers(items: Sequence, workers: Sequence, labels: Sequence, *,
                   classes: Sequence | None = None, extra_labels: Sequence = ()) -> EncodedAnswers:
    """Code long answers. ``classes`` fixes the class list and its order
    (include classes nobody used); by default it is every label seen (plus
    ``extra_labels``, e.g. gold labels) in natural order."""
    items = np.asarray(items, dtype=object)
    workers = np.asarray(workers, dtype=object)
    labels = np.asarray(labels, dtype=object)
    if not (items.shape == workers.shape == labels.shape) or items.ndim != 1:
        raise InvalidInput("items, workers and labels must be 1-d and of the same length")
    if items.size == 0:
        raise InvalidInput("no answers to aggregate (empty input)")
    item_codes, item_ids = pd.factorize(items)
    worker_codes, worker_ids = pd.factorize(workers)
    if (item_codes < 0).any() or (worker_codes < 0).any() or pd.isna(labels).any():
        raise InvalidInput("answers have missing item, worker or label values")
    if classes is None:
        seen = pd.unique(np.concatenate([labels, np.asarray(list(extra_labels), dtype=object)]))
        classes = _natural_order(seen)
    classes = np.asarray(list(classes), dtype=object)
    if pd.Index(classes).has_duplicates:
        raise InvalidInput("classes must be unique")
    label_codes = pd.Index(classes).get_indexer(labels)
    if (label_codes < 0).any():
        bad = pd.unique(labels[label_codes < 0])[:3].tolist()
        raise InvalidInput(f"labels not among the given classes: {bad}")
    return EncodedAnswers(item_codes.astype(np.intp), worker_codes.astype(np.intp),
                          label_codes.astype(np.intp), np.asarray(item_ids, dtype=object),
                          np.asarray(worker_ids, dtype=object), classes)


@dataclass
class AggregateResult:
    """Decoded output of :func:`aggregate`.

    ``item_ids`` (n_items,), ``labels`` (n_items,) class values,
    ``confidence`` (n_items,) posterior of the chosen label, ``proba``
    (n_items, K) with columns ``classes``; ``worker_ids`` and ``model`` (the
    fitted estimator: ``model.accuracy_``, ``model.confusion_``, ...).
    """

    item_ids: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray
    proba: np.ndarray
    classes: np.ndarray
    worker_ids: np.ndarray
    model: object

    def to_frame(self) -> pd.DataFrame:
        """One row per item: ``item, label, confidence``."""
        return pd.DataFrame({"item": self.item_ids, "label": self.labels, "confidence": self.confidence})

    def workers_frame(self) -> pd.DataFrame:
        """One row per worker: ``worker, answers, accuracy``."""
        m = self.model
        return pd.DataFrame({"worker": self.worker_ids, "accuracy": m.accuracy_})


def aggregate(items: Sequence, workers: Sequence, labels: Sequence, *, method: str = "auto",
              gold: Mapping | None = None, classes: Sequence | None = None, **params) -> AggregateResult:
    """Infer one label per item from answers with any hashable ids and labels.

    ``gold`` maps item id -> known label; those items are clamped to it.
    ``classes`` fixes the class list. ``params`` go to the estimator
    (see :data:`assay.quality.METHODS`).
    """
    from assay.quality import make_aggregator

    model = make_aggregator(method, **params)
    enc = encode_answers(items, workers, labels, classes=classes,
                         extra_labels=list(gold.values()) if gold and classes is None else ())
    model.fit(enc.items, enc.workers, enc.labels, gold=enc.encode_gold(gold),
              n_items=enc.item_ids.size, n_workers=enc.worker_ids.size, n_classes=enc.classes.size)
    conf = model.proba_[np.arange(enc.item_ids.size), model.labels_]
    return AggregateResult(enc.item_ids, enc.classes[model.labels_], conf, model.proba_, enc.classes,
                           enc.worker_ids, model)
