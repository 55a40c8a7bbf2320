"""What the skill map (:func:`assay.engine.reports.skill_map`) is computed
from, and how a caller keeps it between requests cheaply.

:class:`SkillData` holds the inputs: every answer as integer-coded arrays,
and the items whose truth is known (gold, reviewers' decisions, final labels
from the answers at ``min_confidence`` or more, each through
:mod:`assay.engine.resolver`). Reading them (:func:`read`) is a pass over
every answer and every task; the estimate itself is cheap next to it.

:func:`inputs` is the key of the state they come from, one read of counts
and index look-ups: the answers (count, last id: ids are never reused), gold
rows and reviews (count, latest ``created_at``, which an upsert sets), the
last re-fit (``fitted_at``), the model (``ml_models`` version) and its
auto-labels, and the settings the map reads. Same key: same map. When only
answers were added (:func:`grown_by_answers`), :func:`update` reads just the
new answers and re-resolves just the items they touched (an answer changes
its own item's consensus, nothing else's; a re-fit or a model step changes
the key's other parts); any answer undone, or one that committed late
below the last id read, shows as a count that does not add up and
:func:`update` says so (None: read it all again).

Read-only, no workspace; the workspace keeps the cache (``_skill_cache``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from sqlalchemy import JSON, text

from assay.engine import resolver as _resolver

#: a final label from the answers counts as an item's truth for skills from this confidence on
SKILL_TRUTH_CONFIDENCE = 0.95
PAGE = 5000

_INPUTS = text(
    "SELECT (SELECT count(*) FROM answers WHERE project_id = :p) AS answers,"
    " (SELECT max(id) FROM answers WHERE project_id = :p) AS last_answer,"
    " (SELECT count(*) FROM gold WHERE project_id = :p) AS gold,"
    " (SELECT max(created_at) FROM gold WHERE project_id = :p) AS gold_at,"
    " (SELECT max(fitted_at) FROM quality_models WHERE project_id = :p) AS fitted_at,"
    " (SELECT max(version) FROM ml_models WHERE project_id = :p) AS model_version,"
    " (SELECT count(*) FROM auto_labels WHERE project_id = :p) AS auto_labels"
)
_ANSWER_RANGE = text(
    "SELECT id, item_id, annotator_id, label FROM answers WHERE project_id = :p AND id > :after "
    "AND id <= :upto ORDER BY id LIMIT :n"
).columns(label=JSON)


class SkillKey(NamedTuple):
    project_id: int
    min_confidence: float
    classes: tuple
    aggregates: bool
    answers: int
    last_answer: int | None
    gold: int
    gold_at: float | None
    fitted_at: float | None
    model_version: int | None
    auto_labels: int


def inputs(db, p: dict, min_confidence: float = SKILL_TRUTH_CONFIDENCE) -> SkillKey:
    """The key of the state the skill map of ``p`` is computed from (module docstring)."""
    with db.read() as conn:
        row = conn.execute(_INPUTS, {"p": p["id"]}).one()
    return SkillKey(p["id"], min_confidence, tuple(c["name"] for c in p["schema"]["classes"]),
                    p.get("target_confidence") is not None, *row)


def grown_by_answers(old: SkillKey, new: SkillKey) -> bool:
    """Whether only answers changed from ``old`` to ``new`` (some were added)."""
    return (old._replace(answers=new.answers, last_answer=new.last_answer) == new
            and (new.last_answer or 0) > (old.last_answer or 0))


@dataclass(frozen=True)
class SkillData:
    """The skill map's inputs: ``truth`` item id -> (class code, 'gold' |
    'review' | 'consensus'); every answer with a class label as arrays; how
    many answers were read (any label) and the last id read."""

    truth: dict
    item_ids: np.ndarray
    user_ids: np.ndarray
    labels: np.ndarray
    rows: int
    last_answer: int

    def truth_codes(self) -> np.ndarray:
        """The true class code of each answer's item (-1: unknown)."""
        if not self.truth or not self.item_ids.size:
            return np.full(self.item_ids.size, -1, dtype=np.intp)
        keys = np.fromiter(self.truth, dtype=np.int64, count=len(self.truth))
        codes = np.fromiter((c for c, _ in self.truth.values()), dtype=np.intp, count=len(self.truth))
        order = np.argsort(keys)
        keys, codes = keys[order], codes[order]
        at = np.minimum(np.searchsorted(keys, self.item_ids), len(keys) - 1)
        return np.where(keys[at] == self.item_ids, codes[at], -1)

    def basis(self) -> dict[str, int]:
        """How many items of each source the truth rests on."""
        out = {"gold": 0, "review": 0, "consensus": 0}
        for _, key in self.truth.values():
            out[key] += 1
        return out


