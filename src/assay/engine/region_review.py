"""The review queue of kinds whose answers are marks on the item (spans,
boxes, polygons): these kinds keep no running posterior (their
``item_consensus`` rows, under adaptive redundancy, hold the merged label:
:mod:`assay.engine.merged_redundancy`), so an item is unsure when its answers agree little.

For now the rule is the kind's pairwise agreement (:meth:`LabelKind.agreement`,
the share of pairs of answers that are the same answer to the kind): an item
with at least two answers, no known label (gold or a decision), and an
agreement below :data:`UNSURE_AGREEMENT` goes to the queue, least agreed
first. Each entry carries every answer (who gave it) and the kind's majority,
the consensus a reviewer may accept, edit or redraw (the decision goes
through :meth:`Workspace.review`)."""

from __future__ import annotations

from sqlalchemy import JSON, bindparam, text

from assay import kinds

#: below this pairwise agreement an item is unsure (three answers: one pair of three agreeing is 1/3)
UNSURE_AGREEMENT = 2 / 3
#: items read per page while looking for unsure ones
PAGE = 500

_CANDIDATES = text(
    "SELECT a.item_id FROM answers a WHERE a.project_id = :p AND a.item_id > :after "
    "AND NOT EXISTS (SELECT 1 FROM gold g WHERE g.project_id = a.project_id AND g.item_id = a.item_id) "
    "GROUP BY a.item_id HAVING COUNT(*) >= 2 ORDER BY a.item_id LIMIT :n")
_ANSWERS = text(
    "SELECT a.item_id, a.annotator_id, u.username, a.label FROM answers a JOIN users u ON u.id = a.annotator_id "
    "WHERE a.project_id = :p AND a.item_id IN :ids ORDER BY a.item_id, a.id"
).bindparams(bindparam("ids", expanding=True)).columns(label=JSON)


def queue(db, p: dict, *, after: int | None = None, limit: int = 20,
          max_agreement: float = UNSURE_AGREEMENT) -> tuple[list[dict], int | None]:
    """``(entries, next_after)``: unsure items after ``after`` in item order
    (up to ``limit``), each ``{item_id, answers: [{annotator_id, username,
    label}], consensus, confidence, agreement}``; ``next_after`` None once
    every item was looked at."""
    kind = kinds.of(p)
    classes = [c["name"] for c in p["schema"]["classes"]]
    out: list[dict] = []
    cursor = after or 0
    while len(out) < limit:
        with db.read() as conn:
            ids = [r.item_id for r in conn.execute(_CANDIDATES, {"p": p["id"], "after": cursor, "n": PAGE})]
            rows = conn.execute(_ANSWERS, {"p": p["id"], "ids": ids}).all() if ids else []
        by_item: dict[int, list] = {}
        for r in rows:
            by_item.setdefault(r.item_id, []).append(r)
        for i in ids:
            cursor = i
            answers = by_item.get(i, [])
            agreement = kind.agreement([r.label for r in answers])
            if agreement is None or agreement >= max_agreement:
                continue
            consensus, confidence = kind.majority([r.label for r in answers], classes)
            out.append({"item_id": i, "agreement": agreement, "consensus": consensus, "confidence": confidence,
                        "answers": [{"annotator_id": r.annotator_id, "username": r.username, "label": r.label}
                                    for r in answers]})
            if len(out) == limit:
                return out, i
        if len(ids) < PAGE:
            return out, None
    return out, cursor
