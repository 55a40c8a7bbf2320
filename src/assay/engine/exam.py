"""The qualification exam: an optional test before real work.

A project with ``exam_size`` set has an exam: its items are gold rows with
``purpose`` 'exam' (:mod:`assay.engine.gold`). Unlike hidden gold questions
they are shown *as exam items* to whoever takes the exam, so they never go
out as hidden checks or as real work: their tasks are out of the pool like
every gold task, and :func:`assay.engine.gold.claim` passes them over.

Until an annotator has passed, asking for the next task serves the current
question of their current attempt instead of real work (:func:`current`):
an attempt is a random draw of ``exam_size`` items from the exam pool, asked
one at a time, each on a lease of the project's ``lease_seconds`` (a lapsed
lease hands the same question out again: waiting never skips one). Exam
answers (:func:`answer`) are stored in ``exam_answers`` only: never in
``answers``, so they never reach consensus, gold scores or exports. After an
attempt's last question it is scored: at least ``exam_pass`` (default 0.8)
right passes; a fail with attempts left (``exam_retries`` after the first,
default 1) starts a new draw at the next request; a fail with none left
refuses the annotator in the project (403 ``exam_failed``,
:class:`~assay.errors.ExamFailed`) until an admin grants one more attempt
(:func:`reset`). Exam questions cannot be skipped, and have no undo: the
answer given is the answer scored. Nobody is told which answers were right,
nor the right labels (items come back in later attempts): only whether the
attempt passed. Pass, fail and reset are written to the audit log.
"""

from __future__ import annotations

import random
import time
from typing import Any

from sqlalchemy import JSON, bindparam, text

from assay import audit as _audit
from assay.engine import gold as _gold
from assay.errors import Conflict, ExamFailed, NotFound
from assay.engine.settings import DEFAULT_EXAM_PASS, DEFAULT_EXAM_RETRIES

STATUS = text("SELECT status, granted FROM exam_status WHERE project_id = :p AND annotator_id = :u")
_OPEN = text("INSERT INTO exam_status (project_id, annotator_id, status, granted, updated_at)"
             " VALUES (:p, :u, 'open', 0, :now) ON CONFLICT DO NOTHING")
_SET_STATUS = text("UPDATE exam_status SET status = :s, updated_at = :now WHERE project_id = :p AND annotator_id = :u")
_CURRENT = text(
    "SELECT attempt, items, answered, correct, expires_at FROM exam_attempts"
    " WHERE project_id = :p AND annotator_id = :u AND finished_at IS NULL ORDER BY attempt DESC LIMIT 1"
).columns(items=JSON)
_N_ATTEMPTS = text("SELECT count(*) FROM exam_attempts WHERE project_id = :p AND annotator_id = :u")
_POOL = text("SELECT item_id FROM gold WHERE project_id = :p AND purpose = 'exam' ORDER BY item_id")
_POOL_SIZE = text("SELECT count(*) FROM gold WHERE project_id = :p AND purpose = 'exam'")
_START = text(
    "INSERT INTO exam_attempts (project_id, annotator_id, attempt, items, answered, correct, started_at)"
    " VALUES (:p, :u, :a, :items, 0, 0, :now) ON CONFLICT DO NOTHING"
).bindparams(bindparam("items", type_=JSON))
_LEASE = text("UPDATE exam_attempts SET expires_at = :exp WHERE project_id = :p AND annotator_id = :u AND attempt = :a")
_TASK = text("SELECT id FROM tasks WHERE project_id = :p AND item_id = :i")
_LABEL = text("SELECT label FROM gold WHERE project_id = :p AND item_id = :i").columns(label=JSON)
_STEP = text(
    "UPDATE exam_attempts SET answered = answered + 1, correct = correct + :ok, expires_at = NULL"
    " WHERE project_id = :p AND annotator_id = :u AND attempt = :a AND answered = :pos AND finished_at IS NULL"
)
_ADD_ANSWER = text(
    "INSERT INTO exam_answers (project_id, annotator_id, attempt, item_id, label, correct, created_at)"
    " VALUES (:p, :u, :a, :i, :label, :ok, :now)"
).bindparams(bindparam("label", type_=JSON))
_FINISH = text(
    "UPDATE exam_attempts SET finished_at = :now, score = :score, passed = :passed"
    " WHERE project_id = :p AND annotator_id = :u AND attempt = :a"
)


