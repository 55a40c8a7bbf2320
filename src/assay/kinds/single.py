"""Single-label classification: an answer is one class name."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from assay.errors import InvalidInput
from assay.kinds.base import LabelKind, class_names


class Single(LabelKind):
    """One class per item (sentiment, topic, yes/no): answers are compared and
    aggregated into a consensus with a confidence."""

    name = "single"
    widget = "single"
    title = "single label"
    aggregatable = True
    ls_choice = "single"

    def validate(self, label: Any, schema: dict) -> str:
        names = class_names(schema)
        if not isinstance(label, str):
            raise InvalidInput(f"label must be one class name (a string), one of {names}")
        if label not in names:
            raise InvalidInput(f"unknown class {label!r}: the project's classes are {names}")
        return label

    def majority(self, labels: Sequence[Any], classes: Sequence[str] | None = None) -> tuple[Any, float | None]:
        """The most frequent label (ties: the one given first) and its share."""
        if not labels:
            return None, None
        counts = Counter(labels)
        best = max(counts.values())
        label = next(lab for lab in labels if counts[lab] == best)
        return label, best / len(labels)

    def codes(self, labels: Sequence[Any], classes: Sequence[str]) -> list[int]:
        """Class indices for :mod:`assay.quality`'s estimators (-1: not a class)."""
        code_of = {c: i for i, c in enumerate(classes)}
        return [code_of.get(lab, -1) for lab in labels]

    def from_choices(self, known: list[str], classes: Sequence[str]) -> Any:
        return known[0] if known else None

    def from_ls_choices(self, chosen: list[str], where: str) -> Any:
        if len(chosen) > 1:
            raise InvalidInput(f"{where}: a single-label project takes one choice, got {len(chosen)}")
        return chosen[0] if chosen else None

    def hf_columns(self, ds: Any, cls: Any) -> dict:
        """``label``: a ``ClassLabel`` (-1: no final label yet)."""
        return {"label": cls}

    def hf_values(self, label: Any, idx: dict[str, int], rec: dict) -> dict:
        return {"label": -1 if label is None else idx[label]}

    def proba(self, label: Any, score: float, classes: Sequence[str]) -> list[float]:
        """The chosen class gets ``score``, the others share the rest evenly."""
        k = len(classes)
        rest = (1.0 - score) / (k - 1) if k > 1 else 0.0
        return [round(score if n == label else rest, 6) for n in classes]

    def known_log_posterior(self, label: Any, classes: Sequence[str]) -> list[float]:
        return [0.0 if c == label else -1e9 for c in classes]
