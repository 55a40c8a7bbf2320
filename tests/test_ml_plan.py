"""The ML step as a plan, then one write: answers that arrive while the step
plans are not overwritten, and reverting an auto-label keeps a live lease's
slot (real databases, no mocks)."""

from __future__ import annotations

import time

import numpy as np
from sqlalchemy import JSON, text

from assay.learn.step import ml_step, validation_mask
from factories import count, embedded_dataset, task_for_item


def _lease(ws, project_id: int, item_id: int, user: dict, seconds: float = 600) -> int:
    """Test set-up: ``user`` holds a live lease on the item's task (as tasks/next would take it)."""
    task_id = task_for_item(ws, project_id, item_id)
    now = time.time()
    with ws.db.write() as conn:
        took = conn.execute(text("UPDATE tasks SET open_slots = open_slots - 1 WHERE id = :t AND open_slots > 0"
                                 " RETURNING id"), {"t": task_id}).first()
        assert took is not None, f"task {task_id} has no open slot to lease"
        conn.execute(text("INSERT INTO leases (task_id, annotator_id, project_id, expires_at, created_at)"
                          " VALUES (:t, :u, :p, :exp, :now)"),
                     {"t": task_id, "u": user["id"], "p": project_id, "exp": now + seconds, "now": now})
    return task_id


def _task(ws, task_id: int):
    with ws.db.read() as conn:
        return conn.execute(text(
            "SELECT needed, answer_count, open_slots, (SELECT count(*) FROM leases l WHERE l.task_id = t.id "
            "AND l.expires_at > :now) AS leases FROM tasks t WHERE id = :t"), {"t": task_id, "now": time.time()}).one()


def test_reverting_an_auto_label_keeps_a_live_lease_slot(ws):
    n = 120
    ds, ids, y = embedded_dataset(ws, n, seed=3)
    p = ws.create_project("p", ds["id"], ["a", "b"], overlap=1, target_confidence=0.95, max_answers=3)
    ws.update_project(p["id"], ml_space="f", auto_label_target=0.9, audit_rate=0.0)
    ann, _ = ws.add_user("ann", "annotator")
    ws.add_member(p["id"], ann["id"])
    val = validation_mask(np.array(ids), n)
    # an annotator holds leases on a few items the model will label
    leased = {ids[i]: _lease(ws, p["id"], ids[i], ann) for i in [i for i in range(80, n) if not val[i]][:6]}
    ws.import_gold(p["id"], [{"item_id": ids[i], "label": "ab"[y[i]]} for i in range(80)])
    first = ml_step(ws, p["id"])
    assert first["auto_state"] == "on"
    with ws.db.read() as conn:
        autos = dict(conn.execute(text("SELECT item_id, label FROM auto_labels WHERE project_id = :p")
                                  .columns(label=JSON), {"p": p["id"]}).all())
    held = [i for i in leased if i in autos]
    assert held, "no leased item was auto-labeled"
    # every other auto-label is audited and found wrong: the audits fail
    with ws.db.write() as conn:
        conn.execute(text("UPDATE auto_labels SET audit = true WHERE project_id = :p"), {"p": p["id"]})
        for i in held:
            conn.execute(text("UPDATE auto_labels SET audit = false WHERE project_id = :p AND item_id = :i"),
                         {"p": p["id"], "i": i})
    flip = {"a": "b", "b": "a"}
    ws.import_gold(p["id"], [{"item_id": i, "label": flip[lab]} for i, lab in autos.items() if i not in held])
    step = ml_step(ws, p["id"])
    assert step["audit_verdict"] == "fail" and step["auto_reverted"] >= len(held)
    for i in held:
        assert count(ws, "auto_labels", "project_id = :p AND item_id = :i", p=p["id"], i=i) == 0
        t = _task(ws, leased[i])
        assert t.leases == 1 and t.needed == 1
        assert t.open_slots == max(t.needed - t.answer_count - t.leases, 0), t


