"""Multi-label classification: an answer is a set of class names (stored as
a list in the schema's class order; the empty list means "none of these").
Aggregation over a crowd: :mod:`assay.quality.multilabel`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from assay.errors import InvalidInput
from assay.kinds.base import LabelKind, class_names


class Multi(LabelKind):
    """Any number of the classes per item (tags): choose them, then submit."""

    name = "multi"
    widget = "multi"
    title = "multi-label"
    ls_choice = "multiple"

    def validate(self, label: Any, schema: dict) -> list[str]:
        names = class_names(schema)
        if isinstance(label, str):
            label = [label]
        if not isinstance(label, list) or not all(isinstance(x, str) for x in label):
            raise InvalidInput(f"label must be a list of class names from {names}")
        unknown = [x for x in label if x not in names]
        if unknown:
            raise InvalidInput(f"unknown class(es) {unknown}: the project's classes are {names}")
        chosen = set(label)
        return [n for n in names if n in chosen]  # canonical order, no duplicates

    def same(self, a: Any, b: Any) -> bool:
        """The same set of classes (a lone class name counts as a set of one)."""
        return _as_set(a) == _as_set(b)

    def majority(self, labels: Sequence[Any], classes: Sequence[str] | None = None) -> tuple[Any, float | None]:
        """Every class chosen by at least half of the answers, in the order
        of ``classes`` (else first seen); no confidence (the classes are
        decided one by one)."""
        if not labels:
            return None, None
        counts = Counter(c for lab in labels for c in lab)
        need = len(labels) / 2
        seen = classes or list(dict.fromkeys(c for lab in labels for c in lab))
        order = {c: i for i, c in enumerate(seen)}
        return sorted([c for c, k in counts.items() if k >= need], key=order.get), None

    def parse_text(self, cell: str) -> Any:
        """Classes joined by ``|`` (``a|b``)."""
        return [c for c in cell.split("|") if c] if isinstance(cell, str) else cell

    def codes(self, labels: Sequence[Any], classes: Sequence[str]) -> list[list[int]]:
        """One 0/1 row per answer (``chosen`` of :class:`~assay.quality.multilabel.BinaryRelevance`)."""
        return [[int(c in set(lab)) for c in classes] for lab in labels]

    def from_choices(self, known: list[str], classes: Sequence[str]) -> Any:
        if not known:
            return None
        chosen = set(known)
        return [n for n in classes if n in chosen]

    def from_ls_choices(self, chosen: list[str], where: str) -> Any:
        return list(chosen)

    def hf_columns(self, ds: Any, cls: Any) -> dict:
        """``labels``: a list of ``ClassLabel`` (None: no final label yet)."""
        return {"labels": ds.List(cls)}

    def hf_values(self, label: Any, idx: dict[str, int], rec: dict) -> dict:
        return {"labels": None if label is None else [idx[c] for c in label]}

    def proba(self, label: Any, score: float, classes: Sequence[str]) -> list[float]:
        """Chosen classes get ``score``, the others ``1 - score``."""
        chosen = _as_set(label)
        return [round(score if n in chosen else 1.0 - score, 6) for n in classes]


def _as_set(v: Any) -> set:
    if v is None:
        return set()
    return set(v) if isinstance(v, (list, tuple, set)) else {v}
