"""A project's overview report, over all its items or a set of them (a
slice's): progress, agreement, the final labels' distribution and sources,
and accuracy against the known truth (gold and reviewers' labels) where
there is some.

Nothing is re-derived that has an owner: final labels come from
:mod:`assay.engine.resolver`, whether an answer is right from
:func:`assay.engine.gold.is_right`, label shapes from the project's kind
(:meth:`~assay.kinds.base.LabelKind.agreement`, ``to_choices``, ``same``),
Krippendorff's alpha from :mod:`assay.quality.agreement`. The items are
read in chunks, each on its own short read transaction; what is held is the
item ids and, for alpha on single-label projects, one small integer triple
per answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import JSON, bindparam, text

from assay import kinds
from assay.engine import gold as _gold
from assay.engine import resolver as _resolver
from assay.errors import InvalidInput

CHUNK = 500

_ITEMS = text("SELECT item_id FROM tasks WHERE project_id = :p ORDER BY item_id")
_TOTALS_OF = text(
    "SELECT count(*) AS tasks, COALESCE(SUM(CASE WHEN answer_count >= needed THEN 1 ELSE 0 END), 0) AS done "
    "FROM tasks WHERE project_id = :p AND NOT is_gold AND item_id IN :ids"
).bindparams(bindparam("ids", expanding=True))
_ANSWERS_OF = text(
    "SELECT item_id, annotator_id, label FROM answers WHERE project_id = :p AND item_id IN :ids "
    "ORDER BY item_id, id"
).bindparams(bindparam("ids", expanding=True)).columns(label=JSON)
_TRUTH_OF = text(
    "SELECT item_id, label, source FROM gold WHERE project_id = :p AND item_id IN :ids"
).bindparams(bindparam("ids", expanding=True)).columns(label=JSON)
_USERS_OF = text("SELECT id, username FROM users WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))


def project_item_ids(conn, project_id: int) -> list[int]:
    """The project's items (gold ones too), sorted."""
    return list(conn.execute(_ITEMS, {"p": project_id}).scalars())


class _Tally:
    """What the chunks add up to."""

    def __init__(self) -> None:
        self.tasks = self.done = self.answers = 0
        self.pair_items, self.pair_sum = 0, 0.0
        self.labeled, self.sources, self.distribution = 0, {}, {}
        self.conf_sum, self.conf_n = 0.0, 0
        self.truth_items = 0
        self.per_user: dict[int, list[int]] = {}  # annotator -> [answers on known truth, right]
        self.codes: list[tuple[int, int, int]] = []  # (item, annotator, class) for alpha


def _chunk(conn, p: dict, ids: list[int], kind, code_of: dict | None, t: _Tally) -> None:
    pid = p["id"]
    tot = conn.execute(_TOTALS_OF, {"p": pid, "ids": ids}).one()
    t.tasks += tot.tasks
    t.done += int(tot.done)
    by_item: dict[int, list] = {}
    for a in conn.execute(_ANSWERS_OF, {"p": pid, "ids": ids}):
        by_item.setdefault(a.item_id, []).append(a)
        t.answers += 1
        if code_of is not None and isinstance(a.label, str) and a.label in code_of:
            t.codes.append((a.item_id, a.annotator_id, code_of[a.label]))
    for rows in by_item.values():
        share = kind.agreement([a.label for a in rows])
        if share is not None:
            t.pair_items += 1
            t.pair_sum += share
    truth = {r.item_id: r.label for r in conn.execute(_TRUTH_OF, {"p": pid, "ids": ids})}
    t.truth_items += len(truth)
    for item, known in truth.items():
        for a in by_item.get(item, []):
            slot = t.per_user.setdefault(a.annotator_id, [0, 0])
            slot[0] += 1
            slot[1] += _gold.is_right(p, a.label, known)


def _finals(db, p: dict, ids: list[int], kind, t: _Tally) -> None:
    for f in _resolver.iter_final(db, p, ids):
        if f.label is None:
            continue
        t.labeled += 1
        t.sources[f.source] = t.sources.get(f.source, 0) + 1
        if f.confidence is not None:
            t.conf_sum += f.confidence
            t.conf_n += 1
        try:
            choices = kind.to_choices(f.label)
        except InvalidInput:  # a kind without classes per label (spans): no distribution
            continue
        for c in choices:
            if isinstance(c, str):
                t.distribution[c] = t.distribution.get(c, 0) + 1


def overview(db, p: dict, item_ids: Sequence[int] | None = None, *, chunk: int = CHUNK) -> dict:
    """The report over ``item_ids`` (sorted; None: every item of the project):
    ``progress`` (tasks, done, remaining, answers; gold checks are not
    counted as work), ``agreement`` (the mean share of agreeing answer pairs
    per item with several answers; Krippendorff's alpha on single-label
    projects), ``labels`` (final labels: how many, by source, by class where
    the kind has classes, mean confidence) and ``accuracy`` (answers on items
    with a known truth, gold or a review, scored as gold is; per annotator)."""
    from assay.quality.agreement import krippendorff_alpha

    kind = kinds.of(p)
    names = [c["name"] for c in p["schema"]["classes"]] if kind.aggregatable else None
    code_of = {n: i for i, n in enumerate(names)} if names else None
    if item_ids is None:
        with db.read() as conn:
            item_ids = project_item_ids(conn, p["id"])
    ids = list(item_ids)
    t = _Tally()
    for s in range(0, len(ids), chunk):
        part = ids[s:s + chunk]
        with db.read() as conn:
            _chunk(conn, p, part, kind, code_of, t)
        _finals(db, p, part, kind, t)
    alpha = None
    if t.codes:
        arr = np.asarray(t.codes, dtype=np.int64)
        a = krippendorff_alpha(arr[:, 0], arr[:, 1], arr[:, 2], n_classes=len(names))
        alpha = None if np.isnan(a) else float(a)
    return {
        "project_id": p["id"], "items": len(ids),
        "progress": {"tasks": t.tasks, "done": t.done, "remaining": t.tasks - t.done, "answers": t.answers},
        "agreement": {"items_with_several_answers": t.pair_items,
                      "pairwise": t.pair_sum / t.pair_items if t.pair_items else None,
                      "krippendorff_alpha": alpha},
        "labels": {"labeled": t.labeled, "sources": dict(sorted(t.sources.items())),
                   "distribution": dict(sorted(t.distribution.items())),
                   "mean_confidence": t.conf_sum / t.conf_n if t.conf_n else None},
        "accuracy": _accuracy(db, t),
    }


def _accuracy(db, t: _Tally) -> dict:
    """Answers against the known truth (gold, reviews): overall and per annotator."""
    users = {}
    if t.per_user:
        with db.read() as conn:
            users = dict(conn.execute(_USERS_OF, {"ids": sorted(t.per_user)}).all())
    n = sum(v[0] for v in t.per_user.values())
    right = sum(v[1] for v in t.per_user.values())
    return {
        "items_with_truth": t.truth_items, "answers": n, "right": right, "accuracy": right / n if n else None,
        "annotators": [{"user_id": u, "username": users.get(u), "answers": v[0], "right": v[1],
                        "accuracy": v[1] / v[0]} for u, v in sorted(t.per_user.items())],
    }
