"""Hand-out semantics, one caller at a time (concurrency has its own tests).

Leases, answers, skips, undo, expiry and progress, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from sqlalchemy import JSON, text

from assay.engine import handout
from assay.errors import Conflict, Forbidden, InvalidInput, NotFound
from factories import count, project_with_annotators, task_rows, text_dataset

FAR_FUTURE = time.time() + 10 * 365 * 86400


def _answers(ws, project_id):
    with ws.db.read() as conn:
        return conn.execute(text(
            "SELECT id, task_id, annotator_id, label FROM answers WHERE project_id = :p ORDER BY id"
        ).columns(label=JSON), {"p": project_id}).all()


def _audit(ws, project_id):
    """open_slots = needed - answers - leases on every task; answer_count is real."""
    with ws.db.read() as conn:
        rows = conn.execute(text(
            "SELECT t.id, t.needed, t.answer_count, t.open_slots, "
            "(SELECT count(*) FROM answers a WHERE a.task_id = t.id) AS n_ans, "
            "(SELECT count(*) FROM leases l WHERE l.task_id = t.id) AS n_lease "
            "FROM tasks t WHERE t.project_id = :p"), {"p": project_id}).all()
    for r in rows:
        assert r.answer_count == r.n_ans, r
        assert r.open_slots == r.needed - r.n_ans - r.n_lease, r
        assert 0 <= r.open_slots <= r.needed, r


def _work_until_done(ws, project, people, label="pos"):
    """Round-robin: each annotator takes and answers one task per turn until nobody gets one."""
    got = {u["id"]: [] for u in people}
    active = list(people)
    while active:
        for u in list(active):
            t = ws.next_task(project["id"], u)
            if t is None:
                active.remove(u)
                continue
            got[u["id"]].append(t["id"])
            ws.submit(t["id"], u, label)
    return got


@pytest.mark.parametrize("overlap,n_people", [(1, 2), (3, 5)])
def test_overlap_is_never_exceeded_and_nobody_gets_a_task_twice(ws, overlap, n_people):
    p, people = project_with_annotators(ws, 7, n_people, overlap=overlap)
    got = _work_until_done(ws, p, people)
    for tasks in got.values():
        assert len(tasks) == len(set(tasks))  # never the same task twice
    per_task = Counter(t for tasks in got.values() for t in tasks)
    assert set(per_task) == {r.id for r in task_rows(ws, p["id"])}
    assert set(per_task.values()) == {overlap}  # every item exactly `overlap` answers, never more
    assert Counter(a.task_id for a in _answers(ws, p["id"])) == per_task
    assert all(r.open_slots == 0 and r.answer_count == overlap for r in task_rows(ws, p["id"]))
    _audit(ws, p["id"])
    # Nobody is left with a lease, and a latecomer gets nothing.
    assert count(ws, "leases") == 0
    late, _ = ws.add_user("late")
    ws.add_member(p["id"], late["id"])
    assert ws.next_task(p["id"], late) is None
    prog = ws.progress(p["id"])
    assert (prog["tasks"], prog["done"], prog["remaining"], prog["answers"]) == (7, 7, 0, 7 * overlap)


def test_asking_twice_returns_the_same_lease(ws):
    p, (a, b) = project_with_annotators(ws, 3, 2, overlap=1, show_fields=["nothing"])
    t1 = ws.next_task(p["id"], a)
    assert t1["project_id"] == p["id"] and t1["item"]["kind"] == "text"
    assert t1["item"]["text"].startswith("p item") and t1["item"]["content_url"] is None
    assert t1["lease_expires_at"] > time.time()
    t1b = ws.next_task(p["id"], a)
    assert t1b["id"] == t1["id"] and t1b["item"] == t1["item"]
    assert t1b["lease_expires_at"] >= t1["lease_expires_at"]  # extended, not a second lease
    assert count(ws, "leases") == 1
    # Someone else gets another task: with overlap 1 the leased one is taken.
    assert ws.next_task(p["id"], b)["id"] != t1["id"]
    _audit(ws, p["id"])


def test_exclude_and_max_leases_in_hand(ws):
    p, (a,) = project_with_annotators(ws, 6, 1)
    held = []
    for _ in range(handout.MAX_LEASES_IN_HAND):
        t = ws.next_task(p["id"], a, exclude=held)
        assert t["id"] not in held  # exclude gives a different task
        held.append(t["id"])
    # Excluding some but not all held tasks hands back a held one, not a new lease.
    assert ws.next_task(p["id"], a, exclude=held[:-1])["id"] == held[-1]
    assert ws.next_task(p["id"], a)["id"] == held[0]
    with pytest.raises(Conflict) as exc:
        ws.next_task(p["id"], a, exclude=held)
    assert sorted(exc.value.details["held"]) == sorted(held)
    assert count(ws, "leases") == handout.MAX_LEASES_IN_HAND
    # Answering one makes room for a new lease.
    ws.submit(held[0], a, "pos")
    t = ws.next_task(p["id"], a, exclude=held[1:])
    assert t["id"] not in held
    _audit(ws, p["id"])


def test_skip_returns_the_slot_and_the_skipper_never_sees_it_again(ws):
    p, (a, b) = project_with_annotators(ws, 2, 2, overlap=1)
    t = ws.next_task(p["id"], a)
    ws.skip(t["id"], a)
    assert {r.id: r.open_slots for r in task_rows(ws, p["id"])}[t["id"]] == 1
    assert count(ws, "leases") == 0 and count(ws, "skips") == 1
    # The skipper gets the other task, then nothing: never the skipped one.
    other = ws.next_task(p["id"], a)
    assert other["id"] != t["id"]
    ws.submit(other["id"], a, "neg")
    assert ws.next_task(p["id"], a) is None
    ws.reclaim_expired(now=FAR_FUTURE)
    assert ws.next_task(p["id"], a) is None
    # Someone else does get it.
    assert ws.next_task(p["id"], b)["id"] == t["id"]
    ws.submit(t["id"], b, "pos")
    # Skipping a task you don't hold is refused and changes nothing.
    with pytest.raises(Conflict):
        ws.skip(t["id"], a)
    with pytest.raises(Conflict):
        ws.skip(t["id"], b)  # already answered
    assert count(ws, "skips") == 1
    prog = ws.progress(p["id"])
    me = {x["username"]: x for x in prog["annotators"]}
    assert (me[a["username"]]["answers"], me[a["username"]]["skips"]) == (1, 1)
    assert (me[b["username"]]["answers"], me[b["username"]]["skips"]) == (1, 0)
    _audit(ws, p["id"])


def test_expired_lease_is_reclaimed_and_goes_to_someone_else(ws):
    p, (a, b, c) = project_with_annotators(ws, 1, 3, overlap=1, lease_seconds=30)
    t = ws.next_task(p["id"], a)
    assert ws.next_task(p["id"], b) is None  # the only slot is leased to a
    assert ws.reclaim_expired() == 0  # not expired yet
    assert ws.reclaim_expired(now=FAR_FUTURE) == 1
    assert ws.reclaim_expired(now=FAR_FUTURE) == 0  # a slot is given back once
    assert task_rows(ws, p["id"])[0].open_slots == 1
    tb = ws.next_task(p["id"], b)
    assert tb["id"] == t["id"]
    # a's lease is gone and the task has no room: a's late answer is refused.
    with pytest.raises(Conflict):
        ws.submit(t["id"], a, "pos")
    assert _answers(ws, p["id"]) == []
    ws.submit(tb["id"], b, "neg")
    assert ws.next_task(p["id"], c) is None
    _audit(ws, p["id"])


def test_an_answer_is_taken_only_on_a_live_lease(ws):
    p, (a, b) = project_with_annotators(ws, 2, 2, overlap=2, lease_seconds=30)
    t = ws.next_task(p["id"], a)
    other = [r.id for r in task_rows(ws, p["id"]) if r.id != t["id"]][0]
    with pytest.raises(Conflict, match="not leased to you"):
        ws.submit(other, a, "pos")  # a task with room, picked by hand
    with pytest.raises(Conflict, match="not leased to you"):
        ws.submit(t["id"], b, "pos")  # someone else's lease
    assert ws.reclaim_expired(now=FAR_FUTURE) == 1
    with pytest.raises(Conflict, match="not leased to you"):
        ws.submit(t["id"], a, "pos")  # no lease any more, though the task has room
    assert _answers(ws, p["id"]) == []
    assert [(r.answer_count, r.open_slots) for r in task_rows(ws, p["id"])] == [(0, 2), (0, 2)]
    _audit(ws, p["id"])


def test_an_expired_lease_is_refused_before_the_sweeper_returns_it(ws):
    p, (a, b) = project_with_annotators(ws, 1, 2, overlap=1, lease_seconds=5)
    task_id, _, _ = handout.next_task(ws.db, p["id"], a["id"], 5, now=time.time() - 60)  # already ran out
    with pytest.raises(Conflict, match="expired"):
        ws.submit(task_id, a, "pos")
    assert _answers(ws, p["id"]) == []
    assert ws.reclaim_expired() == 1  # the refused answer left the lease for the sweeper
    assert ws.next_task(p["id"], b)["id"] == task_id
    _audit(ws, p["id"])


def test_expired_leases_are_reclaimed_by_next_task_when_nothing_else_is_left(ws):
    p, (a, b) = project_with_annotators(ws, 1, 2, overlap=1, lease_seconds=5)
    t = handout.next_task(ws.db, p["id"], a["id"], 5, now=time.time() - 60)  # a lease that already ran out
    assert t is not None
    got = ws.next_task(p["id"], b)  # nothing free: next_task sweeps expired leases and retries
    assert got is not None and got["id"] == t[0]
    _audit(ws, p["id"])


def test_double_answer_is_a_conflict(ws):
    p, (a, b) = project_with_annotators(ws, 2, 2, overlap=2)
    t = ws.next_task(p["id"], a)
    ws.submit(t["id"], a, "pos")
    with pytest.raises(Conflict):
        ws.submit(t["id"], a, "neg")
    assert [(x.annotator_id, x.label) for x in _answers(ws, p["id"])] == [(a["id"], "pos")]
    assert {r.id: r.answer_count for r in task_rows(ws, p["id"])}[t["id"]] == 1
    _audit(ws, p["id"])


def test_undo_deletes_the_answer_and_leases_the_task_back(ws):
    p, (a, b) = project_with_annotators(ws, 2, 2, overlap=1)
    t = ws.next_task(p["id"], a)
    ans = ws.submit(t["id"], a, "pos")
    slots_before = {r.id: r for r in task_rows(ws, p["id"])}[t["id"]].open_slots
    with pytest.raises(NotFound):
        ws.undo(ans["id"], b)  # not b's answer
    with pytest.raises(NotFound):
        ws.undo(ans["id"] + 1000, a)
    back = ws.undo(ans["id"], a)
    assert back["id"] == t["id"] and back["item"] == t["item"]
    assert _answers(ws, p["id"]) == []
    row = {r.id: r for r in task_rows(ws, p["id"])}[t["id"]]
    assert row.answer_count == 0 and row.open_slots == slots_before  # the slot became a's lease
    _audit(ws, p["id"])
    # b cannot take it; a is handed the same task again and relabels it.
    tb = ws.next_task(p["id"], b)
    assert tb["id"] != t["id"]
    assert ws.next_task(p["id"], a)["id"] == t["id"]
    again = ws.submit(t["id"], a, "neg")
    assert [(x.id, x.label) for x in _answers(ws, p["id"])] == [(again["id"], "neg")]
    # The undone answer's id is never handed out again (SQLite would reuse the
    # highest rowid): a repeated undo must not delete the new answer.
    assert again["id"] > ans["id"]
    with pytest.raises(NotFound):
        ws.undo(ans["id"], a)  # already undone
    assert len(_answers(ws, p["id"])) == 1
    _audit(ws, p["id"])


def test_wrong_labels_are_refused_and_nothing_is_stored(ws):
    p, (a,) = project_with_annotators(ws, 1, 1, classes=("cat", "dog"))
    t = ws.next_task(p["id"], a)
    for bad in ("bird", "Cat", "", None, 1, ["cat"], {"name": "cat"}):
        with pytest.raises(InvalidInput):
            ws.submit(t["id"], a, bad)
    assert _answers(ws, p["id"]) == []
    assert count(ws, "leases") == 1  # the lease is kept: the annotator can try again
    ws.submit(t["id"], a, "dog")
    assert [x.label for x in _answers(ws, p["id"])] == ["dog"]
    with pytest.raises(NotFound):
        ws.submit(t["id"] + 1000, a, "dog")
    _audit(ws, p["id"])


def test_multi_label_is_validated_and_stored_in_class_order(ws):
    p, people = project_with_annotators(ws, 4, 4, kind="multi", classes=("a", "b", "c"))
    tasks = [ws.next_task(p["id"], u) for u in people]
    assert len({t["id"] for t in tasks}) == 4
    for bad in (["a", "zzz"], "zzz", [1], [["a"]], {"a": True}, None):
        with pytest.raises(InvalidInput):
            ws.submit(tasks[0]["id"], people[0], bad)
    assert _answers(ws, p["id"]) == []
    assert ws.submit(tasks[0]["id"], people[0], ["c", "a", "c"])["label"] == ["a", "c"]
    assert ws.submit(tasks[1]["id"], people[1], "b")["label"] == ["b"]
    assert ws.submit(tasks[2]["id"], people[2], ["b", "a", "c"])["label"] == ["a", "b", "c"]
    stored = {x.annotator_id: x.label for x in _answers(ws, p["id"])}
    assert stored == {people[0]["id"]: ["a", "c"], people[1]["id"]: ["b"], people[2]["id"]: ["a", "b", "c"]}


def test_non_members_cannot_take_or_answer_tasks(ws):
    p, (a,) = project_with_annotators(ws, 2, 1)
    outsider, _ = ws.add_user("outsider")
    admin, _ = ws.add_user("root", "admin")
    with pytest.raises(Forbidden):
        ws.next_task(p["id"], outsider)
    t = ws.next_task(p["id"], a)
    with pytest.raises(NotFound):
        ws.submit(t["id"], outsider, "pos")
    with pytest.raises(NotFound):
        ws.skip(t["id"], outsider)
    assert _answers(ws, p["id"]) == [] and count(ws, "skips") == 0
    with pytest.raises(NotFound):
        ws.next_task(p["id"] + 100, a)
    # Admins may work on every project without being members.
    assert ws.next_task(p["id"], admin)["id"] != t["id"]
    # A removed member is out, too.
    ws.remove_member(p["id"], a["id"])
    with pytest.raises(Forbidden):
        ws.next_task(p["id"], a)
    with pytest.raises(NotFound):
        ws.submit(t["id"], a, "pos")


def test_task_shows_only_the_listed_fields(ws):
    ds = text_dataset(ws, "d", ["hello"], meta=[{"lang": "en", "secret": "s3cr3t", "gold": "pos"}])
    p = ws.create_project("p", ds["id"], ["pos", "neg"], show_fields=["lang", "missing"])
    u, _ = ws.add_user("ann")
    ws.add_member(p["id"], u["id"])
    t = ws.next_task(p["id"], u)
    assert t["item"]["fields"] == {"lang": "en"}
    assert "s3cr3t" not in repr(t) and "gold" not in repr(t)


def test_progress_counts(ws):
    p, (a, b) = project_with_annotators(ws, 3, 2, overlap=2)
    prog = ws.progress(p["id"])
    assert (prog["tasks"], prog["done"], prog["remaining"], prog["answers"], prog["in_progress"]) == (3, 0, 3, 0, 0)
    t1 = ws.next_task(p["id"], a)
    ws.submit(t1["id"], a, "pos")
    t2 = ws.next_task(p["id"], a)
    ws.skip(t2["id"], a)
    tb = ws.next_task(p["id"], b)
    assert tb["id"] == t1["id"]  # lowest id with room that b has not seen
    ws.submit(tb["id"], b, "neg")
    ws.next_task(p["id"], b)  # held, not answered
    prog = ws.progress(p["id"])
    assert prog["tasks"] == 3 and prog["done"] == 1 and prog["remaining"] == 2
    assert prog["answers"] == 2 and prog["in_progress"] == 1
    per = {x["user_id"]: (x["answers"], x["skips"]) for x in prog["annotators"]}
    assert per == {a["id"]: (1, 1), b["id"]: (1, 0)}
    with pytest.raises(NotFound):
        ws.progress(p["id"] + 100)


def test_progress_of_big_projects_is_reused_small_ones_are_exact(ws, monkeypatch):
    """Polling progress must stay cheap on huge projects: a count that took
    long is reused for a while; a cheap one is recomputed every time."""
    import time as _time

    ds = ws.create_dataset("pp")
    ws.import_dataframe("pp", __import__("pandas").DataFrame({"text": ["a", "b"]}))
    p = ws.create_project("pp", "pp", ["x", "y"])
    u, _ = ws.add_user("pp-ann")
    ws.add_member(p["id"], u["id"])
    assert ws.progress(p["id"])["answers"] == 0
    t = ws.next_task(p["id"], u)
    ws.submit(t["id"], u, "x")
    assert ws.progress(p["id"])["answers"] == 1  # cheap: exact at once

    real = ws._count_progress

    def slow(proj):
        _time.sleep(0.06)  # pretend the project is huge
        return real(proj)

    monkeypatch.setattr(ws, "_count_progress", slow)
    assert ws.progress(p["id"])["answers"] == 1
    assert ws._progress_cache == {}  # slow but small: never reused, always exact
    monkeypatch.setattr(ws, "progress_cache_min_tasks", 0)
    assert ws.progress(p["id"])["answers"] == 1  # computed, then kept
    t = ws.next_task(p["id"], u)
    ws.submit(t["id"], u, "y")
    assert ws.progress(p["id"])["answers"] == 1  # reused (stale by design)
    assert ws.progress(p["id"], cache=False)["answers"] == 2
    assert ws.annotator_progress(p["id"], u["id"]) == {"answers": 2, "skips": 0}  # always exact
