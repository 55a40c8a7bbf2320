"""Gold questions and reviewers' final decisions.

Gold items are items of the project whose true label is known. Their tasks are flagged
``is_gold``: they leave the shared pool (``open_slots`` 0) and are handed out by :func:`claim`
instead — to every annotator once, at the project's ``gold_rate`` (default 5 %) of their tasks,
through the same lease, the same task ids and the same payloads as every other task, so nobody
can tell them apart.

Each annotator's first answer to a gold task is scored at once (:func:`score_answer`, in the
answer's own transaction): it is written to ``first_answers``, an append-only record that undo
never changes (a second answer after an undo is not scored again), and counted into
``gold_stats``. When a project has a bar (``gold_min_accuracy``), an annotator whose accuracy on
gold since the last lifted pause is below it, after at least ``gold_min_answers`` gold answers,
is paused: every request of theirs in the project (next, answer, skip, undo) is refused with 403
``paused`` (:class:`~assay.errors.Paused`, which says nothing about gold) until an admin lifts
the pause (:func:`lift_pause`), which starts a fresh window.

Nothing an annotator sees may tell them which answer was gold or whether it was right, so the
pause rule is not checked at the gold answer itself: it is checked with probability
:data:`PAUSE_CHECK_RATE` at every answer, gold or not (:func:`maybe_pause`), and the pause lands
a few answers after the one that crossed the bar, at a point that says nothing about which it
was.

A reviewer's decision (:func:`decide`) is final: the item's consensus becomes that label with
confidence 1 and it gets no more answers. It is stored next to gold (``source`` 'review'):
re-fits clamp it and it scores the annotators who answered the item, like gold. Reviewed items
are not handed out as gold questions.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import JSON, bindparam, text

from assay import kinds
from assay.errors import InvalidInput, NotFound, Paused
from assay.engine import datasets as _datasets
from assay.engine import ledger
from assay.store import engine

DEFAULT_RATE = 0.05
DEFAULT_MIN_ANSWERS = 5
DEFAULT_MIN_SCORE = 0.8  # assay.engine.settings.DEFAULT_GOLD_MIN_SCORE
#: chance that an answer (gold or not) checks the pause rule: a pause lands
#: 1/rate - 1 answers after the crossing on average, at no tell-tale answer
PAUSE_CHECK_RATE = 1 / 3

# A gold task this annotator has not had, drawn from a random point of the
# gold index within the pool's current window (an index probe, as the pool's
# claim is: their timings match). On PostgreSQL the row is taken FOR KEY
# SHARE (as the lease's foreign key would take it): a removal of the gold item
# in flight (assay.engine.ledger.unmake_gold locks the row FOR UPDATE) is
# waited for and the row re-checked, so a task that just left gold is never
# leased as gold. KEY SHARE does not wait for answers (they update no key).
_CLAIM = (
    "SELECT t.id, t.item_id FROM tasks t WHERE t.project_id = :project AND t.is_gold"
    " AND t.shuffle_key {op} :start AND t.shuffle_key >= :lo AND t.shuffle_key < :hi"
    " AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.task_id = t.id AND a.annotator_id = :user)"
    " AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.task_id = t.id AND s.annotator_id = :user)"
    " AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.task_id = t.id AND l.annotator_id = :user)"
    # exam and teaching items (assay.engine.exam, assay.engine.teach) are shown as such: never a hidden check
    " AND NOT EXISTS (SELECT 1 FROM gold g WHERE g.project_id = t.project_id AND g.item_id = t.item_id"
    " AND g.purpose <> 'check')"
    " ORDER BY t.shuffle_key LIMIT 1{lock}"
)
CLAIM_FROM, CLAIM_BEFORE = text(_CLAIM.format(op=">=", lock="")), text(_CLAIM.format(op="<", lock=""))
#: the same on PostgreSQL (the row taken FOR KEY SHARE)
CLAIM_FROM_PG = text(_CLAIM.format(op=">=", lock=" FOR KEY SHARE OF t"))
CLAIM_BEFORE_PG = text(_CLAIM.format(op="<", lock=" FOR KEY SHARE OF t"))
_PAUSED = text(
    "SELECT paused, window_answers, window_correct FROM gold_stats"
    " WHERE project_id = :p AND annotator_id = :u"
)
_GOLD_LABEL = text("SELECT label FROM gold WHERE project_id = :p AND item_id = :i").columns(label=JSON)
# The first answer of this annotator to this item: every item in a project
# with gold (so that gold and real work cost the same), else only items with
# a known label (a reviewer's decision).
_RECORD = text(
    "INSERT INTO first_answers (project_id, item_id, annotator_id, label, created_at)"
    " VALUES (:p, :i, :u, :label, :now) ON CONFLICT DO NOTHING RETURNING item_id"
).bindparams(bindparam("label", type_=JSON))
_RECORD_ANSWERS = text(
    "INSERT INTO first_answers (project_id, item_id, annotator_id, label, created_at)"
    " SELECT a.project_id, a.item_id, a.annotator_id, a.label, a.created_at FROM answers a"
    " JOIN gold g ON g.project_id = a.project_id AND g.item_id = a.item_id"
    " WHERE a.project_id = :p AND a.item_id IN :ids ON CONFLICT DO NOTHING"
).bindparams(bindparam("ids", expanding=True))
_ENSURE_STATS = text(
    "INSERT INTO gold_stats (project_id, annotator_id, answers, correct, window_answers,"
    " window_correct, paused) VALUES (:p, :u, 0, 0, 0, 0, false) ON CONFLICT DO NOTHING"
)
_COUNT = text(
    "UPDATE gold_stats SET answers = answers + :n, correct = correct + :ok,"
    " window_answers = window_answers + :n, window_correct = window_correct + :ok"
    " WHERE project_id = :p AND annotator_id = :u"
    " RETURNING paused, window_answers, window_correct"
)
_PAUSE = text(
    "UPDATE gold_stats SET paused = true, paused_at = :now WHERE project_id = :p AND annotator_id = :u"
)


#: The generator of the engine's coin flips (a gold draw and its place, the
#: pause check, a teaching item now or not): this module's own, seeded by the
#: OS. Not the ``random`` module's, which any code in the process (a user's
#: script, a library, a test) may seed: the draws would then repeat from run
#: to run, the same unlucky sequence every time. :func:`seed` it for a
#: reproducible run (simulations, tests).
_rng = random.Random()


def seed(value=None) -> None:
    """Seed the engine's coin flips (None: from the OS again)."""
    _rng.seed(value)


