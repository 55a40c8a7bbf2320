"""Helpers for the load and crash tests: project set-up, annotator loops that
record exactly what they were told succeeded, and a database audit that
checks the hand-out invariants straight from the tables.

Kept import-light and at module level so ``multiprocessing`` (spawn) can run
:func:`process_main` in a fresh interpreter.
"""

from __future__ import annotations

import json
import random
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import JSON, text

CLASSES = ["pos", "neg", "neutral"]


def label_for(task_id: int, user_id: int) -> str:
    """The label an annotator gives a task: deterministic, so the audit can
    check that the stored label is the one that was sent."""
    return CLASSES[(task_id * 7 + user_id * 3) % len(CLASSES)]


def make_project(ws, tmp: Path, *, n_tasks: int, overlap: int, lease_seconds: int = 600,
                 name: str = "p") -> int:
    """A dataset of ``n_tasks`` texts and a single-label project over it."""
    csv = tmp / f"{name}.csv"
    csv.write_text("text\n" + "".join(f"item {name} {i}\n" for i in range(n_tasks)))
    ds = ws.create_dataset(f"ds-{name}")
    ws.import_file(ds["id"], csv)
    p = ws.create_project(name, ds["id"], CLASSES, overlap=overlap, lease_seconds=lease_seconds)
    return p["id"]


def make_annotators(ws, project_id: int, n: int, prefix: str = "ann") -> list[tuple[dict, str]]:
    """``n`` annotators, members of the project: ``[(user, token)]``."""
    out = []
    for i in range(n):
        user, token = ws.add_user(f"{prefix}{i}", "annotator")
        ws.add_member(project_id, user["id"])
        out.append((user, token))
    return out


# ---------------------------------------------------------------- in-process workers


@dataclass
class Record:
    """What one annotator was told: answers that succeeded, skips that succeeded,
    leases taken and never returned, and any unexpected error."""

    user_id: int
    answers: list[tuple[int, int, str]] = field(default_factory=list)  # (answer_id, task_id, label)
    skips: list[int] = field(default_factory=list)
    abandoned: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    nones: int = 0

    def as_dict(self) -> dict:
        return {"user_id": self.user_id, "answers": self.answers, "skips": self.skips,
                "abandoned": self.abandoned, "errors": self.errors, "nones": self.nones}

    @classmethod
    def from_dict(cls, d: dict) -> Record:
        r = cls(d["user_id"])
        r.answers = [tuple(a) for a in d["answers"]]
        r.skips, r.abandoned, r.errors, r.nones = d["skips"], d["abandoned"], d["errors"], d["nones"]
        return r


def open_tasks(ws, project_id: int) -> int:
    """Tasks that still want answers."""
    with ws.db.read() as conn:
        return conn.execute(text(
            "SELECT count(*) FROM tasks WHERE project_id = :p AND answer_count < needed"
        ), {"p": project_id}).scalar_one()


_ELIGIBLE = text(
    "SELECT t.id FROM tasks t WHERE t.project_id = :p AND t.open_slots > 0"
    " AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.task_id = t.id AND a.annotator_id = :u)"
    " AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.task_id = t.id AND s.annotator_id = :u)"
    " AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.task_id = t.id AND l.annotator_id = :u)"
)


def eligible(ws, project_id: int, user_id: int) -> list[int]:
    """Tasks with a free slot that this user has not answered, skipped or leased."""
    with ws.db.read() as conn:
        return list(conn.execute(_ELIGIBLE, {"p": project_id, "u": user_id}).scalars())


def work(ws, project_id: int, user: dict, rec: Record, *, skip_rate: float = 0.0, seed: int = 0,
         deadline: float, until_done: bool = True, max_answers: int | None = None) -> None:
    """Annotate: next → submit (or skip) until the project is finished.

    ``until_done``: on "no task for you" keep polling until no task of the
    project wants answers (another annotator may still skip one this user is
    needed for; on PostgreSQL a task row locked by a concurrent claim is
    passed over). Otherwise stop at the first "no task".
    """
    rng = random.Random(seed)
    try:
        while time.monotonic() < deadline:
            if max_answers is not None and len(rec.answers) >= max_answers:
                return
            task = ws.next_task(project_id, user)
            if task is None:
                rec.nones += 1
                if not until_done or open_tasks(ws, project_id) == 0:
                    return
                time.sleep(0.005 + rng.random() * 0.01)
                continue
            tid = task["id"]
            if rng.random() < skip_rate:
                ws.skip(tid, user)
                rec.skips.append(tid)
                continue
            label = label_for(tid, user["id"])
            ans = ws.submit(tid, user, label)
            assert ans["task_id"] == tid and ans["annotator_id"] == user["id"], ans
            rec.answers.append((ans["id"], tid, ans["label"]))
        rec.errors.append("deadline passed before the project was finished")
    except Exception:  # noqa: BLE001 - recorded and asserted on by the test
        rec.errors.append(traceback.format_exc())


