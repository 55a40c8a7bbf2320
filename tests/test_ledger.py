"""The task ledger (assay.engine.ledger): the one writer of task counters and
consensus rows, and ``assay doctor``, which recounts them. SQLite and
PostgreSQL (``ws``)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from assay.errors import Conflict
from assay.handout import ADD_LEASE
from factories import answer_item, item_ids, project_with_annotators, task_for_item, task_rows


def _lease(ws, task_id: int, user: dict, project_id: int, seconds: float = 600) -> None:
    """Test set-up: ``user`` holds a live lease on a task the way a gold
    hand-out gives one (:func:`assay.gold.claim` + the lease: no slot taken)."""
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