def test_an_answer_during_the_step_is_not_overwritten(ws):
    """Someone answers an item after the step read the project and before it
    writes: the item's consensus counts that answer, and the model does not
    auto-label an item a person has answered."""
    from assay.engine import ledger
    from factories import answer_item

    n = 120
    ds, ids, y = embedded_dataset(ws, n, seed=3)
    p = ws.create_project("p", ds["id"], ["a", "b"], overlap=1, target_confidence=0.95, max_answers=3)
    ws.update_project(p["id"], ml_space="f", auto_label_target=0.9, audit_rate=0.0)
    ann, _ = ws.add_user("ann", "annotator")
    ws.add_member(p["id"], ann["id"])
    ws.import_gold(p["id"], [{"item_id": ids[i], "label": "ab"[y[i]]} for i in range(80)])
    val = validation_mask(np.array(ids), n)
    j = next(i for i in range(80, n) if not val[i])
    item, label = ids[j], "ab"[y[j]]

    step = ml_step(ws, p["id"], before_write=lambda: answer_item(ws, p["id"], item, ann, label))
    assert step["auto_state"] == "on" and step["auto_labeled"] > 10
    assert count(ws, "auto_labels", "project_id = :p AND item_id = :i", p=p["id"], i=item) == 0
    with ws.db.read() as conn:
        c = conn.execute(text("SELECT label, confidence, answers, status FROM item_consensus "
                              "WHERE project_id = :p AND item_id = :i").columns(label=JSON),
                         {"p": p["id"], "i": item}).one()
    assert c.answers == 1 and c.label == label and c.confidence > 0.9
    assert ledger.check(ws.db, p["id"]) == []  # counters and consensus rows agree with the answers
    assert step["recomputed"] >= 1


def test_training_labels_are_verified_by_answers_not_by_a_collapsed_class_prior():
    """Early on, Dawid-Skene on the few items answered twice can put most of
    the class prior on one class with confusions near chance (0.82 and 0.22
    on a weak 8-class crowd). A training label must be what the answers say:
    decoded with that prior, every single answer "verified" the prior's class
    (and the loop locked onto it); decoded under a flat prior, no lone
    answer of a chance-level annotator verifies anything, and two strong
    annotators who agree do."""
    from assay.learn.plan import StepInput, StepSettings
    from assay.learn.planner import Planner

    rng = np.random.default_rng(0)
    k, n = 8, 200
    y = rng.integers(k, size=n)
    chance = (np.full((k, k), 1.0) + np.eye(k)) / (k + 1)  # 2/9 right: Dawid-Skene's pseudo-counts alone
    strong = np.full((k, k), 0.05 / (k - 1)) + np.eye(k) * (0.95 - 0.05 / (k - 1))
    skills = {u: chance.tolist() for u in range(10)} | {100: strong.tolist(), 101: strong.tolist()}
    prior = np.full(k, 0.18 / (k - 1))
    prior[1] = 0.82
    ans_task = np.r_[np.arange(n), [0, 0, 1, 1]]
    ans_user = np.r_[rng.integers(10, size=n), [100, 101, 100, 101]]
    ans_label = np.r_[y, [y[0], y[0], y[1], y[1]]]
    inp = StepInput(
        settings=StepSettings([f"c{c}" for c in range(k)], 1, 0.9, 3, None, None, None),
        task_ids=np.arange(1, n + 1), item_ids=np.arange(1, n + 1), answer_count=np.bincount(ans_task, minlength=n),
        needed=np.ones(n, np.int64), is_gold=np.zeros(n, bool), open_now=np.zeros(n, bool),
        leases=np.zeros(n, np.int64), ans_task=ans_task, ans_user=ans_user, ans_label=ans_label,
        answers_total=len(ans_task), answers_by_annotator={}, skills=skills, default=chance.tolist(),
        prior=prior.tolist(), previous=None, known_mask=np.zeros(n, bool), known_code=np.full(n, -1),
        autos={}, status={}, last=None, X=rng.normal(size=(n, 4)).astype(np.float32), vec_row=np.arange(n))
    planner = Planner(inp, batch=10, seed=0)
    planner._crowd_from_last()
    planner._labels()
    labeled = np.flatnonzero(planner.y >= 0)
    assert set(labeled.tolist()) == {0, 1}, labeled  # the two items two strong annotators agree on
    assert (planner.y[labeled] == y[labeled]).all()
