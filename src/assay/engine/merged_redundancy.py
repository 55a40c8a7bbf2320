"""Adaptive redundancy for kinds whose answers merge (spans, boxes, polygons:
:attr:`assay.kinds.LabelKind.merges_answers`), live.

The rule is the one of single-label projects (:func:`assay.quality.online.next_step`)
with the kind's merged result in place of the class posterior:

* after each answer (:func:`after_answer`, in the answer's transaction) the
  item's answers so far (at most ``max_answers``) are merged by the kind
  (:meth:`~assay.kinds.LabelKind.item_consensus`: the vote, no skills) and
  the merged label and its confidence stored in ``item_consensus``; once the
  planned ``overlap`` answers are in (two or more: a lone answer agrees with
  itself), confidence >= ``target_confidence`` resolves the item, below it an
  item with ``max_answers`` answers goes to review, and one with every
  planned answer in gets one more slot;
* the periodic re-fit (:func:`refit`, the server's re-fitter through
  :func:`assay.engine.redundancy.refit`) merges every item from all of the
  project's answers with the kind's skill-aware fit
  (:meth:`~assay.kinds.LabelKind.fit_consensus`: boxes
  :func:`assay.quality.boxes.fit_boxes`, spans
  :func:`assay.quality.spans.aggregate_spans`), and rewrites the
  confidences and steps with the same rule. Items answered after the fit read
  them are merged again from their answers by the per-answer rule.

Known items (gold, a reviewer's decision) do the same work and stay
resolved at the known label. The task counters change only through
:mod:`assay.engine.ledger`.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import JSON, text

from assay import kinds
from assay.engine import ledger

_COUNTS = text("SELECT needed, answer_count, target FROM tasks WHERE id = :t")
_ITEM_ANSWERS = text("SELECT label FROM answers WHERE task_id = :t ORDER BY id DESC LIMIT :n").columns(label=JSON)
_ANSWERS = text("SELECT item_id, annotator_id, label FROM answers WHERE project_id = :p ORDER BY id"
                ).columns(label=JSON)
_GOLD = text("SELECT item_id, label FROM gold WHERE project_id = :p").columns(label=JSON)
_TASKS = text("SELECT id, item_id, needed, answer_count, target FROM tasks "
              "WHERE project_id = :p AND item_id >= :lo AND item_id < :hi AND answer_count > 0 AND NOT is_gold")
_DELETE_MODEL = text("DELETE FROM quality_models WHERE project_id = :p")
_INSERT_MODEL = text(
    "INSERT INTO quality_models (project_id, method, prior, default_confusion, answers, fitted_at) "
    "VALUES (:p, :m, '[]', '{}', :n, :now)")
#: items per write transaction of a re-fit's rewrite
REWRITE_CHUNK = 500
_NO_ID = 2 ** 62


def _step(project: dict, t, confidence: float) -> str:
    """:func:`assay.quality.online.next_step` on the merged confidence; ``wait``
    until the planned ``overlap`` answers are in."""
    from assay.quality import online

    if t.answer_count < project["overlap"]:
        return "wait"
    target = project["target_confidence"] if t.target is None else t.target
    return online.next_step(confidence, t.answer_count, t.needed, target=target,
                            max_answers=project["max_answers"])


def after_answer(conn, project: dict, task_id: int, item_id: int, now: float | None = None, *,
                 known: Any = None) -> dict:
    """Merge the item's answers with the kind and decide whether it needs
    another (on the answer's transaction ``conn``, after the answer was
    counted). ``known``: the item's known label (it stays resolved at it).
    Returns ``{"label", "confidence", "status", "step"}``."""
    now = time.time() if now is None else now
    kind = kinds.of(project)
    t = conn.execute(_COUNTS, {"t": task_id}).one()
    labels = [r.label for r in conn.execute(_ITEM_ANSWERS, {"t": task_id, "n": project["max_answers"]}).all()]
    label, confidence = kind.item_consensus(labels[::-1], project["schema"])
    step = _step(project, t, confidence)
    if known is not None:  # the same work, then the known label
        label, confidence, step = known, 1.0, "resolved"
    status = ledger.apply_step(conn, task_id, step)
    ledger.upsert_consensus(conn, {"p": project["id"], "i": item_id, "label": label, "conf": float(confidence),
                                   "lp": [], "n": t.answer_count, "status": status, "now": now})
    return {"label": label, "confidence": float(confidence), "status": status, "step": step}


def _rewrite_chunk(conn, project: dict, fitted: dict, counts_of: dict, known: dict, now: float,
                   lo: int, hi: int, counts: dict) -> list[dict]:
    kind, pid = kinds.of(project), project["id"]
    upserts = []
    for t in conn.execute(_TASKS, {"p": pid, "lo": lo, "hi": hi}).all():
        row = {"p": pid, "i": t.item_id, "n": t.answer_count, "lp": [], "now": now}
        if t.item_id in known:  # a reviewer's decision is final
            counts["resolved"] += 1
            upserts.append({**row, "label": known[t.item_id], "conf": 1.0, "status": "resolved"})
            continue
        if t.item_id in fitted and counts_of.get(t.item_id) == t.answer_count:
            label, conf = fitted[t.item_id]
        else:  # answered (or undone) since the fit read the answers: merged again, per answer
            labels = [r.label for r in conn.execute(_ITEM_ANSWERS, {"t": t.id, "n": project["max_answers"]}).all()]
            label, conf = kind.item_consensus(labels[::-1], project["schema"])
        step = _step(project, t, conf)
        status = ledger.apply_step(conn, t.id, step)
        counts["more"] += step == "more"
        counts[status] += 1
        upserts.append({**row, "label": label, "conf": float(conf), "status": status})
    return upserts


def refit(db, project: dict, *, now: float | None = None) -> dict:
    """Merge every answered item from all the project's answers with the
    kind's skill-aware fit (outside any transaction), then rewrite the items'
    consensus and steps in chunks of :data:`REWRITE_CHUNK` (one short write
    transaction each). Stores a ``quality_models`` row (the method and the
    answers fitted) so that the re-fitter knows when the next one is due."""
    now = time.time() if now is None else now
    kind, pid = kinds.of(project), project["id"]
    with db.read() as conn:
        rows = [(r.item_id, r.annotator_id, r.label) for r in conn.execute(_ANSWERS, {"p": pid}).all()]
        known = {r.item_id: r.label for r in conn.execute(_GOLD, {"p": pid}).all()}
    if not rows:
        return {"answers": 0, "annotators": 0, "items": 0}
    method, fitted = kind.fit_consensus(rows, project["schema"])
    counts_of: dict[int, int] = {}
    for i, _, _ in rows:
        counts_of[i] = counts_of.get(i, 0) + 1
    with db.write() as conn:
        conn.execute(_DELETE_MODEL, {"p": pid})
        conn.execute(_INSERT_MODEL, {"p": pid, "m": method, "n": len(rows), "now": now})
    ids = sorted(counts_of)
    starts = [ids[j] for j in range(0, len(ids), REWRITE_CHUNK)]
    counts, items = {"resolved": 0, "review": 0, "open": 0, "more": 0}, 0
    for lo, hi in zip([0] + starts[1:], starts[1:] + [_NO_ID]):
        with db.write() as conn:
            upserts = _rewrite_chunk(conn, project, fitted, counts_of, known, now, lo, hi, counts)
            ledger.upsert_consensus(conn, upserts)
        items += len(upserts)
    return {"answers": len(rows), "annotators": len({u for _, u, _ in rows}), "items": items, "method": method,
            "resolved": counts["resolved"], "review": counts["review"], "open": counts["open"],
            "reopened": counts["more"]}