def draws() -> random.Random:
    """The engine's generator of coin flips (see :data:`_rng`)."""
    return _rng


def rate_of(project: dict) -> float:
    r = project.get("gold_rate")
    return DEFAULT_RATE if r is None else r


def min_score_of(project: dict) -> float:
    r = project.get("gold_min_score")
    return DEFAULT_MIN_SCORE if r is None else r


def is_right(project: dict, label: Any, known: Any) -> bool:
    """Whether an answer counts right against a known label (gold, exam, teaching checks): the kind's
    score (:meth:`~assay.kinds.base.LabelKind.score`, e.g. span or shape F1) reaches ``gold_min_score``."""
    return kinds.of(project).score(label, known) >= min_score_of(project)


# ---------------------------------------------------------------- hand-out


def check_not_paused(conn, project: dict, user_id: int) -> None:
    """Raise :class:`Paused` if the annotator is paused in a project with a
    bar. The error says nothing about gold: no counts, no bar, no item."""
    if project.get("gold_min_accuracy") is None:
        return
    row = conn.execute(_PAUSED, {"p": project["id"], "u": user_id}).first()
    if row is not None and row.paused:
        raise Paused(pause_reason(project))


def pause_reason(project: dict) -> str:
    return (f"You are paused in project {project['name']!r}: the quality of recent work is being "
            "reviewed. An admin can lift the pause.")


def wants_gold(project: dict, rng: random.Random | None = None) -> bool:
    rate = rate_of(project)
    return rate > 0 and (rng or _rng).random() < rate