def abandon(ws, project_id: int, user: dict, rec: Record, n: int) -> None:
    """Take up to ``n`` leases (excluding the ones already held) and walk away."""
    try:
        for _ in range(n):
            task = ws.next_task(project_id, user, exclude=rec.abandoned)
            if task is None:
                return
            rec.abandoned.append(task["id"])
    except Exception:  # noqa: BLE001
        rec.errors.append(traceback.format_exc())


def run_threads(ws, project_id: int, users: list[dict], *, skip_rate: float, seed: int,
                deadline: float, start: threading.Barrier | None = None, **kw) -> list[Record]:
    """One thread per user on one shared Workspace; returns their records."""
    recs = [Record(u["id"]) for u in users]
    barrier = start or threading.Barrier(len(users))

    def go(u, rec, s):
        barrier.wait()
        work(ws, project_id, u, rec, skip_rate=skip_rate, seed=s, deadline=deadline, **kw)

    threads = [threading.Thread(target=go, args=(u, r, seed * 1000 + i), daemon=True)
               for i, (u, r) in enumerate(zip(users, recs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 5)
        assert not t.is_alive(), "an annotator thread hung (deadlock?)"
    return recs


def process_main(home: str, url: str, project_id: int, users: list[dict], skip_rate: float,
                 seed: int, budget_s: float, out: str, go_at) -> None:
    """Entry point of one annotator process (spawned): its own Workspace on the
    shared database, one thread per user; records written as JSON to ``out``."""
    from assay import Workspace

    ws = Workspace(home, database_url=url, migrate_db=False)
    try:
        ws.get_project(project_id)  # warm the caches before the start line
        for u in users:
            ws.is_member(project_id, u["id"])
        if isinstance(go_at, (int, float)):
            delay = go_at - time.time()
            if delay > 0:
                time.sleep(delay)
        else:  # a multiprocessing barrier: start together however slow the spawn was
            go_at.wait(60)
        deadline = time.monotonic() + budget_s
        recs = run_threads(ws, project_id, users, skip_rate=skip_rate, seed=seed, deadline=deadline)
    finally:
        ws.close()
    Path(out).write_text(json.dumps([r.as_dict() for r in recs]))


# ---------------------------------------------------------------- the audit


def audit(ws, project_id: int, *, expect_done: bool, answers: dict | None = None,
          maybe_answers: dict | None = None, skips: set | None = None,
          leases_left: set | None = frozenset()) -> dict:
    """Check the hand-out invariants from the tables themselves.

    ``answers``: ``{(task_id, annotator_id): (answer_id or None, label)}`` that
    clients were told succeeded; every one must be stored, and (unless it is in
    ``maybe_answers`` — requests whose reply was lost) nothing else may be.
    ``leases_left``: the ``(task_id, annotator_id)`` leases that must remain
    (default none). Returns a summary for messages.
    """
    with ws.db.read() as conn:
        overlap = conn.execute(text("SELECT overlap FROM projects WHERE id = :p"),
                               {"p": project_id}).scalar_one()
        task_rows = conn.execute(text(
            "SELECT id, item_id, needed, answer_count, open_slots FROM tasks WHERE project_id = :p"
        ), {"p": project_id}).all()
        ans_rows = conn.execute(text(
            "SELECT id, task_id, item_id, project_id, annotator_id, label FROM answers"
        ).columns(label=JSON)).all()
        lease_rows = conn.execute(text("SELECT task_id, annotator_id, project_id FROM leases")).all()
        skip_rows = conn.execute(text("SELECT task_id, annotator_id FROM skips")).all()
    tasks = {r.id: r for r in task_rows}
    mine = [a for a in ans_rows if a.task_id in tasks]
    assert all(a.project_id == project_id for a in mine), "answer with a wrong project_id"

    # Nobody answers a task twice (the UNIQUE constraint, checked anyway).
    pairs = Counter((a.task_id, a.annotator_id) for a in mine)
    dup = [p for p, n in pairs.items() if n > 1]
    assert not dup, f"(task, annotator) answered more than once: {dup[:10]}"

    per_task = Counter(a.task_id for a in mine)
    leases_per_task = Counter(lr.task_id for lr in lease_rows if lr.task_id in tasks)
    bad = []
    for t in tasks.values():
        n = per_task.get(t.id, 0)
        if t.needed != overlap:
            bad.append((t.id, "needed", t.needed))
        if t.answer_count != n:
            bad.append((t.id, "answer_count", t.answer_count, "rows", n))
        if n > t.needed:
            bad.append((t.id, "over-answered", n, t.needed))
        if t.open_slots != t.needed - n - leases_per_task.get(t.id, 0):
            bad.append((t.id, "open_slots", t.open_slots, "needed", t.needed, "answers", n,
                        "leases", leases_per_task.get(t.id, 0)))
        if t.open_slots < 0:
            bad.append((t.id, "negative open_slots", t.open_slots))
        if expect_done and n != t.needed:
            bad.append((t.id, "unfinished", n, t.needed))
    for a in mine:
        if a.item_id != tasks[a.task_id].item_id:
            bad.append((a.task_id, "answer item_id", a.item_id))
        if a.label != label_for(a.task_id, a.annotator_id):
            bad.append((a.task_id, "label", a.label, "annotator", a.annotator_id))
    assert not bad, f"{len(bad)} broken task(s): {bad[:10]}"

    # A skip and an answer by the same annotator on one task never coexist.
    skipped = {(s.task_id, s.annotator_id) for s in skip_rows if s.task_id in tasks}
    both = skipped & set(pairs)
    assert not both, f"answered after skipping: {sorted(both)[:10]}"
    if skips is not None:
        assert skipped == skips, (
            f"skips in DB but not reported: {sorted(skipped - skips)[:10]}; "
            f"reported but not in DB: {sorted(skips - skipped)[:10]}")

    left = {(lr.task_id, lr.annotator_id) for lr in lease_rows if lr.task_id in tasks}
    if leases_left is not None:
        assert left == set(leases_left), f"unexpected leases left: {sorted(left ^ set(leases_left))[:10]}"

    if answers is not None:
        stored = {(a.task_id, a.annotator_id): (a.id, a.label) for a in mine}
        missing = []
        for key, (aid, label) in answers.items():
            got = stored.get(key)
            if got is None or got[1] != label or (aid is not None and got[0] != aid):
                missing.append((key, aid, label, got))
        assert not missing, f"{len(missing)} acknowledged answer(s) lost or altered: {missing[:10]}"
        extra = [(k, v) for k, v in stored.items() if k not in answers]
        maybe = maybe_answers or {}
        unexplained = [(k, v) for k, v in extra if k not in maybe or maybe[k] != v[1]]
        assert not unexplained, (
            f"{len(unexplained)} answer(s) in the DB that no client was told about: {unexplained[:10]}")
    return {"tasks": len(tasks), "answers": len(mine), "leases": len(left), "skips": len(skipped)}


def merge(recs: list[Record]) -> tuple[dict, set]:
    """Acknowledged answers ``{(task, user): (answer_id, label)}`` and skips, from records;
    fails on duplicates (a client told twice that it answered the same task)."""
    answers: dict = {}
    skips: set = set()
    for r in recs:
        for aid, tid, label in r.answers:
            key = (tid, r.user_id)
            assert key not in answers, f"annotator {r.user_id} was handed task {tid} twice"
            answers[key] = (aid, label)
        for tid in r.skips:
            skips.add((tid, r.user_id))
    ids = [v[0] for v in answers.values()]
    assert len(ids) == len(set(ids)), "two acknowledged answers share an id"
    return answers, skips


def no_errors(recs: list[Record]) -> None:
    errs = [(r.user_id, e) for r in recs for e in r.errors]
    assert not errs, "annotator errors:\n" + "\n".join(f"user {u}: {e}" for u, e in errs[:5])


def open_workspace_main(home: str, url: str, go_at: float, out: str) -> None:
    """Entry point of a process that opens (and so migrates) a workspace at
    ``go_at``, as each worker of ``uvicorn --workers N`` does on start."""
    delay = go_at - time.time()
    if delay > 0:
        time.sleep(delay)
    try:
        from assay import Workspace
        from assay.store import migrate

        with Workspace(home, database_url=url) as ws:
            Path(out).write_text(json.dumps({"ok": migrate.current(ws.db)}))
    except Exception as exc:  # noqa: BLE001
        Path(out).write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]}))
