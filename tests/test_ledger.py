"""The task ledger (assay.engine.ledger): the one writer of task counters and
consensus rows, and ``assay doctor``, which recounts them. SQLite and
PostgreSQL (``ws``)."""

from __future__ import annotations

import random
import re
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from assay.errors import Conflict
from assay.engine import gold, ledger, redundancy
from assay.engine.handout import ADD_ANSWER, ADD_LEASE, COUNT_ANSWER, DROP_LEASE, window_of
from factories import answer_item, item_ids, project_with_annotators, task_for_item, task_rows


def _lease(ws, task_id: int, user: dict, project_id: int, seconds: float = 600) -> None:
    """Test set-up: ``user`` holds a live lease on a task the way a gold
    hand-out gives one (:func:`assay.engine.gold.claim` + the lease: no slot taken)."""
    now = time.time()
    with ws.db.write() as conn:
        conn.execute(ADD_LEASE, {"task": task_id, "user": user["id"], "project": project_id,
                                 "exp": now + seconds, "now": now})


@pytest.mark.parametrize("overlap", [1, 2])
def test_removing_gold_keeps_the_slot_a_lease_holds(ws, overlap):
    """Issue 12, bug 2: A holds a lease on a gold task; an admin removes the
    gold item. The pool must not give A's slot to anybody else, and A's
    answer is taken."""
    p, (a, b, c) = project_with_annotators(ws, 2, 3, overlap=overlap)
    ids = item_ids(ws, p["dataset_id"])
    ws.import_gold(p["id"], [{"item_id": ids[0], "label": "pos"}])
    gold_task = task_for_item(ws, p["id"], ids[0])
    _lease(ws, gold_task, a, p["id"])  # A was handed the gold question

    ws.remove_gold(p["id"], ids[0])

    got_by_others = []
    for u in (b, c):
        while (t := ws.next_task(p["id"], u)) is not None:
            got_by_others.append(t["id"])
            ws.submit(t["id"], u, "neg")
    # the others share what A does not hold: overlap - 1 answers on the old gold task
    assert got_by_others.count(gold_task) == overlap - 1
    ws.submit(gold_task, a, "pos")  # A's answer is taken
    row = {r.id: r for r in task_rows(ws, p["id"])}[gold_task]
    assert (row.needed, row.answer_count, row.open_slots) == (overlap, overlap, 0)
    assert ws.doctor()["drift"] == []


def test_an_answer_the_counters_refuse_says_so_not_already_answered(ws):
    p, (a,) = project_with_annotators(ws, 1, 1, overlap=1)
    t = ws.next_task(p["id"], a)
    with ws.db.write() as conn:  # corrupt: the task wants no answer although A holds its slot
        conn.execute(text("UPDATE tasks SET needed = 0 WHERE id = :t"), {"t": t["id"]})
    with pytest.raises(Conflict) as e:
        ws.submit(t["id"], a, "pos")
    assert "already answered" not in e.value.message
    assert "assay doctor" in e.value.message and f"task {t['id']}" in e.value.message
    # nothing was stored; the lease is still A's
    assert task_rows(ws, p["id"])[0].answer_count == 0


def test_a_second_answer_on_the_same_task_says_already_answered(ws):
    p, (a,) = project_with_annotators(ws, 1, 1, overlap=2)
    ids = item_ids(ws, p["dataset_id"])
    answer_item(ws, p["id"], ids[0], a, "pos")
    task = task_for_item(ws, p["id"], ids[0])
    _lease(ws, task, a, p["id"])  # a lease on a task A answered (only corrupt data gives one)
    with pytest.raises(Conflict) as e:
        ws.submit(task, a, "neg")
    assert e.value.message == f"you already answered task {task}"


# ---------------------------------------------------------------- doctor


