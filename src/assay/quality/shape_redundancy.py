"""Adaptive redundancy for shapes (boxes and spans), replayed on answers that
were all collected: how many answers would a "stop when settled" policy have
needed, and how close does its consensus stay to the one from every answer?

    from assay.quality.shape_redundancy import replay_adaptive
    out = replay_adaptive(rows, "boxes", truth=truth, seed=0)
    out["share"], out["vs_consensus"]["f1"], out["vs_truth"]["f1"], out["all_vs_truth"]["f1"]

The replay (one seeded random order of each item's real answers):

1. every item starts with ``start`` >= 2 answers (or all it has, if fewer);
2. a *round*: the consensus (:func:`assay.quality.boxes.fit_boxes` or
   :func:`assay.quality.spans.aggregate_spans`) is fitted on every answer
   revealed so far, so the annotators' skills are re-learned each round from
   the answers used up to then (a round adds at most one answer per open item,
   so skills are re-fitted at least as often as at every 25 % growth);
3. an item is *settled* when its merged result's confidence is at least
   ``target``. That confidence is the chance that every keep/drop call on the
   item is right (boxes: every cluster kept or dropped, and no object missed
   by everyone; spans: every token's tag), so it is high only when every fused
   box or span sits far from 0.5 and nothing is likely to have been missed;
   settled items get no more answers, the others get one more, up to
   ``max_answers`` or what the item has;
4. rounds repeat until no item is open; the final consensus is fitted once on
   every answer used (as it would be in production).

The rule uses nothing but the model's own confidence on the answers used; no
truth and no threshold learned on any labelled set (``target`` is a stated
risk level, 0.99 by default: about one wrong call in a hundred items). See docs/boxes.md and docs/spans.md for the
measured tables.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np

KINDS = ("boxes", "spans")

__all__ = ["KINDS", "replay_adaptive", "score_spans"]


def _group(rows: Iterable[Mapping], kind: str) -> tuple[list, dict]:
    key = "boxes" if kind == "boxes" else "spans"
    by_item: dict = {}
    for n, r in enumerate(rows):
        if not isinstance(r, Mapping) or "item" not in r or "worker" not in r or key not in r:
            raise ValueError(f"answer row {n}: needs 'item', 'worker' and '{key}'")
        by_item.setdefault(r["item"], []).append(r)
    if not by_item:
        raise ValueError("no answers to replay")
    return list(by_item), by_item


def _check(kind, start, max_answers, target):
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}")
    if isinstance(start, bool) or not isinstance(start, int) or start < 2:
        # one answer is no agreement: the vote calls a lone answer certain (measured: with start=1
        # pedestrians_a stopped at 14 % of the answers and lost 0.05 F1)
        raise ValueError(f"start must be an integer >= 2 (one answer cannot be checked), got {start!r}")
    if max_answers is not None and (isinstance(max_answers, bool) or not isinstance(max_answers, int)
                                    or max_answers < start):
        raise ValueError(f"max_answers must be an integer >= start ({start}), got {max_answers!r}")
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not 0.0 < target < 1.0:
        raise ValueError(f"target must be a number strictly between 0 and 1, got {target!r}")


def _fit(kind: str, rows: list, items, method: str, seed: int) -> list[dict]:
    if kind == "boxes":
        from assay.quality.boxes import aggregate_boxes
        return aggregate_boxes(rows, items, method)
    from assay.quality.spans import aggregate_spans
    return aggregate_spans(rows, items, method, seed=seed)


def _shapes(kind: str, result: list[dict]) -> dict:
    key = "boxes" if kind == "boxes" else "spans"
    return {r["item"]: [s[:-1] for s in r[key]] for r in result}


def score_spans(pred, truth) -> dict:
    """Exact-span precision, recall and F1 of ``pred`` against ``truth`` over
    the items in ``truth`` (a span counts when item, start, end and label all
    match). Both: rows ``{"item", "spans"}`` or a dict item -> spans; a
    fourth value in a span (a confidence) is ignored."""
    p_by = pred if isinstance(pred, Mapping) else {r["item"]: r["spans"] for r in pred}
    t_by = truth if isinstance(truth, Mapping) else {r["item"]: r["spans"] for r in truth}
    n_pred = n_true = tp = 0
    for item, t in t_by.items():
        ts = {tuple(s[:3]) for s in t}
        ps = {tuple(s[:3]) for s in p_by.get(item, [])}
        n_pred, n_true, tp = n_pred + len(ps), n_true + len(ts), tp + len(ps & ts)
    return {"precision": tp / n_pred if n_pred else math.nan, "recall": tp / n_true if n_true else math.nan,
            "f1": 2 * tp / (n_pred + n_true) if n_pred + n_true else math.nan,
            "matched": tp, "predicted": n_pred, "true": n_true, "items": len(t_by)}


def _score(kind: str, pred: dict, truth) -> dict:
    if kind == "boxes":
        from assay.quality.boxes import score_boxes
        return score_boxes(pred, truth)
    return score_spans(pred, truth)


def _order(order_items: list, by_item: dict, seed: int) -> dict:
    """Each item's answers in one seeded random order (the order they 'arrive')."""
    rng = np.random.default_rng(seed)
    return {it: [by_item[it][j] for j in rng.permutation(len(by_item[it]))] for it in order_items}