def has_exam(project: dict) -> bool:
    return project.get("exam_size") is not None


def pass_bar(project: dict) -> float:
    v = project.get("exam_pass")
    return DEFAULT_EXAM_PASS if v is None else v


def retries(project: dict) -> int:
    v = project.get("exam_retries")
    return DEFAULT_EXAM_RETRIES if v is None else v


def refusal(project: dict) -> str:
    return (f"You did not pass the qualification exam of project {project['name']!r} and have no attempt "
            "left. An admin can grant another attempt.")


def _left(project: dict, granted: int, used: int) -> int:
    """Attempts not yet started: the first, the retries and those an admin granted."""
    return max(1 + retries(project) + granted - used, 0)


def _attempts_left(conn, project: dict, user_id: int, granted: int) -> int:
    return _left(project, granted, conn.execute(_N_ATTEMPTS, {"p": project["id"], "u": user_id}).scalar_one())


def status(conn, project_id: int, user_id: int) -> str | None:
    """'open', 'passed' or 'failed' (None: never started) of ``user_id`` in the project's exam."""
    st = conn.execute(STATUS, {"p": project_id, "u": user_id}).first()
    return None if st is None else st.status


def pool_size(conn, project_id: int) -> int:
    """How many exam items the project has."""
    return conn.execute(_POOL_SIZE, {"p": project_id}).scalar_one()


def current(conn, project: dict, user_id: int, lease_seconds: float, now: float | None = None,
            rng: random.Random | None = None) -> tuple[int, int, float, int, int] | None:
    """The exam question to serve ``user_id`` now, leased to them:
    ``(task id, item id, lease expiry, question number, questions)``; None
    once they passed. Starts an attempt (a fresh random draw) when none is
    running. Raises :class:`ExamFailed` when they failed with no attempt left
    and Conflict while the project has no exam items."""
    now = time.time() if now is None else now
    args = {"p": project["id"], "u": user_id}
    st = conn.execute(STATUS, args).first()
    if st is not None and st.status == "passed":
        return None
    if st is not None and st.status == "failed":
        raise ExamFailed(refusal(project))
    if st is None:
        conn.execute(_OPEN, {**args, "now": now})
    att = conn.execute(_CURRENT, args).first()
    if att is None:
        pool = [r.item_id for r in conn.execute(_POOL, {"p": project["id"]})]
        if not pool:
            raise Conflict(f"project {project['name']!r} asks for a qualification exam but has no exam items "
                           "yet; an admin must import gold with purpose 'exam'")
        draw = (rng or random.SystemRandom()).sample(pool, min(project["exam_size"], len(pool)))
        n = conn.execute(_N_ATTEMPTS, args).scalar_one()
        conn.execute(_START, {**args, "a": n + 1, "items": draw, "now": now})  # a racing start wins: re-read
        att = conn.execute(_CURRENT, args).first()
    item_id = att.items[att.answered]
    exp = now + lease_seconds
    conn.execute(_LEASE, {**args, "a": att.attempt, "exp": exp})
    task_id = conn.execute(_TASK, {"p": project["id"], "i": item_id}).scalar_one()
    return task_id, item_id, exp, att.answered + 1, len(att.items)