def _counters(ws, project_id: int) -> dict:
    with ws.db.read() as conn:
        tasks = {r.id: tuple(r[1:]) for r in conn.execute(text(
            "SELECT id, needed, answer_count, open_slots, is_gold FROM tasks WHERE project_id = :p"),
            {"p": project_id})}
        cons = {r.item_id: r.answers for r in conn.execute(text(
            "SELECT item_id, answers FROM item_consensus WHERE project_id = :p"), {"p": project_id})}
    return {"tasks": tasks, "consensus": cons}


def _busy_project(ws, name: str = "p"):
    """An adaptive project (consensus rows) with answers, a live lease and gold."""
    p, (a, b) = project_with_annotators(ws, 5, 2, overlap=2, target_confidence=0.9, name=name)
    ids = item_ids(ws, p["dataset_id"])
    answer_item(ws, p["id"], ids[0], a, "pos")
    answer_item(ws, p["id"], ids[0], b, "pos")
    answer_item(ws, p["id"], ids[1], a, "neg")
    ws.import_gold(p["id"], [{"item_id": ids[4], "label": "pos"}])
    assert ws.next_task(p["id"], b) is not None  # a live lease
    return p, ids


def _corrupt(ws, p, ids) -> set:
    """Three counters go wrong by direct SQL; the drift doctor must find."""
    t0, t1, t3 = (task_for_item(ws, p["id"], ids[i]) for i in (0, 1, 3))
    before = _counters(ws, p["id"])
    with ws.db.write() as conn:
        conn.execute(text("UPDATE tasks SET answer_count = 1 WHERE id = :t"), {"t": t0})
        conn.execute(text("UPDATE tasks SET open_slots = 0 WHERE id = :t"), {"t": t3})
        conn.execute(text("UPDATE item_consensus SET answers = 5 WHERE project_id = :p AND item_id = :i"),
                     {"p": p["id"], "i": ids[1]})
    return {
        (p["id"], t0, ids[0], "answer_count", 1, before["tasks"][t0][1]),
        (p["id"], t3, ids[3], "open_slots", 0, before["tasks"][t3][2]),
        (p["id"], t1, ids[1], "item_consensus.answers", 5, before["consensus"][ids[1]]),
    }


def _as_set(report: dict) -> set:
    return {(d["project_id"], d["task_id"], d["item_id"], d["column"], d["stored"], d["expected"])
            for d in report["drift"]}


def test_doctor_reports_exactly_the_corrupted_counters_and_fix_repairs_them(ws):
    p, ids = _busy_project(ws)
    other, _ = _busy_project(ws, "q")
    assert ws.doctor()["drift"] == []  # normal work leaves no drift (gold, leases, consensus)
    before = _counters(ws, p["id"])
    expected = _corrupt(ws, p, ids)
    assert _as_set(ws.doctor()) == expected
    assert _as_set(ws.doctor(p["name"])) == expected
    assert ws.doctor(other["id"])["drift"] == []

    fixed = ws.doctor(p["id"], fix=True)
    assert fixed["fixed"] is True and _as_set(fixed) == expected
    assert _counters(ws, p["id"]) == before
    assert ws.doctor()["drift"] == []
    records, _ = ws.audit_log(action="ledger.fix")
    assert len(records) == 1 and records[0]["target_id"] == p["id"] and records[0]["details"]["drift"] == 3
    # nothing to fix: no audit record
    assert ws.doctor(fix=True) == {"project_id": None, "drift": [], "fixed": False}
    assert len(ws.audit_log(action="ledger.fix")[0]) == 1


def test_recount_keeps_leased_slots_and_gold(ws):
    p, ids = _busy_project(ws)
    before = _counters(ws, p["id"])
    with ws.db.write() as conn:
        conn.execute(text("UPDATE tasks SET open_slots = needed WHERE project_id = :p AND NOT is_gold"),
                     {"p": p["id"]})
        changed = ledger.recount(conn, p["id"])
    # the tasks whose answers or leases hold slots: item 0 (2 answers), item 1 (1), the leased one
    assert changed == sum(1 for needed, _, open_slots, gold in before["tasks"].values()
                          if not gold and open_slots != needed) >= 2
    assert _counters(ws, p["id"]) == before