def claim(conn, project_id: int, user_id: int, window: int, rng: random.Random | None = None):
    """A gold task this annotator has not had, at random from the pool window
    that starts at shuffle key ``window``, or None (then no gold this time: a
    gold task from elsewhere would stand out among the pool's ids). The
    caller leases it."""
    size = engine.SHUFFLE_WINDOW
    args = {"project": project_id, "user": user_id, "lo": window, "hi": window + size,
            "start": window + (rng or _rng).randrange(size)}
    pg = engine.dialect_of(conn) == "postgresql"
    row = conn.execute(CLAIM_FROM_PG if pg else CLAIM_FROM, args).first()
    return row if row is not None else conn.execute(CLAIM_BEFORE_PG if pg else CLAIM_BEFORE, args).first()


# ---------------------------------------------------------------- scoring


def score_answer(conn, project: dict, item_id: int, user_id: int, label: Any, now: float | None = None) -> Any:
    """Record an annotator's first answer to an item and, if the item's label
    is known (gold or a reviewer's decision), count it, in the answer's
    transaction. A later answer to the same item, after an undo, is neither
    recorded nor scored. Never pauses: :func:`maybe_pause` does, at any
    answer. Returns the item's known label, or None."""
    if not project.get("has_known", True):  # no gold, no reviews: nothing to score (the hot path)
        return None
    now = time.time() if now is None else now
    args = {"p": project["id"], "u": user_id}
    record = {**args, "i": item_id, "label": label, "now": now}
    # In a project with gold every answer runs the same statements, gold or
    # not (a real one is recorded too and counts nothing): timing does not
    # tell gold apart. Elsewhere only answers to reviewed items are recorded.
    first = project.get("has_gold") and conn.execute(_RECORD, record).first() is not None
    known = conn.execute(_GOLD_LABEL, {"p": project["id"], "i": item_id}).scalar()
    if not project.get("has_gold"):
        if known is None:
            return None
        first = conn.execute(_RECORD, record).first() is not None
    scored = first and known is not None
    conn.execute(_ENSURE_STATS, args)
    ok = scored and is_right(project, label, known)
    conn.execute(_COUNT, {**args, "n": int(scored), "ok": int(ok)})
    return known


def maybe_pause(conn, project: dict, user_id: int, now: float, rng: random.Random | None = None) -> bool:
    """At any answer (gold or not) in a project with a bar: with probability
    :data:`PAUSE_CHECK_RATE`, pause the annotator if their window is below
    the bar. Returns whether they are paused now."""
    if project.get("gold_min_accuracy") is None or (rng or _rng).random() >= PAUSE_CHECK_RATE:
        return False
    row = conn.execute(_PAUSED, {"p": project["id"], "u": user_id}).first()
    if row is None or row.paused or not _below_bar(project, row.window_answers, row.window_correct):
        return False
    conn.execute(_PAUSE, {"p": project["id"], "u": user_id, "now": now})
    return True


def _below_bar(project: dict, n: int, ok: int) -> bool:
    bar = project.get("gold_min_accuracy")
    need = project.get("gold_min_answers") or DEFAULT_MIN_ANSWERS
    return bar is not None and n >= need and ok / n < bar


