"""The one resolver of an item's final label: what a user exports, what the
API's ``/labels`` pages show, and what the simulations score.

Precedence, first that applies:

1. ``gold``: an imported gold label (``gold.source = 'import'``), confidence 1;
2. ``review``: a reviewer's final decision (``gold.source = 'review'``), confidence 1;
3. ``consensus:<method>``: the project's aggregation of the answers — the
   item's ``item_consensus`` row, ``method`` from the last re-fit
   (``quality_models.method``, e.g. ``ds``; ``online`` before any re-fit),
   confidence = its posterior. Where answers came or went after the row was
   written (its ``answers`` differ from the answers now) — in a fixed-overlap
   project every answer after the last re-fit — the posterior is recomputed
   from the stored fit (annotator confusions, class prior, the model's
   prediction as the item's prior), exactly as an adaptive project's answer
   would update it (:func:`assay.quality.online.update`). That happens only
   where the project has an aggregation: a re-fit, or adaptive redundancy;
4. ``auto``: the ML loop's auto-label (``auto_labels``), confidence = the
   model's calibrated probability;
5. ``majority``: the majority vote of the answers (multi-label: every class
   chosen by at least half), confidence = the share that agrees (None for
   multi-label);
6. no label (``source`` None).

A **model-only consensus** — an ``item_consensus`` row the ML loop wrote for
an item nobody answered (``answers = 0``) — is *not* a label: it is the
model's guess, uncertified (the auto-label threshold is what certifies a
guess, and an auto-labeled item is exported as ``auto``). Such an item has
no final label, is left out by ``labeled_only`` and is not scored.

Read-only; streams in task order in keyset pages (constant memory).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, bindparam, text

from assay import kinds
from assay.errors import InvalidInput

PAGE = 2000
#: the label columns (and their joins) of a page of tasks ``t``; :mod:`assay.formats.export`
#: selects them in its own page query, so a page is read once
LABEL_COLUMNS = ("g.label AS g_label, g.source AS g_source, c.label AS c_label, c.confidence AS c_confidence, "
                 "c.answers AS c_answers, c.status AS c_status, al.label AS a_label, al.confidence AS a_confidence")
LABEL_JOINS = ("LEFT JOIN gold g ON g.project_id = t.project_id AND g.item_id = t.item_id "
               "LEFT JOIN item_consensus c ON c.project_id = t.project_id AND c.item_id = t.item_id "
               "LEFT JOIN auto_labels al ON al.project_id = t.project_id AND al.item_id = t.item_id ")
LABEL_TYPES = {"g_label": JSON, "c_label": JSON, "a_label": JSON}
#: An answered item's final label as far as the database holds it, in SQL over
#: an ``answers`` row ``a`` (with :data:`STORED_JOINS`): gold or a review, else
#: its consensus row, else its auto-label — this resolver's precedence over
#: what is stored. NULL where :meth:`Resolver.resolve` would take a majority
#: vote; a consensus row written before the item's latest answers is taken
#: as it stands (the resolver would recompute its posterior). For aggregates
#: over many answers in the database (the live progress charts), where
#: resolving each item in Python would not stay cheap.
STORED_JOINS = ("LEFT JOIN gold g ON g.project_id = a.project_id AND g.item_id = a.item_id "
                "LEFT JOIN item_consensus c ON c.project_id = a.project_id AND c.item_id = a.item_id "
                "LEFT JOIN auto_labels al ON al.project_id = a.project_id AND al.item_id = a.item_id ")
STORED_LABEL = "COALESCE(g.label, CASE WHEN c.answers > 0 THEN c.label END, al.label)"

_PAGE = text(f"SELECT t.id AS task_id, t.item_id, {LABEL_COLUMNS} FROM tasks t {LABEL_JOINS}"
             "WHERE t.project_id = :p AND t.id > :after ORDER BY t.id LIMIT :n").columns(**LABEL_TYPES)
_PAGE_OF = text(f"SELECT t.id AS task_id, t.item_id, {LABEL_COLUMNS} FROM tasks t {LABEL_JOINS}"
                "WHERE t.project_id = :p AND t.item_id IN :items ORDER BY t.id"
                ).bindparams(bindparam("items", expanding=True)).columns(**LABEL_TYPES)
_ANSWERS = text("SELECT task_id, annotator_id, label FROM answers WHERE project_id = :p "
                "AND task_id > :lo AND task_id <= :hi ORDER BY task_id, id").columns(label=JSON)
_ANSWERS_OF = text("SELECT task_id, annotator_id, label FROM answers WHERE project_id = :p "
                   "AND task_id IN :tasks ORDER BY task_id, id").bindparams(
                       bindparam("tasks", expanding=True)).columns(label=JSON)
_MODEL = text("SELECT method, prior, default_confusion FROM quality_models WHERE project_id = :p"
              ).columns(prior=JSON, default_confusion=JSON)
#: the model's prediction of one item: its prior where a posterior is recomputed
_PROBA = text("SELECT proba FROM predictions WHERE project_id = :p AND item_id = :i").columns(proba=JSON)
_ANY_PREDICTION = text("SELECT 1 FROM predictions WHERE project_id = :p LIMIT 1")
_SKILLS = text("SELECT annotator_id, confusion FROM annotator_skills WHERE project_id = :p").columns(confusion=JSON)
#: ids per ``IN`` list when resolving chosen items
_CHUNK = 1000


#: where a final label comes from (``FinalLabel.source``; a consensus says its method after a colon,
#: ``consensus:online``): what an export may keep (:func:`check_sources`)
SOURCES = ("gold", "review", "consensus", "auto", "majority")


def check_sources(values) -> frozenset[str] | None:
    """The label sources an export keeps (None: every item, labelled or not),
    from names of :data:`SOURCES`; an unknown name is an error naming them."""
    if values is None:
        return None
    if isinstance(values, str):
        values = [v for v in values.split(",") if v.strip()]
    out = frozenset(str(v).strip().lower() for v in values)
    bad = sorted(out - set(SOURCES))
    if bad or not out:
        raise InvalidInput(f"unknown label source {', '.join(repr(b[:20]) for b in bad[:3]) or '(none)'}: "
                           f"use some of {', '.join(SOURCES)}")
    return out


def source_family(source: str | None) -> str | None:
    """``consensus:online`` -> ``consensus``; the others as they are."""
    return None if source is None else source.split(":", 1)[0]


@dataclass(slots=True)
class FinalLabel:
    """An item's final label. ``source``: ``gold``, ``review``,
    ``consensus:<method>``, ``auto``, ``majority`` or None (no label).
    ``task_id`` is the keyset cursor of the pages (task order)."""

    item_id: int
    label: Any
    source: str | None
    confidence: float | None
    task_id: int = 0

    @property
    def method(self) -> str | None:
        """The export's ``label_method``: the source without ``consensus:``."""
        if self.source is not None and self.source.startswith("consensus:"):
            return self.source[len("consensus:"):]
        return self.source

    def as_dict(self) -> dict:
        return {"item_id": self.item_id, "label": self.label, "source": self.source,
                "confidence": self.confidence}