def test_doctor_cli_exits_1_on_drift_and_fix_repairs(home):
    from assay import Workspace
    from factories import run_cli

    ws = Workspace(home)
    p, ids = _busy_project(ws)
    expected = _corrupt(ws, p, ids)
    ws.close()
    r = run_cli("doctor")
    assert r.exit_code == 1, r.output
    assert "3 drift(s) found" in r.output
    assert f"task {task_for_item(Workspace(home), p['id'], ids[3])} (item {ids[3]}): open_slots is 0" in r.output
    r = run_cli("doctor", "--project", p["name"], "--json")
    assert r.exit_code == 1
    assert len(expected) == 3
    r = run_cli("doctor", "--fix")
    assert r.exit_code == 0, r.output
    assert "3 drift(s) repaired" in r.output
    r = run_cli("doctor")
    assert r.exit_code == 0 and "counters agree" in r.output
    records, _ = Workspace(home).audit_log(action="ledger.fix")
    assert len(records) == 1 and records[0]["actor"].startswith("cli:")


def test_doctor_over_http_is_for_admins(ws):
    from fastapi.testclient import TestClient

    from assay.server import create_app

    p, ids = _busy_project(ws)
    expected = _corrupt(ws, p, ids)
    _, admin_token = ws.add_user("root", "admin")
    _, reviewer_token = ws.add_user("rev", "reviewer")
    ann = ws.get_user("p-ann0")
    ann_token = ws.create_token(ann["id"])
    admin = {"Authorization": f"Bearer {admin_token}"}
    with TestClient(create_app(ws, reclaim_interval=0, refit_interval=0)) as c:
        for token in (reviewer_token, ann_token):
            h = {"Authorization": f"Bearer {token}"}
            assert c.get("/api/doctor", headers=h).status_code == 403
            assert c.post("/api/doctor/fix", headers=h).status_code == 403
        assert c.get("/api/doctor").status_code == 401
        r = c.get("/api/doctor", headers=admin, params={"project_id": p["id"]})
        assert r.status_code == 200 and _as_set(r.json()) == expected
        r = c.post("/api/doctor/fix", headers=admin)
        assert r.status_code == 200 and _as_set(r.json()) == expected and r.json()["fixed"] is True
        assert c.get("/api/doctor", headers=admin).json()["drift"] == []
        assert c.get("/api/doctor", headers=admin, params={"project_id": 999}).status_code == 404
    records, _ = ws.audit_log(action="ledger.fix")
    assert records[0]["actor"] == "root"


# ---------------------------------------------------------------- one writer

SRC = Path(__file__).resolve().parents[1] / "src" / "assay"
#: modules that still write counters themselves (empty: every writer went through the ledger)
NOT_YET_MIGRATED: set[str] = set()
_COUNTERS = r"(needed|answer_count|open_slots|priority|target|is_gold)"
_WRITES = [
    re.compile(r"\bUPDATE\s+tasks\s+SET\b[^\"']*?\b" + _COUNTERS + r"\s*=", re.I),
    re.compile(r"\bINSERT\s+INTO\s+tasks\b", re.I),
    re.compile(r"\bDELETE\s+FROM\s+tasks\b", re.I),
    re.compile(r"\b(UPDATE|INSERT\s+INTO|DELETE\s+FROM)\s+item_consensus\b", re.I),
    re.compile(r"\b(tasks|item_consensus)\.(update|insert|delete)\(", re.I),
    re.compile(r"\b(update|insert|delete)\(\s*(schema\.)?(tasks|item_consensus)\b", re.I),
]


def _joined(source: str) -> str:
    """The source with adjacent string literals' seams removed (SQL split over lines)."""
    return re.sub(r"[\"']\s*\n\s*f?[\"']", "", source)