def rescore(conn, project: dict, annotator_ids: Iterable[int] | None = None, now: float | None = None) -> None:
    """Recount ``gold_stats`` from the gold record (after gold changed; undo
    never changes it): totals over all scored gold answers, the window over answers since the last lifted
    pause. Applies the pause rule; never lifts a pause by itself."""
    pid = project["id"]
    q = ("SELECT a.annotator_id, a.label AS answer, g.label AS gold, a.created_at FROM gold g"
         " JOIN first_answers a ON a.project_id = g.project_id AND a.item_id = g.item_id"
         " WHERE g.project_id = :p")
    args: dict[str, Any] = {"p": pid}
    ids = None if annotator_ids is None else sorted(set(annotator_ids))
    if ids is not None:
        if not ids:
            return
        q += " AND a.annotator_id IN :ids"
        args["ids"] = ids
    stmt = text(q).columns(answer=JSON, gold=JSON)
    if ids is not None:
        stmt = stmt.bindparams(bindparam("ids", expanding=True))
    rows = conn.execute(stmt, args).all()
    lifted = {r.annotator_id: r.lifted_at for r in conn.execute(
        text("SELECT annotator_id, lifted_at FROM gold_stats WHERE project_id = :p"), {"p": pid})}
    counts: dict[int, list[int]] = {u: [0, 0, 0, 0] for u in (ids if ids is not None else lifted)}
    score, bar = kinds.of(project).score, min_score_of(project)
    for r in rows:
        c = counts.setdefault(r.annotator_id, [0, 0, 0, 0])
        ok = int(score(r.answer, r.gold) >= bar)
        c[0] += 1
        c[1] += ok
        since = lifted.get(r.annotator_id)
        if since is None or r.created_at > since:
            c[2] += 1
            c[3] += ok
    now = time.time() if now is None else now
    for u, (n, ok, wn, wok) in counts.items():
        conn.execute(_ENSURE_STATS, {"p": pid, "u": u})
        conn.execute(text(
            "UPDATE gold_stats SET answers = :n, correct = :ok, window_answers = :wn, window_correct = :wok"
            " WHERE project_id = :p AND annotator_id = :u"), {"p": pid, "u": u, "n": n, "ok": ok, "wn": wn, "wok": wok})
        if _below_bar(project, wn, wok):
            conn.execute(text(
                "UPDATE gold_stats SET paused = true, paused_at = :now"
                " WHERE project_id = :p AND annotator_id = :u AND NOT paused"), {"p": pid, "u": u, "now": now})


# ---------------------------------------------------------------- gold sets


_ITEMS_META_PAGE = text(
    "SELECT id, meta FROM items WHERE dataset_id = :d AND id > :a ORDER BY id LIMIT 5000"
).columns(meta=JSON)


def match_rows(db, project: dict, rows: Sequence[dict], key: str | None = None) -> list[tuple[int, Any, dict]]:
    """Gold rows as a user gives them — ``{"item_id": …, "label": …}``, or
    with ``key`` ``{key: …, "label": …}`` where ``key`` names an item metadata
    field, each optionally with a ``nuance`` (the edge case it stands for),
    an ``explanation`` and ``reference_items`` (item ids) — as (item id, label
    validated by the project's kind, nuance fields) triples for :func:`add`.
    The first bad row raises InvalidInput naming it (nothing is stored: this
    only reads)."""
    label_kind = kinds.of(project)
    if not rows:
        raise InvalidInput("no gold rows given")
    lookup: dict[str, int] = {}
    if key is not None:
        wanted = {str(r.get(key)) for r in rows if isinstance(r, dict)}
        lookup = items_by_field(db, project["dataset_id"], key, wanted)
    pairs = []
    for n, r in enumerate(rows, 1):
        if not isinstance(r, dict) or "label" not in r:
            raise InvalidInput(f"gold row {n}: needs a label; nothing was stored")
        iid = _row_item(n, r, key, lookup)
        try:
            label = label_kind.validate(r["label"], project["schema"])
        except InvalidInput as e:
            raise InvalidInput(f"gold row {n}: {e.message}; nothing was stored") from None
        pairs.append((iid, label, nuance_fields(n, r)))
    if label_kind.checks_item:  # e.g. spans inside their item's text
        with db.read() as conn:
            for n, (iid, label, _) in enumerate(pairs, 1):
                try:
                    _datasets.check_fits(conn, label_kind, label, iid)
                except InvalidInput as e:
                    raise InvalidInput(f"gold row {n}: {e.message}; nothing was stored") from None
    return pairs


#: the longest nuance tag and explanation, and the most reference items, a gold row may carry
NUANCE_MAX, EXPLANATION_MAX, REFERENCES_MAX = 200, 10_000, 20
#: what a gold row is for: a hidden check among real work, a qualification exam item, or a teaching item
PURPOSES = ("check", "exam", "teach")