class Resolver:
    """One project's label rules, with the state they need read once (the
    last re-fit's method, prior and annotator confusions). :meth:`resolve`
    turns one row of a page (:data:`LABEL_COLUMNS`) and the item's answers
    (objects with ``annotator_id`` and ``label``) into its :class:`FinalLabel`."""

    def __init__(self, conn, project: dict):
        self.project = project
        self.kind = project["schema"]["kind"]
        self.classes = [c["name"] for c in project["schema"]["classes"]]
        model = conn.execute(_MODEL, {"p": project["id"]}).first()
        self.method = (model.method if model is not None else None) or "online"
        # the project has an aggregation of answers: a re-fit, or adaptive redundancy
        self.aggregates = kinds.get(self.kind).aggregatable and (
            model is not None or project.get("target_confidence") is not None)
        self._prior = model.prior if model is not None else None
        self._default = _default_confusion(model.default_confusion if model is not None else None)
        self._skills: dict[int, list] | None = None
        # only a project with a model has predictions to read, item by item, as priors
        self._predicted = self.aggregates and conn.execute(_ANY_PREDICTION, {"p": project["id"]}).first() is not None
        self._conn = conn
        self._consensus = f"consensus:{self.method}"
        self._majority = kinds.get(self.kind).majority  # the kind's plain vote (the only fallback to one)

    def resolve(self, r, answers: list) -> FinalLabel:
        if r.g_source is not None:
            return FinalLabel(r.item_id, r.g_label, "gold" if r.g_source == "import" else "review", 1.0, r.task_id)
        consensus = self._consensus
        if answers and r.c_status is not None and r.c_answers == len(answers):
            return FinalLabel(r.item_id, r.c_label, consensus, float(r.c_confidence), r.task_id)
        if answers and self.aggregates and all(a.label in self.classes for a in answers):
            label, conf = self._posterior(r.item_id, answers)
            return FinalLabel(r.item_id, label, consensus, conf, r.task_id)
        if r.a_label is not None:
            return FinalLabel(r.item_id, r.a_label, "auto", float(r.a_confidence), r.task_id)
        if answers:
            label, conf = self._majority([a.label for a in answers], self.classes)
            return FinalLabel(r.item_id, label, "majority", conf, r.task_id)
        return FinalLabel(r.item_id, None, None, None, r.task_id)

    def _posterior(self, item_id: int, answers: list) -> tuple[Any, float]:
        """The item's posterior from the stored fit (what an adaptive answer does);
        rare enough (answers since the row was written) to read the prediction here."""
        from assay.quality import online

        k = len(self.classes)
        if self._skills is None:  # read on first need, on the page's connection
            self._skills = {r.annotator_id: r.confusion for r in self._conn.execute(_SKILLS, {"p": self.project["id"]})}
        proba = (self._conn.execute(_PROBA, {"p": self.project["id"], "i": item_id}).scalar()
                 if self._predicted else None)
        if proba is not None and len(proba) == k and all(x >= 0 for x in proba) and sum(proba) > 0:
            total = sum(proba)  # the model's prediction is the item's prior (as in a re-fit)
            lp = [math.log(max(x / total, online.TINY)) for x in proba]
        else:
            lp = online.initial_log_post(self._prior, k)
        default = self._default or online.default_confusion(k)
        code_of = {c: i for i, c in enumerate(self.classes)}
        for a in answers:
            conf = self._skills.get(a.annotator_id)
            lp = online.update(lp, conf if conf is not None and len(conf) == k else default, code_of[a.label])
        best, confidence = online.decision(lp)
        return self.classes[best], float(confidence)

    def using(self, conn) -> Resolver:
        """The same rules, reading (if it must) on ``conn``: each page has its own transaction."""
        self._conn = conn
        return self