def test_only_the_ledger_writes_counters_and_consensus_rows():
    offenders = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel == "engine/ledger.py" or rel.startswith("store/migrations/") or rel in NOT_YET_MIGRATED:
            continue
        text_ = _joined(path.read_text(encoding="utf-8"))
        offenders += [f"{rel}: {m.group(0)[:80]!r}" for rx in _WRITES for m in rx.finditer(text_)]
    assert offenders == [], "task counters / consensus rows written outside assay.engine.ledger:\n" + \
        "\n".join(offenders)


def test_the_scan_sees_a_writer():
    """The scan above is not vacuous: it finds the ledger's own statements."""
    text_ = _joined((SRC / "engine" / "ledger.py").read_text(encoding="utf-8"))
    found = {rx.pattern for rx in _WRITES if rx.search(text_)}
    assert len(found) >= 3
    assert any(rx.search(_joined('x = ("UPDATE tasks SET is_gold = false, "\n    "needed = 1")')) for rx in _WRITES)


# ---------------------------------------------------------------- closed tasks keep their slots


def _skilled(ws, p, user) -> None:
    """Test set-up: ``user`` is a measured, reliable annotator (as a re-fit would store)."""
    with ws.db.write() as conn:
        conn.execute(text("INSERT INTO annotator_skills (project_id, annotator_id, confusion, accuracy, answers) "
                          "VALUES (:p, :u, '[[0.99, 0.01], [0.01, 0.99]]', 0.99, 100)"),
                     {"p": p["id"], "u": user["id"]})


def _counts(ws, task_id: int) -> tuple:
    with ws.db.read() as conn:
        r = conn.execute(text("SELECT needed, answer_count, open_slots FROM tasks WHERE id = :t"),
                         {"t": task_id}).one()
    return tuple(r)


def _close(ws, how: str, p, a, item_id: int, task_id: int) -> None:
    """Close the item while another annotator holds a lease on its task."""
    if how == "resolved":  # adaptive redundancy: a reliable annotator's answer reaches the target
        answer_item(ws, p["id"], item_id, a, "pos")
    elif how == "review":  # a reviewer's final label
        answer_item(ws, p["id"], item_id, a, "pos")
        rev, _ = ws.add_user("rev", "reviewer")
        ws.review(p["id"], item_id, "pos", rev)
    else:  # the ML loop's auto-label (what learn.step._write_auto_labels writes, on an unanswered item)
        with ws.db.write() as conn:
            conn.execute(text("INSERT INTO auto_labels (project_id, item_id, label, confidence, model_version, "
                              "audit, created_at) VALUES (:p, :i, '\"pos\"', 0.99, 1, false, 0)"),
                         {"p": p["id"], "i": item_id})
            ledger.withdraw(conn, task_id)


@pytest.mark.parametrize("how", ["resolved", "review", "auto_label"])
@pytest.mark.parametrize("ends", ["expires", "skipped"])
def test_a_lease_ending_on_a_closed_item_gives_no_slot_back(ws, how, ends):
    """Issue 12, suspicion (a): an item is closed (resolved, decided by a
    reviewer, auto-labelled) while B holds a lease on its task. When B's lease
    expires (the sweeper) or B skips, the slot must not go back to the pool:
    the task wants no more answers, so ``needed`` drops with the lease and
    nobody else is handed the closed item."""
    p, (a, b, c) = project_with_annotators(ws, 1, 3, overlap=3, target_confidence=0.95, max_answers=5)
    _skilled(ws, p, a)
    item = item_ids(ws, p["dataset_id"])[0]
    t = ws.next_task(p["id"], b)  # B holds a lease
    assert t is not None
    _close(ws, how, p, a, item, t["id"])
    answers = 0 if how == "auto_label" else 1
    assert _counts(ws, t["id"]) == (answers + 1, answers, 0)  # B's lease keeps its slot meanwhile
    if ends == "expires":
        assert ws.reclaim_expired(now=time.time() + 10 ** 6) == 1
    else:
        ws.skip(t["id"], b)
    assert _counts(ws, t["id"]) == (answers, answers, 0)
    assert ws.next_task(p["id"], c) is None
    assert ws.doctor()["drift"] == []


