"""Text spans (named entities and the like): an answer is a list of
``[start, end, label]`` — character offsets into the item's text, ``end``
exclusive, ``label`` one of the schema's classes (the entity types). The
empty list is the explicit "no entity" answer.

The stored form is canonical: spans sorted by ``(start, end, label)``,
duplicates removed. The schema's ``overlap`` (default false) says whether
two spans may share characters. Consensus over a crowd with each worker's
skill per entity type: :mod:`assay.quality.spans`; here, the plain vote
(spans that at least half of the answers hold, exact match).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from assay.errors import InvalidInput
from assay.kinds.base import LabelKind, class_list, class_names, region_labels

#: the most spans one answer may hold
MAX_SPANS = 10_000


class Spans(LabelKind):
    """Text spans, each with a class (named entities): select characters of the
    text and give them a class."""

    name = "spans"
    widget = "spans"
    title = "text spans"
    options = {"overlap": {"type": "boolean", "default": False,
                           "description": "Spans may share characters (nested or overlapping entities)."}}
    checks_item = True
    formats = ("spacy", "conll")
    ls_tag = "Labels"

    def _ls_region(self, r: dict, names: Sequence[str]) -> tuple[list, list[str], str | None]:
        """A Label Studio ``labels`` region (``start``, ``end``: character offsets) as spans."""
        v = r.get("value")
        if not isinstance(v, dict):
            return [], [], "a labels region needs a value object"
        for key in ("start", "end"):
            if type(v.get(key)) is not int:
                return [], [], f"value.{key} must be a number (a labels region's character offset, an integer)"
        known, unknown, why = region_labels(v, "labels", names)
        return [[v["start"], v["end"], lab] for lab in known], unknown, why

    def to_ls_results(self, label: Any, to: str, *, text: str | None = None,
                      size: tuple[int, int] | None = None) -> list[dict]:
        """One ``labels`` region per span, with the text it covers."""
        return [self._ls_result(to, {"start": s, "end": e, "text": (text or "")[s:e], "labels": [lab]})
                for s, e, lab in label]

    def hf_columns(self, ds: Any, cls: Any) -> dict:
        """``spans``: a list of ``{start, end, label}`` (None: no final label yet)."""
        return {"spans": ds.List({"start": ds.Value("int32"), "end": ds.Value("int32"), "label": cls})}

    def hf_values(self, label: Any, idx: dict[str, int], rec: dict) -> dict:
        return {"spans": None if label is None else [{"start": s, "end": e, "label": idx[c]} for s, e, c in label]}

    def normalize_schema(self, spec: dict | None) -> dict:
        """Classes (the entity types), instructions and ``overlap`` (bool,
        default false: spans that share characters are refused)."""
        spec = dict(spec or {})
        overlap = spec.get("overlap", False)
        if not isinstance(overlap, bool):
            raise InvalidInput(f"a span schema's overlap must be true or false, got {overlap!r}")
        return {"classes": class_list(spec), "instructions": str(spec.get("instructions") or ""),
                "overlap": overlap}

    def validate(self, label: Any, schema: dict) -> list[list]:
        names = class_names(schema)
        if not isinstance(label, list):
            raise InvalidInput("a span answer is a list of [start, end, label] ([] for no entity), "
                               f"got {_short(label)}")
        if len(label) > MAX_SPANS:
            raise InvalidInput(f"an answer holds at most {MAX_SPANS} spans, got {len(label)}")
        known = set(names)
        out = sorted({_span(s, known, names) for s in label})
        if not schema.get("overlap", False):
            for (s0, e0, l0), (s1, e1, l1) in zip(out, out[1:]):
                if s1 < e0:
                    raise InvalidInput(f"spans [{s0}, {e0}, {l0!r}] and [{s1}, {e1}, {l1!r}] overlap; "
                                       "this project does not allow overlapping spans")
        return [list(s) for s in out]

    def check_item(self, label: Any, item: dict) -> None:
        """Spans must fall inside the item's text (``item``: its ``kind`` and ``text``)."""
        if not label:
            return
        text = item.get("text")
        if item.get("kind") != "text" or not isinstance(text, str):
            raise InvalidInput("spans are marked on a text item; this item has no text")
        end = max(s[1] for s in label)
        if end > len(text):
            raise InvalidInput(f"a span ends at {end}, past the end of the item's text ({len(text)} characters)")

    def majority(self, labels: Sequence[Any], classes: Sequence[str] | None = None) -> tuple[Any, float | None]:
        """The spans that at least half of the answers hold (exact start,
        end and label), sorted; the confidence is the mean, over every span
        anyone marked, of the share of answers that agree with the decision
        on it (1.0 when every answer is "no entity")."""
        if not labels:
            return None, None
        n = len(labels)
        counts = Counter(tuple(s) for lab in labels for s in {tuple(x) for x in lab or ()})
        kept = sorted(s for s, k in counts.items() if k >= n / 2)
        if not counts:
            return [], 1.0
        agree = sum(max(k, n - k) for k in counts.values()) / (n * len(counts))
        return [list(s) for s in kept], agree

    def same(self, a: Any, b: Any) -> bool:
        """The same set of spans (order and duplicates aside)."""
        return _as_set(a) == _as_set(b)

    def score(self, label: Any, known: Any) -> float:
        """Exact-span F1: a span counts when its start, end and label all
        match one of the other's; both empty: 1.0."""
        a, b = _as_set(label), _as_set(known)
        if not a and not b:
            return 1.0
        return 2 * len(a & b) / (len(a) + len(b))

    def export_columns(self, label: Any) -> dict:
        """The spans as JSON text (``[[0,5,"PER"]]``; ``[]``: no entity)."""
        return {"label": None if label is None else orjson.dumps(label).decode()}

    def parse_text(self, cell: str) -> Any:
        """Spans written as JSON in a text cell (``[[0, 5, "PER"]]``; empty: no entity)."""
        if not isinstance(cell, str):
            return cell
        if not cell.strip():
            return []
        try:
            return orjson.loads(cell)
        except orjson.JSONDecodeError:
            raise InvalidInput(f"spans are written as JSON, e.g. [[0, 5, \"PER\"]]; got {cell[:60]!r}") from None

    def to_choices(self, label: Any) -> list[str]:
        raise InvalidInput(f"{self.title} projects do not take Label Studio choices")

    merges_answers = True

    def item_consensus(self, labels: Sequence[Any], schema: dict) -> tuple[Any, float]:
        """Token-level majority vote (:func:`assay.quality.spans.aggregate_spans`,
        ``mv``) over the item's answers: the spans, and the chance that every
        token's tag is right."""
        _, got = self.fit_consensus([(0, w, lab) for w, lab in enumerate(labels)], schema, method="mv")
        return got.get(0, ([], 0.0))

    def fit_consensus(self, rows: Sequence[tuple[int, int, Any]], schema: dict,
                      method: str = "auto") -> tuple[str, dict]:
        """:func:`assay.quality.spans.aggregate_spans` over every answer
        (``auto``: majority vote or token Dawid-Skene, by a held-out check)."""
        from assay.quality.spans import aggregate_spans, choose_method, encode_span_rows

        rows = [{"item": i, "worker": w, "spans": lab} for i, w, lab in rows if isinstance(lab, list)]
        if not rows:
            return method, {}
        labels = class_names(schema)
        if method == "auto":
            method, _ = choose_method(encode_span_rows(rows, labels=labels)[2], candidates=("mv", "ds"))
        out = aggregate_spans(rows, method=method, labels=labels)
        return method, {r["item"]: ([list(s[:3]) for s in r["spans"]], float(r["confidence"])) for r in out}


def _span(s: Any, known: set, names: list[str]) -> tuple[int, int, str]:
    if not isinstance(s, list | tuple) or len(s) != 3:
        raise InvalidInput(f"a span is [start, end, label], got {_short(s)}")
    start, end, lab = s
    if type(start) is not int or type(end) is not int:
        raise InvalidInput(f"span offsets are integers, got {_short(s)}")
    if start < 0 or start >= end:
        raise InvalidInput(f"a span needs 0 <= start < end, got {_short(s)}")
    if not isinstance(lab, str) or lab not in known:
        raise InvalidInput(f"unknown span label {_short(lab)}: the project's classes are {names}")
    return start, end, lab


def _as_set(v: Any) -> set:
    if not isinstance(v, list):
        return {v} if v is not None else set()
    return {tuple(s) if isinstance(s, list) else s for s in v}


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."