def _truth_of(f, code_of: dict[str, int], min_confidence: float) -> tuple[int, str] | None:
    if f.label not in code_of or f.source is None:
        return None
    if f.source in ("gold", "review"):
        return code_of[f.label], f.source
    if f.source.startswith("consensus:") or f.source == "majority":
        if f.confidence is None or f.confidence < min_confidence:
            return None
        return code_of[f.label], "consensus"
    return None  # an auto-label is the model's, not a check of people


def _answers(db, pid: int, code_of: dict[str, int], after: int, upto: int, page_size: int):
    """Answers with ``after`` < id <= ``upto``: coded arrays, the items they
    touched (any label), how many were read and the last id."""
    item_l, user_l, lab_l, touched = [], [], [], set()
    rows = 0
    while True:
        with db.read() as conn:
            page = conn.execute(_ANSWER_RANGE, {"p": pid, "after": after, "upto": upto, "n": page_size}).all()
        rows += len(page)
        for r in page:
            touched.add(r.item_id)
            if r.label in code_of:  # a class is never removed, but stay safe
                item_l.append(r.item_id)
                user_l.append(r.annotator_id)
                lab_l.append(code_of[r.label])
        if len(page) < page_size:
            break
        after = page[-1].id
    arrays = (np.asarray(item_l, dtype=np.int64), np.asarray(user_l, dtype=np.int64),
              np.asarray(lab_l, dtype=np.intp))
    return arrays, touched, rows, (page[-1].id if page else after)


def read(db, p: dict, min_confidence: float = SKILL_TRUTH_CONFIDENCE, *, upto: int | None = None,
         page_size: int = PAGE) -> SkillData:
    """Every input of the skill map: the truth of every item, every answer
    up to id ``upto`` (None: all)."""
    code_of = {c["name"]: i for i, c in enumerate(p["schema"]["classes"])}
    truth = {}
    for f in _resolver.iter_labelled(db, p):  # an item with no label has no truth
        t = _truth_of(f, code_of, min_confidence)
        if t is not None:
            truth[f.item_id] = t
    (items, users, labels), _, rows, last = _answers(db, p["id"], code_of, 0, 2**62 if upto is None else upto,
                                                     page_size)
    return SkillData(truth, items, users, labels, rows, last)


def update(db, p: dict, data: SkillData, key: SkillKey, *, page_size: int = PAGE) -> SkillData | None:
    """``data`` brought to ``key`` when only answers were added since
    (:func:`grown_by_answers`): the new answers read and their items'
    truth resolved again; None when the count does not add up (an answer
    undone, or committed late below the last id read): read it all again."""
    code_of = {c["name"]: i for i, c in enumerate(p["schema"]["classes"])}
    (items, users, labels), touched, rows, last = _answers(db, p["id"], code_of, data.last_answer,
                                                           key.last_answer or 0, page_size)
    if data.rows + rows != key.answers:
        return None
    truth = dict(data.truth)
    for i in touched:
        truth.pop(i, None)
    for f in _resolver.iter_final(db, p, touched):
        t = _truth_of(f, code_of, key.min_confidence)
        if t is not None:
            truth[f.item_id] = t
    return SkillData(truth, np.concatenate([data.item_ids, items]), np.concatenate([data.user_ids, users]),
                     np.concatenate([data.labels, labels]), data.rows + rows, max(last, data.last_answer))


def page(full: dict, *, after: int | None = None, limit: int | None = None) -> dict:
    """One page of a skill map: the annotators with ``user_id`` > ``after``,
    ``limit`` of them (None: all), each nuance's rows for the same
    annotators; ``annotators_total`` and ``next_after`` (the cursor of the
    next page, None on the last). A new dict: ``full`` is left as it is."""
    rows = [a for a in full["annotators"] if after is None or a["user_id"] > after]
    more = limit is not None and len(rows) > limit
    rows = rows[:limit] if limit is not None else rows
    lo = -1 if after is None else after
    hi = rows[-1]["user_id"] if more else None
    mine = (lambda u: lo < u <= hi) if hi is not None else (lambda u: u > lo)
    nuances = [{**n, "annotators": [r for r in n["annotators"] if mine(r["user_id"])]} for n in full["nuances"]]
    return {**full, "annotators": rows, "nuances": nuances, "annotators_total": len(full["annotators"]),
            "next_after": hi}