def _rounds(kind, ordered, cap, start, target, items, method, seed) -> tuple[dict, int]:
    """Reveal answers round by round; returns item -> answers used, and the number of fits."""
    used = {it: min(start, cap[it]) for it in ordered}
    open_items = {it for it in ordered if used[it] < cap[it]}
    fits = 0
    while open_items:
        rows = [r for it, rs in ordered.items() for r in rs[:used[it]]]
        result = _fit(kind, rows, items, method, seed)
        fits += 1
        conf = {r["item"]: r["confidence"] for r in result}
        settled = {it for it in open_items if conf.get(it, 0.0) >= target}
        for it in open_items - settled:
            used[it] += 1
        open_items = {it for it in open_items - settled if used[it] < cap[it]}
    return used, fits


def replay_adaptive(rows: Iterable[Mapping], kind: str, *, start: int = 2, max_answers: int | None = None,
                    target: float = 0.99, seed: int = 0, items=None, method: str = "auto",
                    truth=None, consensus: list[dict] | None = None) -> dict:
    """Replay adaptive redundancy on collected answers (see the module doc).

    ``rows``: box answers ``{"item", "worker", "boxes"}`` (``kind="boxes"``)
    or span answers ``{"item", "worker", "spans"}`` (``kind="spans"``).
    ``items``/``method`` go to the consensus (``aggregate_boxes`` /
    ``aggregate_spans``). ``consensus``: the all-answers consensus if already
    computed (else it is fitted here). ``truth``: optional expert rows
    ``{"item", "boxes"|"spans"}`` or a dict item -> shapes.

    Returns ``{"used": {item: n}, "available": {item: n}, "share", "answers_used",
    "answers_all", "fits", "results", "consensus", "vs_consensus"}`` plus, with
    ``truth``, ``"vs_truth"`` and ``"all_vs_truth"``. ``vs_consensus`` scores
    the adaptive shapes against the all-answers ones as if those were the truth
    (F1 1.0: the same merged set). Raises ValueError on bad input."""
    _check(kind, start, max_answers, target)
    order_items, by_item = _group(rows, kind)
    ordered = _order(order_items, by_item, seed)
    cap = {it: len(rs) if max_answers is None else min(len(rs), max_answers) for it, rs in ordered.items()}
    used, fits = _rounds(kind, ordered, cap, start, target, items, method, seed)
    final = _fit(kind, [r for it, rs in ordered.items() for r in rs[:used[it]]], items, method, seed)
    if consensus is None:
        consensus = _fit(kind, [r for it in order_items for r in by_item[it]], items, method, seed)
    n_used, n_all = sum(used.values()), sum(len(rs) for rs in by_item.values())
    pred, full = _shapes(kind, final), _shapes(kind, consensus)
    out = {"used": used, "available": {it: len(rs) for it, rs in by_item.items()}, "share": n_used / n_all,
           "answers_used": n_used, "answers_all": n_all, "fits": fits + 1, "results": final,
           "consensus": consensus, "vs_consensus": _score(kind, pred, full)}
    if truth is not None:
        out["vs_truth"] = _score(kind, pred, truth)
        out["all_vs_truth"] = _score(kind, full, truth)
    return out
