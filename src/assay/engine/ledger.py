"""The task ledger: the only writer of task counters and consensus rows.

Columns owned here and written nowhere else (a test scans the source):
``tasks.needed / answer_count / open_slots / priority / target / is_gold``
and every row of ``item_consensus``.

The rule every function keeps::

    open_slots = max(needed - answer_count - leases, 0)     (gold tasks: 0)
    answer_count = the task's rows in ``answers``
    needed >= answer_count (+ leases, outside gold)          (CHECK answer_count <= needed)

A lease row holds its slot until it is answered, skipped or swept: the
sweeper (:func:`assay.engine.handout.reclaim_expired`) gives an expired lease's slot
back when it deletes the row, so an expired lease that is not swept yet still
counts here (counting only live ones would give that slot out twice). The
``now`` arguments are accepted for the callers' sake and do not change that.
A lease that ends unanswered on a closed item (its consensus 'resolved' or
'review', or auto-labelled: :func:`withdraw` left ``needed`` at answers +
leases) gives no slot back: ``needed`` drops with it (:data:`FREE_SLOT`).

Gold tasks are not in the pool: ``open_slots`` 0, ``needed`` follows their
answers (:data:`COUNT_ANSWER`), their leases come from :mod:`assay.engine.gold` and
give nothing back when swept (:data:`FREE_SLOT`).

Hot path: the hand-out's statements (:data:`CLAIM_SQLITE`, :data:`CLAIM_PG`,
:data:`CLAIM_ID_SQLITE`, :data:`CLAIM_ID_PG`, :data:`COUNT_ANSWER`, :data:`UNCOUNT_ANSWER`, :data:`FREE_SLOT`, :data:`LOCK_TASKS_PG`) are module
constants that :mod:`assay.engine.handout` runs itself on its connection, so a
claim costs one statement as before; they live here because they write the
counters.

:func:`check` and :func:`fix` (``assay doctor``) recount every counter from
the rows it summarises and report, or repair, any drift.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import JSON, bindparam, text

from assay.errors import Conflict
from assay.store import engine as _engine

#: the pool's hand-out order (its index is ``ix_tasks_open``)
POOL_ORDER = "t.priority DESC, t.shuffle_key, t.id"

# ---------------------------------------------------------------- hot path

#: a pool task ``t`` that ``:user`` may get: not answered, skipped or held by them
FOR_USER = (
    " AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.task_id = t.id AND a.annotator_id = :user)"
    " AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.task_id = t.id AND s.annotator_id = :user)"
    " AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.task_id = t.id AND l.annotator_id = :user)"
)
_CLAIM = """
UPDATE tasks SET open_slots = open_slots - 1
WHERE id = (
    SELECT t.id FROM tasks t
    WHERE {which} AND t.open_slots > 0 {for_user}
    {order}
    LIMIT 1 {lock}
) AND open_slots > 0
RETURNING id, item_id
"""
_NEXT_TASK = "t.project_id = :project"
_NEXT_ORDER = f"ORDER BY {POOL_ORDER}"
_BY_ID = "t.id = :task AND t.project_id = :project"
#: take one slot of the next pool task for ``:user`` in ``:project`` (SQLite, inside BEGIN IMMEDIATE)
CLAIM_SQLITE = text(_CLAIM.format(which=_NEXT_TASK, for_user=FOR_USER, order=_NEXT_ORDER, lock=""))
#: the same on PostgreSQL: the candidate row is picked FOR UPDATE SKIP LOCKED
CLAIM_PG = text(_CLAIM.format(which=_NEXT_TASK, for_user=FOR_USER, order=_NEXT_ORDER,
                              lock="FOR UPDATE SKIP LOCKED"))
#: take one slot of pool task ``:task`` (the one skill-aware routing chose) for
#: ``:user`` in ``:project``, if it still has room and they may get it: the same
#: conditions as :data:`CLAIM_SQLITE` in one statement; no row when it is gone
CLAIM_ID_SQLITE = text(_CLAIM.format(which=_BY_ID, for_user=FOR_USER, order="", lock=""))
#: the same on PostgreSQL: a row another claim holds is skipped (no row), never waited for
CLAIM_ID_PG = text(_CLAIM.format(which=_BY_ID, for_user=FOR_USER, order="", lock="FOR UPDATE SKIP LOCKED"))
#: one answer more on ``:task`` (its lease's slot becomes the answer); a gold task's ``needed`` follows
COUNT_ANSWER = text(
    "UPDATE tasks SET answer_count = answer_count + 1, "
    "needed = CASE WHEN is_gold THEN answer_count + 1 ELSE needed END WHERE id = :task"
)
#: one answer less on ``:task`` (undo: the slot becomes the undoer's lease, open_slots unchanged)
UNCOUNT_ANSWER = text(
    "UPDATE tasks SET answer_count = answer_count - 1, "
    "needed = CASE WHEN is_gold THEN answer_count - 1 ELSE needed END WHERE id = :task"
)
# the task's item wants no more answers: its consensus is final ('resolved' or
# 'review': adaptive redundancy settled it, or a reviewer decided it) or the
# ML loop auto-labelled it (not an audit). Two primary-key probes.
_CLOSED = (
    "(EXISTS (SELECT 1 FROM item_consensus c WHERE c.project_id = tasks.project_id"
    " AND c.item_id = tasks.item_id AND c.status <> 'open')"
    " OR EXISTS (SELECT 1 FROM auto_labels x WHERE x.project_id = tasks.project_id"
    " AND x.item_id = tasks.item_id AND NOT x.audit))"
)
#: a lease on ``:task`` ended without an answer (skip, sweep): its slot goes back
#: to the pool, unless the item is closed (:func:`withdraw` left ``needed`` at
#: answers + leases): then the slot leaves ``needed`` instead and the closed item
#: is never handed out again. Gold tasks never enter the pool (their leases come
#: from assay.engine.gold) and give nothing back.
FREE_SLOT = text(
    f"UPDATE tasks SET open_slots = CASE WHEN {_CLOSED} THEN open_slots ELSE open_slots + 1 END, "
    f"needed = CASE WHEN {_CLOSED} AND needed > answer_count THEN needed - 1 ELSE needed END "
    "WHERE id = :task AND NOT is_gold"
)
#: PostgreSQL, before :data:`FREE_SLOT`: hold the tasks' rows (``:ids``) in a
#: statement of its own. READ COMMITTED reads FREE_SLOT's subqueries from the
#: snapshot it started with, so an answer in flight that closes the item (it
#: holds the row) would not be seen; after this lock it has committed and is.
LOCK_TASKS_PG = text("SELECT id FROM tasks WHERE id IN :ids ORDER BY id FOR NO KEY UPDATE").bindparams(
    bindparam("ids", expanding=True))

#: the one constraint that means "this annotator answered this task already"
#: (its name on PostgreSQL; SQLite names the columns)
_DUPLICATE_ANSWER = ("uq_answers_task_id_annotator_id", "answers.task_id, answers.annotator_id")


def answer_refused(err: Exception, task_id: int) -> Conflict:
    """The error for an answer the database refused (an ``IntegrityError``
    from :data:`COUNT_ANSWER` or the answer's INSERT): only the UNIQUE
    (task, annotator) violation means the annotator answered already; any
    other (``CHECK answer_count <= needed``, ``open_slots >= 0``) means the
    task's counters disagree with its answers and leases."""
    msg = str(getattr(err, "orig", None) or err)
    if any(name in msg for name in _DUPLICATE_ANSWER):
        return Conflict(f"you already answered task {task_id}")
    return Conflict(f"task {task_id} cannot take this answer: its counters disagree with its answers and "
                    "leases; nothing was stored, your lease stands. An admin can repair the counters "
                    "with `assay doctor --fix`", reason="counters")


# ---------------------------------------------------------------- statements

_MORE = text("UPDATE tasks SET needed = needed + 1, open_slots = open_slots + 1 WHERE id = :t AND NOT is_gold")
# close a task: open slots nobody holds are withdrawn (leases stay valid)
_WITHDRAW = text(
    "UPDATE tasks SET needed = needed - open_slots, open_slots = 0 WHERE id = :t AND open_slots > 0"
)
_UPSERT_CONSENSUS = text(
    "INSERT INTO item_consensus (project_id, item_id, label, confidence, log_post, answers, status, updated_at) "
    "VALUES (:p, :i, :label, :conf, :lp, :n, :status, :now) "
    "ON CONFLICT (project_id, item_id) DO UPDATE SET label = excluded.label, "
    "confidence = excluded.confidence, log_post = excluded.log_post, answers = excluded.answers, "
    "status = excluded.status, updated_at = excluded.updated_at"
).bindparams(bindparam("label", type_=JSON), bindparam("lp", type_=JSON))

_N_ANSWERS = "(SELECT count(*) FROM answers a WHERE a.task_id = tasks.id)"
_N_LEASES = "(SELECT count(*) FROM leases l WHERE l.task_id = tasks.id)"


def _greatest(a: str, b: str) -> str:
    """Portable GREATEST of two SQL integer expressions."""
    return f"CASE WHEN ({a}) > ({b}) THEN ({a}) ELSE ({b}) END"


def _chunks(ids: Sequence[int], n: int = 500) -> Iterable[list[int]]:
    ids = list(ids)
    for i in range(0, len(ids), n):
        yield ids[i:i + n]


# ---------------------------------------------------------------- tasks


def create_tasks(conn, project_id: int, dataset_id: int, needed: int, shuffled_expr_sql: str = "1 = 0",
                 item_ids: Sequence[int] | None = None, *, import_id: int | None = None) -> int:
    """Make the project's tasks for the dataset's items (all of them, those of
    one import, or ``item_ids``), each wanting ``needed`` answers. The items
    must have no task in the project yet (``UNIQUE (project_id, item_id)``).

    ``shuffled_expr_sql``: the SQL condition (``"1 = 1"``/``"1 = 0"``, or one
    that uses ``:p``, the project, and ``i``, the item) under which a task draws a random place in its window of the hand-out
    order (:func:`assay.store.engine.shuffle_key_sql`): a project with gold
    to hide. Returns how many tasks were made."""
    key = _engine.shuffle_key_sql(conn.dialect.name, "i.id", shuffled_expr_sql)
    sql = ("INSERT INTO tasks (project_id, item_id, priority, needed, answer_count, open_slots, shuffle_key) "
           f"SELECT :p, i.id, 0, :k, 0, :k, {key} FROM items i WHERE i.dataset_id = :d")
    args: dict[str, Any] = {"p": project_id, "k": needed, "d": dataset_id}
    if import_id is not None:
        sql += " AND i.import_id = :imp"
        args["imp"] = import_id
    if item_ids is None:
        return conn.execute(text(sql + " ORDER BY i.id"), args).rowcount
    stmt = text(sql + " AND i.id IN :ids ORDER BY i.id").bindparams(bindparam("ids", expanding=True))
    return sum(conn.execute(stmt, {**args, "ids": chunk}).rowcount for chunk in _chunks(item_ids))


def _settle_sql(needed_sql: str, *, pool: bool = False) -> str:
    """SET clause: ``needed`` from ``needed_sql`` (never below answers +
    leases) and ``open_slots`` what is left of it (gold: needed follows the
    answers, no open slots). ``pool``: the row leaves gold in the same
    statement (SET expressions see the old ``is_gold``)."""
    floor = f"{_N_ANSWERS} + {_N_LEASES}"
    need = _greatest(needed_sql, floor)
    if pool:
        return f"needed = {need}, answer_count = {_N_ANSWERS}, open_slots = {need} - ({floor})"
    return (f"needed = CASE WHEN is_gold THEN {_N_ANSWERS} ELSE {need} END, "
            f"answer_count = {_N_ANSWERS}, "
            f"open_slots = CASE WHEN is_gold THEN 0 ELSE {need} - ({floor}) END")


def set_needed(conn, task_ids: Sequence[int], needed: int | None, *, now: float | None = None,
               only_below: bool = False) -> None:
    """Set how many answers the tasks want (None: leave ``needed``) and
    recompute their counters from their answers and leases. ``needed`` never
    goes below answers + leases (a lease is a promised slot). Gold tasks keep
    their rule (needed = answers, no open slots).

    ``only_below``: only tasks with fewer answers than ``needed`` (e.g. the
    ML loop giving a reverted auto-label's item back to people)."""
    if needed is not None and (isinstance(needed, bool) or not isinstance(needed, int) or needed < 0):
        raise ValueError(f"needed must be a non-negative integer, not {needed!r}")
    sql = "UPDATE tasks SET " + _settle_sql("needed" if needed is None else ":k") + " WHERE id IN :ids"
    if only_below and needed is not None:
        sql += f" AND {_N_ANSWERS} < :k"
    stmt = text(sql).bindparams(bindparam("ids", expanding=True))
    for chunk in _chunks(task_ids):
        conn.execute(stmt, {"ids": chunk, "k": needed})


def recount(conn, project_id: int, task_ids: Sequence[int] | None = None, *, now: float | None = None) -> int:
    """Recompute ``answer_count`` from ``answers`` and ``open_slots`` from
    needed − answers − leases for the given tasks (all of the project's when
    None); ``needed`` is raised where answers + leases exceed it. Returns how
    many rows changed."""
    settle = _settle_sql("needed")
    floor = f"{_N_ANSWERS} + {_N_LEASES}"
    need = _greatest("needed", floor)
    differs = (f"(answer_count <> {_N_ANSWERS} OR needed <> CASE WHEN is_gold THEN {_N_ANSWERS} ELSE {need} END"
               f" OR open_slots <> CASE WHEN is_gold THEN 0 ELSE {need} - ({floor}) END)")
    sql = f"UPDATE tasks SET {settle} WHERE project_id = :p AND {differs}"
    if task_ids is None:
        return conn.execute(text(sql), {"p": project_id}).rowcount
    stmt = text(sql + " AND id IN :ids").bindparams(bindparam("ids", expanding=True))
    return sum(conn.execute(stmt, {"p": project_id, "ids": c}).rowcount for c in _chunks(task_ids))


def withdraw(conn, task_id: int) -> None:
    """Close a task: open slots nobody holds are withdrawn (``needed`` drops
    to answers + leases; leases stay valid)."""
    conn.execute(_WITHDRAW, {"t": task_id})


def add_slot(conn, task_id: int) -> None:
    """One more answer wanted on the task (never on gold)."""
    conn.execute(_MORE, {"t": task_id})


def apply_step(conn, task_id: int, step: str) -> str:
    """Carry out :func:`assay.quality.online.next_step`'s (or
    :func:`assay.engine.redundancy.decide`'s) decision on the task; returns the
    status to store with the item's consensus."""
    if step in ("resolved", "settled"):
        withdraw(conn, task_id)
        return "resolved"
    if step == "review":
        withdraw(conn, task_id)
        return "review"
    if step == "more":
        add_slot(conn, task_id)
    return "open"


def set_priorities(conn, project_id: int, priorities: dict[int, float]) -> None:
    """The model's priorities: ``priority`` = the given value for the tasks in
    ``priorities`` (task id -> priority), 0 for the project's other tasks —
    never below a person's (``pinned_priority``, :func:`prioritize_items`).
    Only rows that change are written."""
    conn.execute(text("UPDATE tasks SET priority = COALESCE(pinned_priority, 0) "
                      "WHERE project_id = :p AND priority <> COALESCE(pinned_priority, 0)"), {"p": project_id})
    if priorities:
        conn.execute(text("UPDATE tasks SET priority = CASE WHEN pinned_priority > :pr THEN pinned_priority "
                          "ELSE :pr END WHERE id = :t AND project_id = :p"),
                     [{"t": t, "pr": float(v), "p": project_id} for t, v in priorities.items()])


_PRIORITIZE = text(
    "UPDATE tasks SET priority = :pr, pinned_priority = :pin WHERE project_id = :p AND item_id IN :items "
    "AND NOT is_gold AND (priority <> :pr OR COALESCE(pinned_priority, -1e300) <> COALESCE(CAST(:pin AS FLOAT), -1e300))"
).bindparams(bindparam("items", expanding=True))


def prioritize_items(conn, project_id: int, item_ids: Sequence[int], priority: float) -> int:
    """A person's ``priority`` for the project's pool tasks of ``item_ids``
    (gold tasks are never in the pool and keep theirs); the other tasks keep
    theirs. It is pinned: the model's priorities (:func:`set_priorities`)
    never put these tasks lower; 0 unpins them. The pool hands out higher
    priorities first (:data:`POOL_ORDER`). Returns how many tasks changed."""
    n, pin = 0, (float(priority) if priority else None)
    for chunk in _chunks(sorted({int(i) for i in item_ids})):
        n += conn.execute(_PRIORITIZE, {"p": project_id, "items": chunk, "pr": float(priority), "pin": pin}).rowcount
    return n


def set_targets(conn, project_id: int, targets: dict[int, float]) -> None:
    """A task's own confidence target (task id -> target) for the tasks in
    ``targets``; NULL (the project's) for the project's other tasks."""
    conn.execute(text("UPDATE tasks SET target = NULL WHERE project_id = :p AND target IS NOT NULL"),
                 {"p": project_id})
    if targets:
        conn.execute(text("UPDATE tasks SET target = :s WHERE id = :t AND project_id = :p"),
                     [{"t": t, "s": float(v), "p": project_id} for t, v in targets.items()])


# ---------------------------------------------------------------- gold


def make_gold(conn, project_id: int, item_ids: Sequence[int]) -> None:
    """Take the items' tasks out of the pool as gold questions: live leases
    on them stay valid (their answers are scored), ``needed`` follows the
    answers from now on."""
    stmt = text("UPDATE tasks SET is_gold = true, open_slots = 0, needed = answer_count"
                " WHERE project_id = :p AND item_id IN :ids").bindparams(bindparam("ids", expanding=True))
    for chunk in _chunks(item_ids):
        conn.execute(stmt, {"p": project_id, "ids": chunk})


_REVOKE_LEASES = text("DELETE FROM leases WHERE task_id IN (SELECT id FROM tasks WHERE project_id = :p"
                      " AND item_id IN :ids AND is_gold)").bindparams(bindparam("ids", expanding=True))


def revoke_gold_leases(conn, project_id: int, item_ids: Sequence[int]) -> None:
    """End every lease on the items' gold tasks (e.g. items that became exam
    items: a lease taken before must not answer them as work). A gold task's
    counters do not count leases, so nothing else moves."""
    for chunk in _chunks(item_ids):
        conn.execute(_REVOKE_LEASES, {"p": project_id, "ids": chunk})


_LOCK_GOLD_TASK = text("SELECT id FROM tasks WHERE project_id = :p AND item_id = :i AND is_gold FOR UPDATE")
_UNMAKE_GOLD = text(f"UPDATE tasks SET is_gold = false, {_settle_sql(':k', pool=True)}"
                    " WHERE project_id = :p AND item_id = :i AND is_gold")


def unmake_gold(conn, project_id: int, item_id: int, overlap: int, *, now: float | None = None) -> None:
    """A gold task goes back to the pool wanting ``overlap`` answers (or as
    many as it has): leases on it keep their slots, so the pool gives out
    only what is left (never a slot somebody holds).

    PostgreSQL (READ COMMITTED): the task row is locked ``FOR UPDATE`` first
    and the counters computed by the next statement, whose snapshot is taken
    after the lock: an answer in flight (it holds the row), a gold lease in
    flight (its foreign key holds ``KEY SHARE``) or a gold claim (it takes
    ``KEY SHARE``: :data:`assay.engine.gold.CLAIM_FROM`) commits first and
    is counted, or waits and then finds the task no longer gold. One UPDATE
    alone would wait for the row but count from the rows it saw before."""
    args = {"p": project_id, "i": item_id, "k": overlap}
    if _engine.dialect_of(conn) == "postgresql":
        if conn.execute(_LOCK_GOLD_TASK, args).first() is None:
            return
    conn.execute(_UNMAKE_GOLD, args)


# ---------------------------------------------------------------- consensus


def upsert_consensus(conn, rows: list[dict] | dict) -> None:
    """Write items' consensus rows: dicts with keys ``p`` (project), ``i``
    (item), ``label``, ``conf``, ``lp`` (log posterior), ``n`` (answers),
    ``status`` and ``now``."""
    if isinstance(rows, dict):
        rows = [rows]
    if rows:
        conn.execute(_UPSERT_CONSENSUS, rows)


def set_consensus_status(conn, project_id: int, item_id: int, status: str, *,
                         only_from: str | None = None) -> None:
    """Set an item's consensus status (``only_from``: only when it is that now)."""
    sql = "UPDATE item_consensus SET status = :s WHERE project_id = :p AND item_id = :i"
    if only_from is not None:
        sql += " AND status = :f"
    conn.execute(text(sql), {"p": project_id, "i": item_id, "s": status, "f": only_from})


def delete_consensus(conn, project_id: int, item_ids: Sequence[int]) -> None:
    """Forget the items' consensus rows."""
    stmt = text("DELETE FROM item_consensus WHERE project_id = :p AND item_id IN :ids").bindparams(
        bindparam("ids", expanding=True))
    for chunk in _chunks(item_ids):
        conn.execute(stmt, {"p": project_id, "ids": chunk})


# ---------------------------------------------------------------- doctor


@dataclass(frozen=True)
class Drift:
    """A stored counter that disagrees with the rows it summarises."""

    project_id: int
    task_id: int
    item_id: int
    column: str  # "answer_count", "needed", "open_slots" or "item_consensus.answers"
    stored: int
    expected: int

    def as_dict(self) -> dict:
        return asdict(self)


_TASK_DRIFT = """
SELECT x.* FROM (
  SELECT t.project_id, t.id AS task_id, t.item_id, t.needed, t.answer_count, t.open_slots,
    CASE WHEN t.is_gold THEN COALESCE(a.n, 0)
         WHEN t.needed > COALESCE(a.n, 0) + COALESCE(l.n, 0) THEN t.needed
         ELSE COALESCE(a.n, 0) + COALESCE(l.n, 0) END AS e_needed,
    COALESCE(a.n, 0) AS e_answers,
    CASE WHEN t.is_gold OR t.needed <= COALESCE(a.n, 0) + COALESCE(l.n, 0) THEN 0
         ELSE t.needed - COALESCE(a.n, 0) - COALESCE(l.n, 0) END AS e_open
  FROM tasks t
  LEFT JOIN (SELECT task_id, count(*) AS n FROM answers GROUP BY task_id) a ON a.task_id = t.id
  LEFT JOIN (SELECT task_id, count(*) AS n FROM leases GROUP BY task_id) l ON l.task_id = t.id
  WHERE {where}
) x WHERE x.answer_count <> x.e_answers OR x.needed <> x.e_needed OR x.open_slots <> x.e_open
ORDER BY x.project_id, x.task_id
"""
_CONSENSUS_DRIFT = """
SELECT c.project_id, t.id AS task_id, c.item_id, c.answers, COALESCE(a.n, 0) AS e_answers
FROM item_consensus c
JOIN tasks t ON t.project_id = c.project_id AND t.item_id = c.item_id
LEFT JOIN (SELECT project_id, item_id, count(*) AS n FROM answers GROUP BY project_id, item_id) a
  ON a.project_id = c.project_id AND a.item_id = c.item_id
WHERE {where} AND c.answers <> COALESCE(a.n, 0)
ORDER BY c.project_id, c.item_id
"""


def _drifts(conn, project_id: int | None) -> list[Drift]:
    where_t = "1 = 1" if project_id is None else "t.project_id = :p"
    where_c = "1 = 1" if project_id is None else "c.project_id = :p"
    out: list[Drift] = []
    for r in conn.execute(text(_TASK_DRIFT.format(where=where_t)), {"p": project_id}):
        for col, stored, expected in (("answer_count", r.answer_count, r.e_answers),
                                      ("needed", r.needed, r.e_needed),
                                      ("open_slots", r.open_slots, r.e_open)):
            if stored != expected:
                out.append(Drift(r.project_id, r.task_id, r.item_id, col, int(stored), int(expected)))
    for r in conn.execute(text(_CONSENSUS_DRIFT.format(where=where_c)), {"p": project_id}):
        out.append(Drift(r.project_id, r.task_id, r.item_id, "item_consensus.answers",
                         int(r.answers), int(r.e_answers)))
    return out


def check(db, project_id: int | None = None) -> list[Drift]:
    """Every counter (of one project, or all) that disagrees with its rows:
    ``answer_count`` vs answers, ``open_slots`` vs needed − answers − leases
    (gold: 0), ``needed`` below answers + leases (gold: = answers), and a
    consensus row's ``answers`` vs the item's answers. Reads only."""
    with db.read() as conn:
        return _drifts(conn, project_id)


def fix(db, project_id: int | None = None, *, audit: bool = True) -> list[Drift]:
    """Repair what :func:`check` finds, in one write transaction (recorded in
    the audit log as ``ledger.fix`` when anything changed); returns the drift
    that was repaired."""
    from assay import audit as _audit

    with db.write() as conn:
        found = _drifts(conn, project_id)
        by_project: dict[int, set[int]] = {}
        consensus: list[dict] = []
        for d in found:
            if d.column == "item_consensus.answers":
                consensus.append({"p": d.project_id, "i": d.item_id, "n": d.expected})
            else:
                by_project.setdefault(d.project_id, set()).add(d.task_id)
        for pid, ids in by_project.items():
            recount(conn, pid, sorted(ids))
        if consensus:
            conn.execute(text("UPDATE item_consensus SET answers = :n WHERE project_id = :p AND item_id = :i"),
                         consensus)
        if found and audit:
            _audit.record(conn, "ledger.fix", target_kind="project" if project_id is not None else None,
                          target_id=project_id,
                          details={"drift": len(found), "tasks": sum(len(v) for v in by_project.values()),
                                   "consensus_rows": len(consensus),
                                   "first": [d.as_dict() for d in found[:20]]})
    return found