def test_a_lease_ending_on_an_open_item_gives_its_slot_back(ws):
    """The rule above is only for closed items: on an item that still wants
    answers (adaptive, below target) an expired lease's slot goes back."""
    p, (a, b, c) = project_with_annotators(ws, 1, 3, overlap=2, target_confidence=0.95, max_answers=5)
    item = item_ids(ws, p["dataset_id"])[0]
    t = ws.next_task(p["id"], b)
    answer_item(ws, p["id"], item, a, "pos")  # an unmeasured annotator: below target, B's answer still wanted
    assert ws.item_consensus(p["id"])[0][0]["status"] == "open"
    assert _counts(ws, t["id"]) == (2, 1, 0)
    assert ws.reclaim_expired(now=time.time() + 10 ** 6) == 1
    assert _counts(ws, t["id"]) == (2, 1, 1)
    assert ws.next_task(p["id"], c)["id"] == t["id"]
    assert ws.doctor()["drift"] == []


# ---------------------------------------------------------------- gold removal under concurrency (PostgreSQL)


#: these interleavings exist on PostgreSQL only (SQLite writers take turns,
#: BEGIN IMMEDIATE): the tests run there, and none is skipped on SQLite
pg_only = pytest.mark.parametrize("migrated_db_url", ["postgres"], indirect=True)


def _someone_waits_on_a_lock(ws, done, timeout: float = 5.0) -> bool:
    """Poll until another backend waits on a lock (or ``done`` is set)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done.is_set():
        with ws.db.read() as conn:
            if conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                                 " AND datname = current_database()")).scalar_one():
                return True
        time.sleep(0.02)
    return False


def _in_thread(fn, *args):
    """Run ``fn`` in a thread; returns (thread, done event, errors list)."""
    done, errors = threading.Event(), []

    def run():
        try:
            fn(*args)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)
        finally:
            done.set()

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th, done, errors


def _gold_project(ws):
    p, (a, b) = project_with_annotators(ws, 3, 2, overlap=2)
    ids = item_ids(ws, p["dataset_id"])
    ws.import_gold(p["id"], [{"item_id": ids[0], "label": "pos"}])
    return p, a, b, ids[0], task_for_item(ws, p["id"], ids[0])


@pg_only
def test_gold_removal_waits_for_an_answer_in_flight(ws):
    """Issue 12, suspicion (b): A answers a gold task (its transaction holds
    the task row) while an admin removes the gold item. On PostgreSQL (READ
    COMMITTED) the removal must count A's answer, not the rows it saw before
    it waited."""
    p, a, _, item, task = _gold_project(ws)
    _lease(ws, task, a, p["id"])
    with ws.db.write() as conn:  # A's answer, in flight: the submit's statements
        conn.execute(DROP_LEASE, {"task": task, "user": a["id"]})
        conn.execute(COUNT_ANSWER, {"task": task})
        conn.execute(ADD_ANSWER, {"task": task, "project": p["id"], "item": item, "user": a["id"],
                                  "label": "pos", "now": time.time(), "lead": 1.0, "suggestion": None,
                                  "accepted": None})
        th, done, errors = _in_thread(ws.remove_gold, p["id"], item)
        assert _someone_waits_on_a_lock(ws, done)  # the removal waits for the answer's row lock
    th.join(30)
    assert not th.is_alive() and errors == []
    assert _counts(ws, task) == (2, 1, 1)
    assert ws.doctor()["drift"] == []


@pg_only
def test_gold_removal_counts_a_gold_lease_in_flight(ws):
    """B is being handed the gold task (claim + lease, not committed yet)
    while the gold item is removed: the removal must see B's lease."""
    p, _, b, item, task = _gold_project(ws)
    with ws.db.write() as conn:  # the gold hand-out's statements, in flight
        key = conn.execute(text("SELECT shuffle_key FROM tasks WHERE id = :t"), {"t": task}).scalar_one()
        row = gold.claim(conn, p["id"], b["id"], window_of(key), random.Random(0))
        assert row is not None and row.id == task
        now = time.time()
        conn.execute(ADD_LEASE, {"task": task, "user": b["id"], "project": p["id"], "exp": now + 600, "now": now})
        th, done, errors = _in_thread(ws.remove_gold, p["id"], item)
        _someone_waits_on_a_lock(ws, done)
    th.join(30)
    assert not th.is_alive() and errors == []
    assert _counts(ws, task) == (2, 0, 1)  # B's lease holds one of the two slots
    assert ws.doctor()["drift"] == []