def _default_confusion(stored) -> list | None:
    """``quality_models.default_confusion``: a bare K x K list, or ``{"confusion": …}``."""
    if isinstance(stored, dict):
        return stored.get("confusion")
    return stored


def iter_final(db, project: dict, item_ids: Iterable[int] | None = None, *, page: int | None = None,
               after: int = 0) -> Iterator[FinalLabel]:
    """Every item's :class:`FinalLabel`, in task order, from task id ``after``
    on, read in keyset pages of ``page`` tasks (constant memory). With
    ``item_ids``: those items only (in task order within each chunk of 1,000
    ids; unknown ids are left out)."""
    page = page or PAGE
    pid = project["id"]
    resolver = None
    if item_ids is not None:
        ids = sorted({int(i) for i in item_ids})
        for s in range(0, len(ids), _CHUNK):
            with db.read() as conn:
                resolver = (resolver or Resolver(conn, project)).using(conn)
                rows = conn.execute(_PAGE_OF, {"p": pid, "items": ids[s:s + _CHUNK]}).all()
                if not rows:
                    continue
                answers = _by_task(conn.execute(_ANSWERS_OF, {"p": pid, "tasks": [r.task_id for r in rows]}))
                out = [resolver.resolve(r, answers.get(r.task_id, [])) for r in rows]
            yield from out
        return
    while True:
        with db.read() as conn:
            resolver = (resolver or Resolver(conn, project)).using(conn)
            rows = conn.execute(_PAGE, {"p": pid, "after": after, "n": page}).all()
            if not rows:
                return
            answers = _by_task(conn.execute(_ANSWERS, {"p": pid, "lo": after, "hi": rows[-1].task_id}))
            out = [resolver.resolve(r, answers.get(r.task_id, [])) for r in rows]
        yield from out
        after = rows[-1].task_id
        if len(rows) < page:
            return


def final_labels(db, project: dict, item_ids: Iterable[int] | None = None) -> dict[int, FinalLabel]:
    """``{item_id: FinalLabel}`` for the given items (every item when None)."""
    return {f.item_id: f for f in iter_final(db, project, item_ids)}


_TASKS = text("SELECT count(*) FROM tasks WHERE project_id = :p")
#: the items that can have a final label: an answer, a gold row (or a review) or an auto-label
_LABELLED = text("SELECT item_id FROM answers WHERE project_id = :p UNION SELECT item_id FROM gold "
                 "WHERE project_id = :p UNION SELECT item_id FROM auto_labels WHERE project_id = :p")


def iter_labelled(db, project: dict) -> Iterator[FinalLabel]:
    """The :class:`FinalLabel` of every item that can have one (an answer,
    gold or a review, an auto-label; every other item's label is None): on
    a million tasks with 50,000 answered, 50,000 resolved, not a million.
    Not in task order."""
    with db.read() as conn:
        ids = list(conn.execute(_LABELLED, {"p": project["id"]}).scalars())
    return iter_final(db, project, ids)


def summary(db, project: dict) -> dict:
    """How many items have a final label and where the labels come from:
    ``{"items", "labeled", "sources": {source: items}}`` (what an export
    holds; the quality page shows it)."""
    sources: dict[str, int] = {}
    labeled = 0
    with db.read() as conn:
        items = int(conn.execute(_TASKS, {"p": project["id"]}).scalar_one())
    for f in iter_labelled(db, project):
        if f.label is not None:
            labeled += 1
            sources[f.source] = sources.get(f.source, 0) + 1
    return {"items": items, "labeled": labeled, "sources": dict(sorted(sources.items()))}


def labels_page(db, project: dict, *, after: int | None = None, limit: int = 100) -> tuple[list[dict], int | None]:
    """A keyset page of final labels (the API's ``/labels``): rows and the
    cursor of the next page (None on the last)."""
    limit = max(1, min(int(limit), 1000))
    rows = []
    last = None
    for f in iter_final(db, project, page=limit, after=after or 0):
        rows.append(f.as_dict())
        last = f.task_id
        if len(rows) == limit:
            break
    return rows, (last if len(rows) == limit else None)


def _by_task(rows) -> dict[int, list]:
    out: dict[int, list] = {}
    for a in rows:
        out.setdefault(a.task_id, []).append(a)
    return out
