"""Task hand-out: leases, answers, skips, undo.

The rules, enforced by the database and not by luck:

* ``tasks.open_slots`` = overlap − answers − live leases, with
  ``CHECK (open_slots >= 0)``; claiming decrements it in one atomic
  statement (SQLite: ``UPDATE … RETURNING`` inside ``BEGIN IMMEDIATE``;
  PostgreSQL: the candidate row is picked ``FOR UPDATE SKIP LOCKED``).
* ``UNIQUE (task_id, annotator_id)`` on answers: nobody answers twice.
* Leases expire; :func:`reclaim_expired` gives their slots back (not on a
  closed item: :data:`assay.engine.ledger.FREE_SLOT`).
* An answer is taken only from the annotator holding a live lease on the
  task: never a task picked by hand, never on a lease past its expiry (even
  before the sweeper has returned it).
* The pool goes out by ``priority``, then ``shuffle_key``, then id. In a
  project with gold, ``shuffle_key`` is a random place within the item's
  window of :data:`~assay.store.engine.SHUFFLE_WINDOW` ids (drawn when the
  task is made, or for the whole pool when the first gold arrives:
  :func:`assay.engine.gold.shuffle_pool`): the ids an annotator sees follow no
  order, and a gold task (handed out by :mod:`assay.engine.gold`, from the window
  the pool is in) never stands out of one. A pool bigger than a window goes
  out window after window, so the rows it touches stay cached. Without gold
  there is nothing to hide and the pool goes out in id order, whose writes
  land together (a shuffled order cost ~10 % of the hand-out's throughput
  at a million tasks: docs/benchmarks.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, bindparam, text
from sqlalchemy.exc import IntegrityError

from assay import kinds
from assay.engine import gold, routing
from assay.engine.ledger import (  # the hot path's counter statements: the ledger owns them
    CLAIM_PG, CLAIM_SQLITE, COUNT_ANSWER, FREE_SLOT, LOCK_TASKS_PG, POOL_ORDER, UNCOUNT_ANSWER, answer_refused,
)
from assay.errors import Conflict, NotFound
from assay.kinds import LabelKind
from assay.store import Database, engine

MAX_LEASES_IN_HAND = 3

# SKIP LOCKED also passes over rows that are locked only for a moment (another
# claim, or an answer to the same task, in flight), so "no row" does not mean
# "nothing left". Waiting on those locks (plain FOR UPDATE) can deadlock with
# other claimers, so instead: look, without locking, for a candidate; while
# one exists, back off briefly and claim again. No lock is held meanwhile.
ANY_CANDIDATE = text(
    "SELECT t.id FROM tasks t WHERE t.project_id = :project AND t.open_slots > 0"
    " AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.task_id = t.id AND a.annotator_id = :user)"
    " AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.task_id = t.id AND s.annotator_id = :user)"
    " AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.task_id = t.id AND l.annotator_id = :user)"
    " LIMIT 1"
)
CLAIM_RETRY_SECONDS = 3.0
# The task this user would get next from the pool (its place: gold is drawn
# from the same window of the shuffled pool, so its ids look like the pool's).
NEXT_CANDIDATE = text(
    "SELECT t.shuffle_key FROM tasks t WHERE t.project_id = :project AND t.open_slots > 0"
    " AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.task_id = t.id AND a.annotator_id = :user)"
    " AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.task_id = t.id AND s.annotator_id = :user)"
    " AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.task_id = t.id AND l.annotator_id = :user)"
    f" ORDER BY {POOL_ORDER} LIMIT 1"
)

MY_LEASES = text(
    "SELECT task_id, expires_at FROM leases "
    "WHERE annotator_id = :user AND project_id = :project ORDER BY created_at"
)
EXTEND = text(
    "UPDATE leases SET expires_at = :exp WHERE task_id = :task AND annotator_id = :user"
)
ADD_LEASE = text(
    "INSERT INTO leases (task_id, annotator_id, project_id, expires_at, created_at) "
    "VALUES (:task, :user, :project, :exp, :now)"
)
TASK = text("SELECT id, project_id, item_id, is_gold FROM tasks WHERE id = :task")
DROP_LEASE = text(
    "DELETE FROM leases WHERE task_id = :task AND annotator_id = :user RETURNING created_at, expires_at"
)
# ``suggestion`` is bound as JSON text encoded here (None stays SQL NULL: no suggestion shown).
ADD_ANSWER = text(
    "INSERT INTO answers (task_id, project_id, item_id, annotator_id, label, created_at, lead_time, "
    "suggestion, suggestion_accepted) "
    "VALUES (:task, :project, :item, :user, :label, :now, :lead, :suggestion, :accepted) RETURNING id"
).bindparams(bindparam("label", type_=JSON))
ADD_SKIP = text(
    "INSERT INTO skips (task_id, annotator_id, project_id, created_at) "
    "VALUES (:task, :user, :project, :now)"
)
SKIPPED = text("SELECT 1 FROM skips WHERE task_id = :task AND annotator_id = :user")
ALREADY_ANSWERED = text(
    "SELECT id FROM answers WHERE task_id = :task AND annotator_id = :user"
)


def next_task(
    db: Database,
    project_id: int,
    user_id: int,
    lease_seconds: float,
    exclude: Sequence[int] = (),
    now: float | None = None,
    project: dict | None = None,
    restrict: Sequence[int] | None = None,
    rng=None,
) -> tuple[int, int, float] | None:
    """Lease a task to ``user_id``: ``(task_id, item_id, expires_at)`` or None.

    A live lease the user already holds (and did not exclude) is handed back
    first, so asking twice never hoards tasks. With ``project`` (the
    project's dict) gold questions are mixed in at its rate and a paused
    annotator is refused (:mod:`assay.engine.gold`); a project with
    ``routing = 'skill'`` hands out the candidate where this annotator's
    answer is expected to add the most (:mod:`assay.engine.routing`; ``rng``:
    the numpy generator of its random share, default the process's).

    ``restrict``: only these task ids may be handed out (no gold then), e.g.
    the items a simulated worker really answered; None (the server): the
    whole pool, at the plain claim's cost.
    """
    now = time.time() if now is None else now
    exp = now + lease_seconds
    excluded = set(exclude)
    allowed = None if restrict is None else set(restrict)
    with db.write() as conn:
        held = conn.execute(MY_LEASES, {"user": user_id, "project": project_id}).all()
        live = [(t, e) for t, e in held if e > now]
        for task_id, _ in live:
            if task_id not in excluded and (allowed is None or task_id in allowed):
                conn.execute(EXTEND, {"exp": exp, "task": task_id, "user": user_id})
                item_id = conn.execute(TASK, {"task": task_id}).one().item_id
                return task_id, item_id, exp
        if len(live) >= MAX_LEASES_IN_HAND:
            raise Conflict(
                f"you already hold {len(live)} tasks in this project; answer or skip one first",
                held=[t for t, _ in live],
            )
        args = {"project": project_id, "user": user_id}
        if project is not None:
            gold.check_not_paused(conn, project, user_id)
        window = choice = None
        if restrict is not None or (project is not None and project.get("routing") == "skill"):
            window, choice = _routed_choice(conn, project, args, allowed, rng)
        if project is not None and project.get("has_gold") and restrict is None:
            # A gold question now and then, but only while real work is left
            # for this user (gold alone would never end), and from the window
            # of the pool that real work comes from. Both ways run the same
            # kinds of statements (a probe for the next real task, an index
            # probe for the task, the lease): timing does not tell them apart.
            # Routed: the probe is the routing window, scored before this
            # decision, and the task is claimed by id (an index probe too).
            if window is None:
                upcoming = conn.execute(NEXT_CANDIDATE, args).first()
            else:
                upcoming = window[0] if window else None
            if gold.wants_gold(project) and upcoming is not None:
                row = gold.claim(conn, project_id, user_id, window_of(upcoming.shuffle_key))
                if row is not None:
                    conn.execute(ADD_LEASE, {"task": row.id, "user": user_id, "project": project_id,
                                             "exp": exp, "now": now})
                    return row.id, row.item_id, exp
        row = _claim(db, conn, args, window, choice, restrict)
        if row is None:
            return None
        conn.execute(
            ADD_LEASE,
            {"task": row.id, "user": user_id, "project": project_id, "exp": exp, "now": now},
        )
        return row.id, row.item_id, exp


def _claim(db: Database, conn, args: dict, window: list | None, choice: int | None,
           restrict: Sequence[int] | None):
    """Take a slot: the routed choice by id when there is a window (none left
    in it: nothing for this user), else (or when another claim took it) the
    plain claim of the pool's next task; a restricted hand-out tries its
    other candidates instead."""
    if window is not None:
        if not window:
            return None
        others = restrict is not None or getattr(window, "cached", False)
        row = routing.claim(conn, args, window, choice, pg=not db.is_sqlite, others=others)
        if row is not None or restrict is not None:
            return row
    if db.is_sqlite:
        return conn.execute(CLAIM_SQLITE, args).first()
    # SKIP LOCKED, then brief back-off while a candidate is locked (no waits on row locks: no deadlocks).
    return _claim_pg(conn, args)


def _routed_choice(conn, project: dict | None, args: dict, restrict: set[int] | None, rng) -> tuple[list, int]:
    """The routing window (:func:`assay.engine.routing.candidates`) and the
    index of the task to claim: scored in a routed project, else the first
    (a restricted hand-out in the pool's order). ``([], 0)``: nothing left.
    Routed without ``restrict``: the annotator's cached scored list
    (:func:`assay.engine.routing.cached_pick`), its picks tried in turn."""
    if restrict is None and project is not None and project.get("routing") == "skill" and routing.LIST_CACHE:
        window = routing.cached_pick(conn, project, args, rng)
        window.cached = True
        return window, 0
    # a routed restricted hand-out scores as many candidates as the server's cached list
    # (the first few in pool order are the same few for everyone: docs/quality.md)
    routed = project is not None and project.get("routing") == "skill"
    window = routing.candidates(conn, args, restrict, n=routing.LIST_WINDOW if routed else None)
    if not window:
        return window, 0
    if project is None or project.get("routing") != "skill":
        return window, 0
    return window, routing.choose(conn, project, args, window, rng)


def window_of(shuffle_key: int) -> int:
    """The first shuffle key of the pool window ``shuffle_key`` lies in."""
    return shuffle_key - shuffle_key % engine.SHUFFLE_WINDOW


def _claim_pg(conn, args: dict):
    row = conn.execute(CLAIM_PG, args).first()
    deadline, pause = time.monotonic() + CLAIM_RETRY_SECONDS, 0.001
    while row is None and time.monotonic() < deadline:
        if conn.execute(ANY_CANDIDATE, args).first() is None:
            return None  # really nothing left for this user
        time.sleep(pause)  # a candidate is locked for a moment: let it commit
        pause = min(pause * 2, 0.02)
        row = conn.execute(CLAIM_PG, args).first()
    return row


def task_row(db: Database, task_id: int):
    with db.read() as conn:
        row = conn.execute(TASK, {"task": task_id}).first()
    if row is None:
        raise NotFound(f"task {task_id} does not exist")
    return row


def suggestion_accepted(label: Any, suggestion: Any, kind: LabelKind) -> bool | None:
    """Whether an answer took the model's suggestion as it was (the kind's
    equality: multi-label, the same set of classes); None when no suggestion
    was shown."""
    if suggestion is None:
        return None
    return kind.same(label, suggestion)


def submit(
    db: Database, task_id: int, project_id: int, item_id: int, user_id: int, label: Any,
    now: float | None = None, *, suggestion: Any = None, project: dict | None = None,
) -> dict:
    """Store one answer on the caller's live lease. The label (and
    ``suggestion``, the model's suggestion shown with the task, if any) must
    already be validated. With ``project`` a paused annotator is refused."""
    now = time.time() if now is None else now
    accepted = None
    if suggestion is not None:
        if project is None:
            raise TypeError("submit(suggestion=...) needs project=: the project's label kind compares them")
        accepted = suggestion_accepted(label, suggestion, kinds.of(project))
    try:
        with db.write() as conn:
            if project is not None:
                gold.check_not_paused(conn, project, user_id)
            leased = conn.execute(DROP_LEASE, {"task": task_id, "user": user_id}).first()
            if leased is None:
                if conn.execute(ALREADY_ANSWERED, {"task": task_id, "user": user_id}).first():
                    raise Conflict(f"you already answered task {task_id}")
                raise Conflict(f"task {task_id} is not leased to you; answers are taken only on a lease "
                               "from tasks/next (ask for the next task)")
            if leased.expires_at <= now:
                # the DELETE above is rolled back with this error: the sweeper
                # returns the slot, as for any expired lease
                raise Conflict(f"your lease on task {task_id} expired; ask for the next task")
            conn.execute(COUNT_ANSWER, {"task": task_id})
            answer_id = conn.execute(
                ADD_ANSWER,
                {"task": task_id, "project": project_id, "item": item_id, "user": user_id,
                 "label": label, "now": now, "lead": now - leased.created_at,
                 "suggestion": None if suggestion is None else json.dumps(suggestion), "accepted": accepted},
            ).scalar_one()
    except IntegrityError as e:  # UNIQUE (task, annotator), or counters that refuse one more answer
        raise answer_refused(e, task_id) from None
    return {
        "id": answer_id, "task_id": task_id, "item_id": item_id, "project_id": project_id,
        "annotator_id": user_id, "label": label, "created_at": now,
        "suggestion": suggestion, "suggestion_accepted": accepted,
    }


def skip(db: Database, task_id: int, project_id: int, user_id: int, now: float | None = None,
         *, project: dict | None = None) -> None:
    now = time.time() if now is None else now
    with db.write() as conn:
        if project is not None:
            gold.check_not_paused(conn, project, user_id)
        leased = conn.execute(DROP_LEASE, {"task": task_id, "user": user_id}).first()
        if leased is None or leased.expires_at <= now:
            raise Conflict(f"task {task_id} is not leased to you, so it cannot be skipped")
        if not db.is_sqlite:  # an answer closing the item in flight commits first (FREE_SLOT sees it)
            conn.execute(LOCK_TASKS_PG, {"ids": [task_id]})
        conn.execute(FREE_SLOT, {"task": task_id})
        conn.execute(ADD_SKIP, {"task": task_id, "user": user_id, "project": project_id, "now": now})


def undo(
    db: Database, answer_id: int, user_id: int, lease_seconds: float, now: float | None = None,
    *, project: dict | None = None,
) -> tuple[int, int, int, float]:
    """Delete the user's own answer and lease its task back to them. The
    gold record (``first_answers``) keeps the first answer: undo never changes it.

    Returns ``(task_id, project_id, item_id, expires_at)``.
    """
    now = time.time() if now is None else now
    with db.write() as conn:
        if project is not None:
            gold.check_not_paused(conn, project, user_id)
        row = conn.execute(
            text("SELECT task_id, project_id, item_id, annotator_id FROM answers WHERE id = :a"),
            {"a": answer_id},
        ).first()
        if row is None:
            raise NotFound(f"answer {answer_id} does not exist")
        if row.annotator_id != user_id:
            raise NotFound(f"answer {answer_id} does not exist")
        conn.execute(text("DELETE FROM answers WHERE id = :a"), {"a": answer_id})
        conn.execute(UNCOUNT_ANSWER, {"task": row.task_id})
        # The answer's slot becomes this user's lease: open_slots is unchanged.
        exp = now + lease_seconds
        conn.execute(
            ADD_LEASE,
            {"task": row.task_id, "user": user_id, "project": row.project_id, "exp": exp, "now": now},
        )
    return row.task_id, row.project_id, row.item_id, exp


def reclaim_expired(db: Database, now: float | None = None, batch: int = 1000) -> int:
    """Give the slots of expired leases back to their tasks (a closed item's
    task wants none: :data:`~assay.engine.ledger.FREE_SLOT`). Returns how many
    leases were swept."""
    now = time.time() if now is None else now
    total = 0
    while True:
        with db.write() as conn:
            # One DELETE … RETURNING: a lease that a concurrent submit already
            # removed is not returned, so its slot is never given back twice.
            freed = conn.execute(
                text(
                    "DELETE FROM leases WHERE (task_id, annotator_id) IN ("
                    " SELECT task_id, annotator_id FROM leases WHERE expires_at <= :now LIMIT :n)"
                    " AND expires_at <= :now RETURNING task_id"
                ),
                {"now": now, "n": batch},
            ).all()
            if freed:
                if not db.is_sqlite:  # answers closing these items in flight commit first
                    conn.execute(LOCK_TASKS_PG, {"ids": sorted({r.task_id for r in freed})})
                conn.execute(FREE_SLOT, [{"task": r.task_id} for r in freed])
            total += len(freed)
        if len(freed) < batch:
            return total
