"""Annotator skills on items whose label is known (gold, a reviewer's
decision), for labels that are sets of things: shapes and spans.

Pure functions over plain lists; what counts as a match is the label kind's
rule (:meth:`assay.kinds.shapes.Boxes.matches`: one to one, same class, IoU
>= 0.5; spans: the exact start, end and type), worked out by the caller.

- :func:`shape_skills`: per annotator, precision (share of their shapes that
  match a known one), recall (share of known shapes they found) and the mean
  IoU of their matched shapes (localisation: 1 - mean IoU is the error);
- :func:`span_skills`: per annotator and entity type, precision, recall and
  F1 of exact spans, and the same over all types.

Rates are None where nothing counts (no shapes drawn: no precision).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence


def _rate(hits: float, n: float) -> float | None:
    return hits / n if n else None


def _prf(tp: int, predicted: int, true: int) -> dict:
    return {"matched": tp, "predicted": predicted, "true": true, "precision": _rate(tp, predicted),
            "recall": _rate(tp, true), "f1": _rate(2 * tp, predicted + true)}


def shape_skills(records: Iterable[tuple[Hashable, int, int, Sequence[float]]]) -> dict:
    """``records``: one per (annotator, known item): ``(annotator, shapes they
    drew, known shapes, IoUs of their matched pairs)``. Returns annotator ->
    ``{items, matched, predicted, true, precision, recall, f1, mean_iou}``."""
    acc: dict = {}
    for who, n_drawn, n_true, ious in records:
        if len(ious) > min(n_drawn, n_true):
            raise ValueError(f"annotator {who!r}: more matches ({len(ious)}) than shapes")
        a = acc.setdefault(who, [0, 0, 0, 0.0, 0])
        a[0] += n_drawn
        a[1] += n_true
        a[2] += len(ious)
        a[3] += float(sum(ious))
        a[4] += 1
    return {who: {"items": items, **_prf(tp, drawn, true), "mean_iou": _rate(iou, tp)}
            for who, (drawn, true, tp, iou, items) in acc.items()}


def _span_set(spans: Iterable) -> set[tuple]:
    return {tuple(s) for s in spans or ()}


def span_skills(records: Iterable[tuple[Hashable, Sequence, Sequence]]) -> dict:
    """``records``: ``(annotator, their spans, known spans)`` per known item,
    spans as ``[start, end, type]``. Returns annotator -> ``{items, overall,
    types}``: ``overall`` and each ``types[type]`` hold ``matched, predicted,
    true, precision, recall, f1`` (a span matches when start, end and type are
    the same). Every type seen in either side is listed."""
    acc: dict = {}
    for who, answer, known in records:
        got, truth = _span_set(answer), _span_set(known)
        a = acc.setdefault(who, {"items": 0, "types": {}})
        a["items"] += 1
        for spans, col in ((got & truth, 0), (got, 1), (truth, 2)):
            for s in spans:
                a["types"].setdefault(s[2], [0, 0, 0])[col] += 1
    out = {}
    for who, a in acc.items():
        types = {t: _prf(*c) for t, c in sorted(a["types"].items())}
        total = [sum(c[i] for c in a["types"].values()) for i in range(3)]
        out[who] = {"items": a["items"], "overall": _prf(*total), "types": types}
    return out