def nuance_fields(n: int, r: dict) -> dict:
    """Gold row ``n``'s ``nuance``, ``explanation``, ``reference_items`` and
    ``purpose`` ('check', the default: a hidden gold question; 'exam': an item
    of the qualification exam, :mod:`assay.engine.exam`; 'teach': a teaching
    item, :mod:`assay.engine.teach`, which needs a nuance and an explanation),
    checked (blank text is none); InvalidInput naming the row otherwise."""
    purpose = r.get("purpose")
    if purpose is None or purpose == "" or (isinstance(purpose, float) and purpose != purpose):
        purpose = "check"
    if purpose not in PURPOSES:
        raise InvalidInput(f"gold row {n}: purpose must be 'check' (a hidden gold question), 'exam' "
                           "(a qualification exam item) or 'teach' (a teaching item); nothing was stored")
    out: dict = {"purpose": purpose}
    for name, most in (("nuance", NUANCE_MAX), ("explanation", EXPLANATION_MAX)):
        v = r.get(name)
        if v is None or (isinstance(v, float) and v != v):  # pandas' missing cell
            out[name] = None
            continue
        if not isinstance(v, str) or len(v.strip()) > most:
            raise InvalidInput(f"gold row {n}: {name} must be text of at most {most:,} characters; "
                               "nothing was stored")
        out[name] = v.strip() or None
    refs = r.get("reference_items")
    if refs is None or refs == "" or (isinstance(refs, float) and refs != refs):
        out["reference_items"] = None
    else:
        if isinstance(refs, str):
            refs = [x.strip() for x in refs.split("|") if x.strip()]
        if (not isinstance(refs, list) or len(refs) > REFERENCES_MAX
                or not all(isinstance(x, int) and not isinstance(x, bool)
                           or isinstance(x, str) and x.isdigit() for x in refs)):
            raise InvalidInput(f"gold row {n}: reference_items must be a list of at most {REFERENCES_MAX} item ids "
                               "(in a CSV: ids joined by |); nothing was stored")
        out["reference_items"] = sorted({int(x) for x in refs}) or None
    if purpose == "teach" and not (out["nuance"] and out["explanation"]):
        raise InvalidInput(f"gold row {n}: a teaching item (purpose 'teach') needs a nuance and an explanation; "
                           "nothing was stored")
    return out


def _row_item(n: int, r: dict, key: str | None, lookup: dict[str, int]) -> int:
    """The item id gold row ``n`` names (its ``item_id``, or its ``key`` looked up)."""
    if key is None:
        iid = r.get("item_id")
        if isinstance(iid, str) and iid.strip().isdigit():
            iid = int(iid)
        if not isinstance(iid, int) or isinstance(iid, bool):
            raise InvalidInput(f"gold row {n}: item_id must be an integer (or pass key=… to match "
                               "a metadata field); nothing was stored")
        return iid
    ref = r.get(key)
    if ref is None or str(ref) not in lookup:
        raise InvalidInput(f"gold row {n}: no item has {key} = {ref!r}; nothing was stored")
    return lookup[str(ref)]


def items_by_field(db, dataset_id: int, field: str, wanted: set[str]) -> dict[str, int]:
    """The dataset's items whose metadata ``field`` (as text) is one of
    ``wanted``: {value: item id}, read in pages; a value two items share
    raises InvalidInput."""
    found: dict[str, int] = {}
    after = 0
    while True:
        with db.read() as conn:
            rows = conn.execute(_ITEMS_META_PAGE, {"d": dataset_id, "a": after}).all()
        for r in rows:
            v = (r.meta or {}).get(field)
            if v is not None and str(v) in wanted:
                if str(v) in found:
                    raise InvalidInput(f"{field} = {v!r} matches more than one item; use item_id")
                found[str(v)] = r.id
        if len(rows) < 5000:
            return found
        after = rows[-1].id