@pg_only
def test_a_gold_hand_out_waits_for_a_removal_in_flight(ws):
    """The gold item is being removed (not committed yet) while B asks for a
    gold question: B must not be handed the task as gold after the removal
    counted its leases (B's lease would hold a slot the pool gives out)."""
    p, _, b, item, task = _gold_project(ws)
    project = ws.get_project(p["id"])
    got = []

    def hand_out():
        with ws.db.write() as c2:
            key = c2.execute(text("SELECT shuffle_key FROM tasks WHERE id = :t"), {"t": task}).scalar_one()
            row = gold.claim(c2, p["id"], b["id"], window_of(key), random.Random(0))
            if row is not None:
                now = time.time()
                c2.execute(ADD_LEASE, {"task": row.id, "user": b["id"], "project": p["id"],
                                       "exp": now + 600, "now": now})
                got.append(row.id)

    with ws.db.write() as conn:
        gold.remove(conn, project, item)
        th, done, errors = _in_thread(hand_out)
        _someone_waits_on_a_lock(ws, done)
    th.join(30)
    assert not th.is_alive() and errors == []
    assert got == []  # no gold question left to give
    assert _counts(ws, task) == (2, 0, 2)
    assert ws.doctor()["drift"] == []


@pg_only
@pytest.mark.parametrize("ends", ["expires", "skipped"])
def test_a_lease_ending_while_its_item_is_being_resolved_gives_no_slot_back(ws, ends):
    """Suspicion (a) under concurrency: A's answer resolves the item (its
    transaction holds the task row, not committed yet) while C's lease on the
    task is swept, or C skips. On PostgreSQL (READ COMMITTED) the slot must
    not go back because the sweep read the item's status before it waited."""
    p, (a, b, c) = project_with_annotators(ws, 1, 3, overlap=3, target_confidence=0.95, max_answers=5)
    _skilled(ws, p, a)
    project = ws.get_project(p["id"])
    item = item_ids(ws, p["dataset_id"])[0]
    tb, tc, ta = (ws.next_task(p["id"], u) for u in (b, c, a))  # three leases, no slot open
    task = ta["id"]
    assert tb["id"] == tc["id"] == task
    if ends == "expires":  # C's lease ran out (A's and B's are live)
        with ws.db.write() as conn:
            conn.execute(text("UPDATE leases SET expires_at = 0 WHERE task_id = :t AND annotator_id = :u"),
                         {"t": task, "u": c["id"]})
    with ws.db.write() as conn:  # A's answer, in flight (Workspace.submit's statements)
        now = time.time()
        conn.execute(DROP_LEASE, {"task": task, "user": a["id"]})
        conn.execute(COUNT_ANSWER, {"task": task})
        conn.execute(ADD_ANSWER, {"task": task, "project": p["id"], "item": item, "user": a["id"],
                                  "label": "pos", "now": now, "lead": 1.0, "suggestion": None, "accepted": None})
        assert redundancy.after_answer(conn, project, task, item, a["id"], "pos", now)["status"] == "resolved"
        if ends == "expires":
            th, done, errors = _in_thread(ws.reclaim_expired)
        else:
            th, done, errors = _in_thread(ws.skip, task, c)
        assert _someone_waits_on_a_lock(ws, done)
    th.join(30)
    assert not th.is_alive() and errors == []
    assert _counts(ws, task) == (2, 1, 0)  # A's answer and B's lease
    assert ws.next_task(p["id"], c) is None
    assert ws.doctor()["drift"] == []
