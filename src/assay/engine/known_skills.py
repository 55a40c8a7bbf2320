"""Annotator skills in projects whose labels are sets of things (spans,
boxes, polygons), on the items whose label is known: gold and reviewers'
decisions (:mod:`assay.engine.gold`). Read-only.

Each annotator's first answer to a known item (``first_answers``, the record
gold scoring keeps) is matched against the known label by the project's
kind (:meth:`~assay.kinds.shapes.Boxes.matches`) and summed up by
:mod:`assay.quality.gold_skills`. Gold-derived: for admins and reviewers only.
"""

from __future__ import annotations

from sqlalchemy import JSON, text

from assay import kinds
from assay.engine import gold as _gold
from assay.errors import InvalidInput
from assay.quality import gold_skills as _skills

PAGE = 5000

_PAGE = text(
    "SELECT a.item_id, a.annotator_id, a.label AS answer, g.label AS known, g.source FROM first_answers a"
    " JOIN gold g ON g.project_id = a.project_id AND g.item_id = a.item_id"
    " WHERE a.project_id = :p AND (a.item_id > :i OR (a.item_id = :i AND a.annotator_id > :u))"
    " ORDER BY a.item_id, a.annotator_id LIMIT :n"
).columns(answer=JSON, known=JSON)
_NAMES = text("SELECT id, username FROM users WHERE id IN (SELECT annotator_id FROM first_answers"
              " WHERE project_id = :p)")


def _rows(db, pid: int, page: int):
    after = (-1, -1)
    while True:
        with db.read() as conn:
            rows = conn.execute(_PAGE, {"p": pid, "i": after[0], "u": after[1], "n": page}).all()
        yield from rows
        if len(rows) < page:
            return
        after = (rows[-1].item_id, rows[-1].annotator_id)


def known_skills(db, p: dict, *, page: int = PAGE) -> dict:
    """Per annotator, on gold and reviewed items: for shapes, precision,
    recall, F1 and the mean IoU of matched shapes (``localisation_error`` =
    1 - mean IoU); for spans, precision, recall and F1 overall and per entity
    type. InvalidInput for other kinds (their skills: the skill map)."""
    kind_name = p["schema"]["kind"]
    if kind_name not in kinds.merging():
        raise InvalidInput("annotator skills on shapes and spans are for spans, boxes, polygons projects; "
                           f"project {p['name']!r} is {kind_name!r} (see its skill map)")
    kind = kinds.of(p)
    shapes = kind.in_pixels  # shapes: precision, recall and localisation; spans: per entity type
    items: dict[str, set] = {"import": set(), "review": set()}
    records = []
    for r in _rows(db, p["id"], page):
        items["review" if r.source == "review" else "import"].add(r.item_id)
        answer, known = r.answer or [], r.known or []
        if shapes:
            records.append((r.annotator_id, len(answer), len(known), kind.matches(answer, known)))
        else:
            records.append((r.annotator_id, answer, known))
    per = (_skills.shape_skills if shapes else _skills.span_skills)(records)
    with db.read() as conn:
        names = {u.id: u.username for u in conn.execute(_NAMES, {"p": p["id"]})}
    annotators = []
    for uid in sorted(per):
        s = per[uid]
        if shapes:
            row = {**s, "localisation_error": None if s["mean_iou"] is None else 1.0 - s["mean_iou"]}
        else:
            row = {"items": s["items"], **s["overall"], "types": s["types"]}
        annotators.append({"user_id": uid, "username": names.get(uid), **row})
    return {"project_id": p["id"], "kind": kind_name, "min_score": _gold.min_score_of(p),
            "basis": {"gold": len(items["import"]), "review": len(items["review"])},
            "classes": [c["name"] for c in p["schema"].get("classes") or []], "annotators": annotators}
