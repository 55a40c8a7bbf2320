"""Truth inference: one label per item from several people's answers, plus
how good each person is.

Every aggregator is an sklearn-style estimator over long, integer-coded
answers ``(items[n], workers[n], labels[n])``::

    from assay.quality import DawidSkene
    model = DawidSkene().fit(items, workers, labels)
    model.labels_, model.proba_, model.confusion_, model.accuracy_

For string ids and labels use :func:`aggregate`, which codes them, fits and
decodes the result. ``make_aggregator("auto")`` builds one by name.

With a classifier's probabilities as well, :func:`crowd_with_model` gives
consensus labels, their quality and each annotator's quality from both
(the shape of cleanlab's CROWDLAB).
"""

from __future__ import annotations

from assay.errors import InvalidInput
from assay.quality._base import Aggregator
from assay.quality.auto import Auto
from assay.quality.boxes import BoxConsensus, BoxInputError, aggregate_boxes, fit_boxes, score_boxes
from assay.quality.bwa import BWA
from assay.quality.coding import AggregateResult, EncodedAnswers, aggregate, encode_answers
from assay.quality.crowd_model import CrowdModel, crowd_with_model
from assay.quality.dawid_skene import DawidSkene, OneCoinDawidSkene
from assay.quality.ebcc import BCC, EBCC
from assay.quality.glad import GLAD
from assay.quality.mace import MACE
from assay.quality.majority import MajorityVote, Wawa
from assay.quality.minimax import MinimaxEntropy
from assay.quality.spans import SequenceCrowd, SpanInputError, TokenDawidSkene, TokenMajorityVote, aggregate_spans

#: method name -> estimator class (the names the CLI accepts)
METHODS: dict[str, type[Aggregator]] = {
    "auto": Auto,
    "mv": MajorityVote,
    "wawa": Wawa,
    "one-coin": OneCoinDawidSkene,
    "ds": DawidSkene,
    "glad": GLAD,
    "mace": MACE,
    "bwa": BWA,
    "bcc": BCC,
    "ebcc": EBCC,
    "minimax": MinimaxEntropy,
}


def make_aggregator(method: str = "auto", **params) -> Aggregator:
    """Build an aggregator by name (see :data:`METHODS`) with its parameters."""
    try:
        cls = METHODS[method]
    except KeyError:
        raise InvalidInput(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}") from None
    try:
        return cls(**params)
    except TypeError as exc:
        raise InvalidInput(f"bad parameters for method {method!r}: {exc}") from None


__all__ = [
    "BCC", "EBCC", "METHODS", "AggregateResult", "Aggregator", "Auto", "BWA", "CrowdModel", "DawidSkene",
    "EncodedAnswers",
    "GLAD", "MACE", "MajorityVote", "MinimaxEntropy", "OneCoinDawidSkene", "Wawa", "aggregate",
    "crowd_with_model", "encode_answers", "make_aggregator",
    # spans and boxes (one JSON row per item: assay aggregate ANSWERS.jsonl)
    "BoxConsensus", "BoxInputError", "SequenceCrowd", "SpanInputError", "TokenDawidSkene", "TokenMajorityVote",
    "aggregate_boxes", "aggregate_spans", "fit_boxes", "score_boxes",
]