def add(conn, project: dict, rows: Sequence[tuple], user_id: int | None,
        now: float | None = None) -> dict:
    """Store gold labels (validated by the caller: ``(item id, label)`` or
    ``(item id, label, nuance fields)`` from :func:`match_rows`) for items of
    the project and turn their tasks into gold tasks. One transaction (the
    caller's): an item, or a reference item, that is not in the project fails
    the whole call. A later row for the same item replaces it whole."""
    pid = project["id"]
    now = time.time() if now is None else now
    by_item = {r[0]: (r[1], r[2] if len(r) > 2 else {}) for r in rows}  # a later row for the same item wins
    ids = sorted(by_item)
    refs = sorted({x for _, extra in by_item.values() for x in (extra.get("reference_items") or ())})
    known = _project_items(conn, pid, sorted(set(ids) | set(refs)))
    missing = [i for i in ids if i not in known]
    if missing:
        raise InvalidInput(f"{len(missing)} gold item(s) are not items of project {project['name']!r} "
                           f"(first: {missing[:5]}); nothing was stored", missing=missing[:20])
    missing = [i for i in refs if i not in known]
    if missing:
        raise InvalidInput(f"{len(missing)} reference item(s) are not items of project {project['name']!r} "
                           f"(first: {missing[:5]}); nothing was stored", missing=missing[:20])
    existing: dict[int, str] = {}
    for i in range(0, len(ids), 500):
        existing.update((r.item_id, r.purpose) for r in conn.execute(
            text("SELECT item_id, purpose FROM gold WHERE project_id = :p AND item_id IN :ids")
            .bindparams(bindparam("ids", expanding=True)), {"p": pid, "ids": ids[i:i + 500]}))
    # An exam or teaching item was shown as one (a hidden check that became one
    # would be told apart afterwards, and one that left would be recognised)
    moved = [i for i in ids if i in existing and existing[i] != by_item[i][1].get("purpose", "check")]
    if moved:
        raise InvalidInput(f"{len(moved)} gold item(s) would change purpose between 'check', 'exam' and 'teach' "
                           f"(first: {moved[:5]}): exam and teaching items are shown as such, so an item "
                           "keeps its purpose; pick other items; nothing was stored", items=moved[:20])
    from assay.engine import teach as _teach  # (teach imports this module)

    _teach.check_references(conn, pid, {i: extra for i, (_, extra) in by_item.items()})
    upsert = text(
        "INSERT INTO gold (project_id, item_id, label, source, created_by, created_at, nuance, explanation,"
        " reference_items, purpose) VALUES (:p, :i, :label, 'import', :u, :now, :nuance, :explanation, :refs,"
        " :purpose)"
        " ON CONFLICT (project_id, item_id) DO UPDATE SET label = excluded.label,"
        " source = excluded.source, created_by = excluded.created_by, created_at = excluded.created_at,"
        " nuance = excluded.nuance, explanation = excluded.explanation, reference_items = excluded.reference_items"
    ).bindparams(bindparam("label", type_=JSON), bindparam("refs", type_=JSON))
    if ids:
        if not conn.execute(text("SELECT 1 FROM tasks WHERE project_id = :p AND is_gold LIMIT 1"),
                            {"p": pid}).first():
            shuffle_pool(conn, pid)
        conn.execute(upsert, [{"p": pid, "i": i, "label": by_item[i][0], "u": user_id, "now": now,
                               "nuance": by_item[i][1].get("nuance"), "explanation": by_item[i][1].get("explanation"),
                               "refs": by_item[i][1].get("reference_items"),
                               "purpose": by_item[i][1].get("purpose", "check")} for i in ids])
        # Out of the pool: live leases on these tasks stay valid (their answers
        # are scored), ``needed`` follows the answers from now on.
        ledger.make_gold(conn, pid, ids)
        # a lease from before is no way to answer an exam or teaching item as work
        ledger.revoke_gold_leases(conn, pid, [i for i in ids if by_item[i][1].get("purpose") in ("exam", "teach")])
        for i in range(0, len(ids), 500):  # answers given before the items became gold
            conn.execute(_RECORD_ANSWERS, {"p": pid, "ids": ids[i:i + 500]})
        answered = [r.annotator_id for r in conn.execute(
            text("SELECT DISTINCT annotator_id FROM first_answers WHERE project_id = :p AND item_id IN :ids")
            .bindparams(bindparam("ids", expanding=True)), {"p": pid, "ids": ids})]
        rescore(conn, project, answered, now)
    return {"added": len(set(ids) - set(existing)), "updated": len(set(existing) & set(ids)),
            "gold": count(conn, pid)}


