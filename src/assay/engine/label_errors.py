"""Probable label errors in a project: which answered items most likely
carry a wrong label, ranked (the math: :mod:`assay.quality.label_errors`).

Two ways, chosen from what the project holds (``method="auto"``):

- ``"crowd"`` — some items have answers from two or more people: the
  consensus of every answered item and its posterior, from the answers and
  the in-loop model's stored (held-out) predictions as each item's prior
  (:func:`assay.quality.label_errors.crowd_label_errors`). The items
  flagged are the ``round(sum(1 - posterior))`` lowest: the number of wrong
  consensus labels the posteriors expect.
- ``"model"`` — one answer per item: each answer against the model's stored
  prediction by confident learning
  (:func:`assay.quality.label_errors.find_label_errors`); needs predictions.

Items with a known label (gold, a reviewer's decision) are left out: a
person has settled them. In the crowd fit they are clamped at that label, so
a reviewer's verdicts move the annotators' skills and with them the ranking
of the other items. Only kinds with one class per item
(``LabelKind.aggregatable``).
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import text
from sqlalchemy.types import JSON

from assay import kinds
from assay.engine.reports import _answer_codes
from assay.errors import InvalidInput

METHODS = ("auto", "crowd", "model")

_PREDICTIONS = text("SELECT item_id, proba FROM predictions WHERE project_id = :p").columns(proba=JSON)
_KNOWN = text("SELECT item_id, label FROM gold WHERE project_id = :p").columns(label=JSON)


def label_errors(db, p: dict, *, method: str = "auto", limit: int | None = 100, page_size: int = 5000) -> dict:
    """Answered items ranked by how likely their label is wrong (lowest
    ``quality`` first). Returns ``{"project_id", "method", "items_scored",
    "estimated_errors", "flagged", "items": [{"item_id", "label",
    "suggested", "quality", "answers", "flagged"}, ...]}`` with at most
    ``limit`` items (None: all). ``label`` is the label scored (the
    consensus, or the one answer), ``suggested`` the most probable other
    class, ``quality`` in [0, 1] (low: probably wrong)."""
    if method not in METHODS:
        raise InvalidInput(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidInput("limit must be a whole number of items, at least 1")
    label_kind = kinds.of(p)
    if not label_kind.aggregatable:
        raise InvalidInput(f"label errors need a project with one class per item; {p['name']!r} is "
                           f"{label_kind.title}")
    names = [c["name"] for c in p["schema"]["classes"]]
    code_of = {n: i for i, n in enumerate(names)}
    pid = p["id"]
    item_ids, user_ids, labels = _answer_codes(db, pid, code_of, page_size)
    with db.read() as conn:
        preds = {int(r.item_id): r.proba for r in conn.execute(_PREDICTIONS, {"p": pid})}
        known = {int(r.item_id): r.label for r in conn.execute(_KNOWN, {"p": pid})}
    items_u, icode = np.unique(item_ids, return_inverse=True)
    pp = _prediction_matrix(items_u, preds, len(names))
    counts = np.bincount(icode, minlength=items_u.size)
    if method == "auto":
        method = "crowd" if (counts >= 2).any() else "model"
    if method == "crowd":
        # known labels clamp the fit: a reviewer's verdict moves the annotators' skills
        gold = np.array([code_of.get(known[int(i)], -1) if int(i) in known else -1 for i in items_u], np.intp)
        rows = _crowd(items_u, icode, user_ids, labels, pp, counts, gold)
    else:
        rows = _model(items_u, icode, labels, pp, counts)
    scored = [r for r in rows if r["item_id"] not in known]
    scored.sort(key=lambda r: (r["quality"], r["item_id"]))
    for r in scored:
        r["label"], r["suggested"] = names[r["label"]], (None if r["suggested"] is None else names[r["suggested"]])
    est = _estimate(method, scored)
    if method == "crowd":
        for j, r in enumerate(scored):
            r["flagged"] = j < est
    return {"project_id": pid, "method": method, "items_scored": len(scored), "estimated_errors": est,
            "flagged": sum(r["flagged"] for r in scored),
            "items": scored if limit is None else scored[:limit]}


def _estimate(method: str, scored: list[dict]) -> int:
    if method == "crowd":  # the posteriors' expected count of wrong consensus labels
        return int(round(sum(1.0 - r["quality"] for r in scored)))
    return sum(r["flagged"] for r in scored)


def _prediction_matrix(items_u: np.ndarray, preds: dict, k: int) -> np.ndarray:
    """(n, K) stored probabilities per answered item; NaN rows: none (or of
    another class count, from before the classes changed)."""
    pp = np.full((items_u.size, k), np.nan)
    for j, i in enumerate(items_u):
        pr = preds.get(int(i))
        if pr is not None and len(pr) == k:
            row = np.asarray(pr, float)
            if np.isfinite(row).all() and row.sum() > 0:
                pp[j] = row / row.sum()
    return pp


def _other(proba_row: np.ndarray, label: int) -> int:
    r = np.array(proba_row, float)
    r[label] = -np.inf
    return int(r.argmax())


def _crowd(items_u, icode, user_ids, labels, pp, counts, gold) -> list[dict]:
    from assay.quality.crowd_model import admit_unseen
    from assay.quality.label_errors import crowd_label_errors

    res = crowd_label_errors(icode, user_ids, labels, admit_unseen(pp), gold=gold if (gold >= 0).any() else None)
    return [{"item_id": int(items_u[j]), "label": int(res.consensus[j]), "suggested": _other(res.proba[j],
             int(res.consensus[j])), "quality": float(res.quality[j]), "answers": int(counts[j]), "flagged": False}
            for j in range(items_u.size) if res.consensus[j] >= 0]


def _model(items_u, icode, labels, pp, counts) -> list[dict]:
    from assay.quality.label_errors import find_label_errors

    single = (counts == 1) & np.isfinite(pp).all(axis=1)
    if not single.any():
        raise InvalidInput("no item answered once has a stored model prediction: let the in-loop model "
                           "run a step (it stores them) or store a backend's with 'assay project predict'")
    given = np.full(items_u.size, -1, np.intp)
    given[icode] = labels
    sel = np.flatnonzero(single)
    res = find_label_errors(given[sel], pp[sel])
    return [{"item_id": int(items_u[j]), "label": int(given[j]), "suggested": _other(pp[j], int(given[j])),
             "quality": float(res.quality[n]), "answers": 1, "flagged": bool(res.is_error[n])}
            for n, j in enumerate(sel)]