def answer(conn, project: dict, user_id: int, task_id: int, item_id: int, label: Any,
           now: float | None = None) -> dict:
    """Take ``user_id``'s answer (validated by the caller) to the exam question
    they hold; after the attempt's last question, score it. Says whether the
    attempt passed once it is over, never which answers were right."""
    now = time.time() if now is None else now
    args = {"p": project["id"], "u": user_id}
    st = conn.execute(STATUS, args).first()
    if st is not None and st.status == "failed":
        raise ExamFailed(refusal(project))
    att = conn.execute(_CURRENT, args).first()
    if st is None or st.status != "open" or att is None or att.items[att.answered] != item_id:
        raise Conflict(f"task {task_id} is not leased to you; answers are taken only on a lease "
                       "from tasks/next (ask for the next task)")
    if att.expires_at is None or att.expires_at <= now:
        raise Conflict(f"your lease on task {task_id} expired; ask for the next task")
    known = conn.execute(_LABEL, args | {"i": item_id}).scalar_one()
    ok = _gold.is_right(project, label, known)
    step = {**args, "a": att.attempt, "pos": att.answered}
    if conn.execute(_STEP, {**step, "ok": int(ok)}).rowcount != 1:
        raise Conflict(f"you already answered task {task_id}")
    conn.execute(_ADD_ANSWER, {**args, "a": att.attempt, "i": item_id, "label": label, "ok": ok, "now": now})
    n, question = len(att.items), att.answered + 1
    out: dict[str, Any] = {"question": question, "of": n, "finished": question == n}
    if question == n:
        correct = att.correct + int(ok)
        score = correct / n
        passed = score >= pass_bar(project) - 1e-9
        conn.execute(_FINISH, {**args, "a": att.attempt, "now": now, "score": score, "passed": passed})
        left = 0 if passed else _attempts_left(conn, project, user_id, st.granted)
        if passed or not left:
            conn.execute(_SET_STATUS, {**args, "s": "passed" if passed else "failed", "now": now})
        _audit.record(conn, "exam.pass" if passed else "exam.fail", target_kind="project", target_id=project["id"],
                      target=project["name"], details={"user_id": user_id, "attempt": att.attempt,
                                                       "score": score, "questions": n, "attempts_left": left})
        out.update(passed=passed, attempts_left=left)
    return {"id": None, "task_id": task_id, "item_id": item_id, "project_id": project["id"],
            "annotator_id": user_id, "label": label, "created_at": now, "exam": out}


def reset(conn, project: dict, user_id: int, now: float | None = None) -> dict:
    """Grant one more attempt to an annotator who failed with none left."""
    now = time.time() if now is None else now
    row = conn.execute(text(
        "UPDATE exam_status SET status = 'open', granted = granted + 1, updated_at = :now"
        " WHERE project_id = :p AND annotator_id = :u AND status = 'failed' RETURNING granted"),
        {"p": project["id"], "u": user_id, "now": now}).first()
    if row is None:
        raise NotFound(f"user {user_id} has not failed the exam of project {project['name']!r}")
    return {"user_id": user_id, "status": "open", "granted": row.granted}


def report(conn, project: dict) -> list[dict]:
    """Per annotator who started the exam: status, attempts (score, passed,
    times), best score and attempts left. Staff only."""
    rows = conn.execute(text(
        "SELECT s.annotator_id, u.username, s.status, s.granted FROM exam_status s"
        " JOIN users u ON u.id = s.annotator_id WHERE s.project_id = :p ORDER BY s.annotator_id"),
        {"p": project["id"]}).all()
    attempts: dict[int, list[dict]] = {}
    for a in conn.execute(text(
            "SELECT annotator_id, attempt, answered, correct, started_at, finished_at, score, passed, items"
            " FROM exam_attempts WHERE project_id = :p ORDER BY annotator_id, attempt").columns(items=JSON),
            {"p": project["id"]}):
        attempts.setdefault(a.annotator_id, []).append({
            "attempt": a.attempt, "questions": len(a.items), "answered": a.answered, "correct": a.correct,
            "score": a.score, "passed": None if a.passed is None else bool(a.passed),
            "started_at": a.started_at, "finished_at": a.finished_at})
    out = []
    for r in rows:
        mine = attempts.get(r.annotator_id, [])
        scores = [a["score"] for a in mine if a["score"] is not None]
        used = len(mine)
        out.append({"user_id": r.annotator_id, "username": r.username, "status": r.status,
                    "attempts": mine, "best_score": max(scores) if scores else None,
                    # attempts not yet started (a running one counts as used)
                    "attempts_left": 0 if r.status != "open" else _left(project, r.granted, used),
                    "granted": r.granted})
    return out