def _project_items(conn, pid: int, ids: list[int]) -> set[int]:
    """Those of ``ids`` that are items of the project (have a task there)."""
    known: set[int] = set()
    for i in range(0, len(ids), 500):
        known.update(r.item_id for r in conn.execute(
            text("SELECT item_id FROM tasks WHERE project_id = :p AND item_id IN :ids")
            .bindparams(bindparam("ids", expanding=True)), {"p": pid, "ids": ids[i:i + 500]}))
    return known


def shuffle_pool(conn, project_id: int) -> None:
    """Draw the tasks' places in the hand-out order (``shuffle_key``) at
    random within their windows: once a project has gold, its ids must come
    in no order, or a gold task would stand out of the sequence. Until then
    the pool goes out in id order, which is cheaper (:mod:`assay.engine.handout`)."""
    expr = engine.shuffle_key_sql(conn.dialect.name, "item_id")
    conn.execute(text(f"UPDATE tasks SET shuffle_key = {expr} WHERE project_id = :p"), {"p": project_id})


def clustered(conn, project_id: int) -> str | None:
    """A warning when the project's gold items are not spread like a random
    sample of its items (e.g. the first rows of a file), else None. Item ids
    are visible to annotators: gold bunched at one end of them would be told
    apart by its ids. A Kolmogorov-Smirnov test of the gold items' ranks
    among the project's items against the uniform, at the 0.1 % level."""
    ranks = [r[0] for r in conn.execute(text(
        "SELECT rn FROM (SELECT item_id, is_gold, ROW_NUMBER() OVER (ORDER BY item_id) AS rn"
        " FROM tasks WHERE project_id = :p) x WHERE is_gold ORDER BY rn"), {"p": project_id})]
    n_all = conn.execute(text("SELECT count(*) FROM tasks WHERE project_id = :p"), {"p": project_id}).scalar_one()
    n = len(ranks)
    if n < 10 or n_all < 2 * n:
        return None
    d = max(max((i + 1) / n - r / n_all, r / n_all - i / n) for i, r in enumerate(ranks))
    if d <= 1.95 / n ** 0.5:
        return None
    return (f"the {n} gold items are not spread over the project like a random sample (KS D = {d:.2f}): "
            "annotators see item ids, and gold bunched at one end of them could be told apart; "
            "pick gold items at random from the data")


def remove(conn, project: dict, item_id: int) -> None:
    """Forget one gold label; an imported gold task goes back to the pool with
    the project's overlap (less what live leases on it hold: :func:`assay.engine.ledger.unmake_gold`)."""
    pid = project["id"]
    row = conn.execute(text("SELECT source, purpose FROM gold WHERE project_id = :p AND item_id = :i"),
                       {"p": pid, "i": item_id}).first()
    if row is None:
        raise NotFound(f"item {item_id} has no gold label in project {project['name']!r}")
    if row.purpose in ("exam", "teach"):
        raise InvalidInput(f"item {item_id} is a {'qualification exam' if row.purpose == 'exam' else 'teaching'} "
                           "item: annotators have seen it as one, so it never goes back to the pool (import it "
                           "again to change its label)")
    conn.execute(text("DELETE FROM gold WHERE project_id = :p AND item_id = :i"), {"p": pid, "i": item_id})
    # back to the pool: a lease somebody holds on it keeps its slot
    ledger.unmake_gold(conn, pid, item_id, project["overlap"])
    # its first_answers rows stay (append-only) but no longer count: rescore joins gold
    answered = [r.annotator_id for r in conn.execute(
        text("SELECT annotator_id FROM first_answers WHERE project_id = :p AND item_id = :i"), {"p": pid, "i": item_id})]
    rescore(conn, project, answered)


def count(conn, project_id: int) -> int:
    return conn.execute(text("SELECT count(*) FROM gold WHERE project_id = :p AND source = 'import'"),
                        {"p": project_id}).scalar_one()


def list_gold(conn, project_id: int, *, after: int | None, limit: int) -> tuple[list[dict], int | None]:
    rows = conn.execute(text(
        "SELECT item_id, label, source, created_by, created_at, nuance, explanation, reference_items, purpose"
        " FROM gold"
        " WHERE project_id = :p AND item_id > :after ORDER BY item_id LIMIT :n"
    ).columns(label=JSON, reference_items=JSON),
        {"p": project_id, "after": after or 0, "n": limit}).all()
    out = [dict(r._mapping) for r in rows]
    return out, (out[-1]["item_id"] if len(out) == limit else None)


# ---------------------------------------------------------------- reviewers


def decide(conn, project: dict, item_id: int, label: Any, reviewer_id: int, now: float | None = None) -> dict:
    """A reviewer's final label for an item (validated by the caller)."""
    pid = project["id"]
    now = time.time() if now is None else now
    task = conn.execute(text("SELECT id, is_gold FROM tasks WHERE project_id = :p AND item_id = :i"),
                        {"p": pid, "i": item_id}).first()
    if task is None:
        raise NotFound(f"item {item_id} is not in project {project['name']!r}")
    if task.is_gold:
        raise InvalidInput(f"item {item_id} is a gold question; its label is already known")
    conn.execute(text(
        "INSERT INTO gold (project_id, item_id, label, source, created_by, created_at)"
        " VALUES (:p, :i, :label, 'review', :u, :now)"
        " ON CONFLICT (project_id, item_id) DO UPDATE SET label = excluded.label,"
        " created_by = excluded.created_by, created_at = excluded.created_at"
    ).bindparams(bindparam("label", type_=JSON)), {"p": pid, "i": item_id, "label": label, "u": reviewer_id, "now": now})
    # Final: no more answers (open slots nobody holds are withdrawn).
    ledger.withdraw(conn, task.id)
    n = conn.execute(text("SELECT count(*) FROM answers WHERE task_id = :t"), {"t": task.id}).scalar_one()
    classes = [c["name"] for c in project["schema"]["classes"]]
    log_post = kinds.of(project).known_log_posterior(label, classes)
    ledger.upsert_consensus(conn, {"p": pid, "i": item_id, "label": label, "conf": 1.0, "lp": log_post, "n": n,
                                   "status": "resolved", "now": now})
    conn.execute(_RECORD_ANSWERS, {"p": pid, "ids": [item_id]})
    answered = [r.annotator_id for r in conn.execute(
        text("SELECT annotator_id FROM first_answers WHERE project_id = :p AND item_id = :i"), {"p": pid, "i": item_id})]
    rescore(conn, project, answered, now)
    return {"item_id": item_id, "label": label, "source": "review", "reviewer_id": reviewer_id, "answers": n}


# ---------------------------------------------------------------- pauses


def lift_pause(conn, project: dict, user_id: int, admin_id: int, now: float | None = None) -> dict:
    now = time.time() if now is None else now
    row = conn.execute(text(
        "UPDATE gold_stats SET paused = false, lifted_at = :now, lifted_by = :a,"
        " window_answers = 0, window_correct = 0"
        " WHERE project_id = :p AND annotator_id = :u AND paused RETURNING answers, correct"),
        {"p": project["id"], "u": user_id, "a": admin_id, "now": now}).first()
    if row is None:
        raise NotFound(f"user {user_id} is not paused in project {project['name']!r}")
    return {"user_id": user_id, "paused": False, "lifted_at": now}


def stats(conn, project_id: int) -> list[dict]:
    rows = conn.execute(text(
        "SELECT g.annotator_id AS user_id, u.username, g.answers, g.correct, g.window_answers,"
        " g.window_correct, g.paused, g.paused_at, g.lifted_at FROM gold_stats g"
        " JOIN users u ON u.id = g.annotator_id WHERE g.project_id = :p ORDER BY g.annotator_id"),
        {"p": project_id}).all()
    out = []
    for r in rows:
        d = dict(r._mapping)
        d["paused"] = bool(d["paused"])
        d["accuracy"] = d["correct"] / d["answers"] if d["answers"] else None
        out.append(d)
    return out
