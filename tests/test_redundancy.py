"""Adaptive redundancy: incremental posteriors, one more answer while unsure,
the reviewer queue, re-fits, and exact counts under concurrent annotators
(SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import threading
import time

import numpy as np
import pytest
from sqlalchemy import text

from assay.errors import InvalidInput
from assay.quality import online
from factories import text_dataset, turn_probabilities


def _project(ws, n_items=3, **kw):
    ds = text_dataset(ws, "d", [f"t{i}" for i in range(n_items)])
    kw.setdefault("target_confidence", 0.95)
    return ws.create_project("p", ds["id"], ["x", "y"], **kw)


def _annotators(ws, p, n):
    out = []
    for i in range(n):
        u, _ = ws.add_user(f"a{i}")
        ws.add_member(p["id"], u["id"])
        out.append(u)
    return out


def _task(ws, task_id):
    with ws.db.read() as conn:
        return conn.execute(text("SELECT needed, answer_count, open_slots FROM tasks WHERE id = :t"),
                            {"t": task_id}).one()


def _status(ws, p, item_id):
    rows, _ = ws.item_consensus(p["id"])
    return next(r for r in rows if r["item_id"] == item_id)


# ------------------------------------------------------------------ pure


def test_incremental_posterior_equals_from_scratch():
    rng = np.random.default_rng(0)
    for k in (2, 3, 5):
        prior = rng.dirichlet(np.ones(k))
        conf = rng.dirichlet(np.ones(k), size=(7, k))  # 7 annotators
        who = rng.integers(0, 7, 12)
        labels = rng.integers(0, k, 12)
        lp = online.initial_log_post(prior.tolist(), k)
        for w, lab in zip(who, labels):
            lp = online.update(lp, conf[w].tolist(), int(lab))
        scratch = online.posterior(labels, conf[who], prior, k)
        np.testing.assert_allclose(online.normalise(lp), scratch, rtol=1e-10, atol=1e-12)
        best, c = online.decision(lp)
        assert best == int(np.argmax(scratch)) and c == pytest.approx(scratch.max())


def test_incremental_update_is_fast():
    conf = online.default_confusion(5)
    lp = online.initial_log_post(None, 5)
    start = time.perf_counter()
    for i in range(1000):
        lp = online.update(lp, conf, i % 5)
        online.decision(lp)
    assert (time.perf_counter() - start) / 1000 < 5e-4  # far below the 5 ms budget


def test_next_step_rules():
    assert online.next_step(0.96, 1, 1, target=0.95, max_answers=3) == "resolved"
    assert online.next_step(0.8, 3, 3, target=0.95, max_answers=3) == "review"
    assert online.next_step(0.8, 1, 1, target=0.95, max_answers=3) == "more"
    assert online.next_step(0.8, 1, 2, target=0.95, max_answers=3) == "wait"


def _brute_flip(conf, weights, margin, m, c, j):
    """P(m more answers turn label c into j), by enumeration."""
    return sum(turn_probabilities(conf, weights, margin, m, c, j))


def test_settle_margins_bound_the_chance_of_a_flip():
    conf = np.array([[[0.9, 0.1], [0.2, 0.8]], [[0.7, 0.3], [0.3, 0.7]], [[0.95, 0.05], [0.4, 0.6]]])
    weights = [5, 3, 2]
    table = online.settle_margins(conf, weights, 0.01, 3)
    assert len(table) == 3
    for m in (1, 2, 3):
        for c, j in ((0, 1), (1, 0)):
            need = table[m - 1][c][j]
            assert need is not None and need > 0
            assert _brute_flip(conf, weights, need, m, c, j) <= 0.01  # safe side
            # and not far too strict: a little below the margin the budget is exceeded
            assert _brute_flip(conf, weights, need - 0.1 - m * online.SETTLE_STEP, m, c, j) > 0.01
    # one more answer can never move a margin beyond the strongest answer
    strongest = np.max(np.log(conf[:, 1, :]) - np.log(conf[:, 0, :]))  # log(0.6 / 0.05)
    assert table[0][0][1] <= strongest + online.SETTLE_STEP


def test_settled_reads_the_table():
    conf = np.array([[[0.9, 0.1], [0.1, 0.9]]])
    table = online.settle_margins(conf, [1], 0.01, 2)
    two = online.update(online.update([0.0, 0.0], conf[0].tolist(), 1), conf[0].tolist(), 1)  # 2 x "y"
    assert online.decision(two)[1] < 0.99
    assert online.settled(two, 1, table)  # one more answer cannot turn two agreeing ones
    assert not online.settled(two, 2, table)  # two more can
    assert not online.settled(two, 3, table)  # beyond the table: the posterior rule decides
    assert not online.settled(two, 1, None) and not online.settled(two, 0, table)
    assert online.next_step(0.98, 2, 2, target=0.99, max_answers=3, settled=True) == "settled"
    assert online.next_step(0.98, 3, 3, target=0.99, max_answers=3, settled=True) == "review"
    assert online.next_step(0.98, 2, 2, target=0.99, max_answers=3) == "more"


# ------------------------------------------------------------------ settings


def test_settings_are_stored_and_checked(ws):
    p = _project(ws, target_confidence=0.9, max_answers=4, overlap=2)
    assert ws.get_project(p["id"])["target_confidence"] == 0.9
    assert p["max_answers"] == 4
    ds = ws.get_dataset("d")
    plain = ws.create_project("plain", ds["id"], ["x", "y"])
    assert plain["target_confidence"] is None and plain["max_answers"] is None
    with pytest.raises(InvalidInput):
        ws.create_project("bad", ds["id"], ["x", "y"], target_confidence=1.5)
    with pytest.raises(InvalidInput):
        ws.create_project("bad", ds["id"], ["x", "y"], target_confidence=0.9, overlap=3, max_answers=2)
    with pytest.raises(InvalidInput):
        ws.create_project("bad", ds["id"], ["x", "y"], kind="multi", target_confidence=0.9)
    assert ws.create_project("dflt", ds["id"], ["x", "y"], target_confidence=0.9)["max_answers"] == 5


# ------------------------------------------------------------------ behaviour


def test_uncertain_item_gets_one_more_answer_from_a_different_annotator(ws):
    p = _project(ws, n_items=1, max_answers=3)
    a, b, c = _annotators(ws, p, 3)
    t = ws.next_task(p["id"], a)
    ws.submit(t["id"], a, "x")  # an unmeasured annotator: 2/3 sure, below 0.95
    row = _task(ws, t["id"])
    assert (row.needed, row.answer_count, row.open_slots) == (2, 1, 1)
    assert _status(ws, p, t["item"]["id"])["status"] == "open"
    assert ws.next_task(p["id"], a) is None  # not the same annotator again
    t2 = ws.next_task(p["id"], b)
    assert t2["id"] == t["id"]
    assert ws.next_task(p["id"], c) is None  # only one more was asked for


def test_confident_item_gets_no_more_answers(ws):
    p = _project(ws, n_items=1, max_answers=3)
    a, b = _annotators(ws, p, 2)
    with ws.db.write() as conn:  # a measured, reliable annotator (as a re-fit would store)
        conn.execute(text("INSERT INTO annotator_skills (project_id, annotator_id, confusion, accuracy, answers) "
                          "VALUES (:p, :u, '[[0.99, 0.01], [0.01, 0.99]]', 0.99, 100)"),
                     {"p": p["id"], "u": a["id"]})
    t = ws.next_task(p["id"], a)
    ws.submit(t["id"], a, "y")
    row = _task(ws, t["id"])
    assert (row.needed, row.answer_count, row.open_slots) == (1, 1, 0)
    st = _status(ws, p, t["item"]["id"])
    assert st["status"] == "resolved" and st["label"] == "y" and st["confidence"] >= 0.95
    assert ws.next_task(p["id"], b) is None


def test_resolved_item_withdraws_open_slots(ws):
    p = _project(ws, n_items=1, overlap=3, max_answers=5)
    a, b = _annotators(ws, p, 2)
    with ws.db.write() as conn:
        conn.execute(text("INSERT INTO annotator_skills (project_id, annotator_id, confusion, accuracy, answers) "
                          "VALUES (:p, :u, '[[0.99, 0.01], [0.01, 0.99]]', 0.99, 100)"),
                     {"p": p["id"], "u": a["id"]})
    tb = ws.next_task(p["id"], b)  # b holds a lease: that slot stays
    ta = ws.next_task(p["id"], a)
    ws.submit(ta["id"], a, "x")
    row = _task(ws, ta["id"])
    assert (row.needed, row.answer_count, row.open_slots) == (2, 1, 0)
    ws.submit(tb["id"], b, "x")
    row = _task(ws, ta["id"])
    assert (row.needed, row.answer_count, row.open_slots) == (2, 2, 0)


def test_max_answers_sends_the_item_to_review(ws):
    p = _project(ws, n_items=1, max_answers=2)
    a, b, c = _annotators(ws, p, 3)
    t = ws.next_task(p["id"], a)
    ws.submit(t["id"], a, "x")
    t2 = ws.next_task(p["id"], b)
    ws.submit(t2["id"], b, "y")  # a tie at the cap
    row = _task(ws, t["id"])
    assert (row.needed, row.answer_count, row.open_slots) == (2, 2, 0)
    assert ws.next_task(p["id"], c) is None
    queue, _ = ws.review_queue(p["id"])
    assert [q["item_id"] for q in queue] == [t["item"]["id"]]
    assert queue[0]["answers"] == 2 and queue[0]["confidence"] == pytest.approx(0.5)
    assert ws.progress(p["id"])["remaining"] == 0


def _store_model(ws, p, default_confusion):
    from assay.store import schema

    with ws.db.write() as conn:
        conn.execute(schema.quality_models.insert().values(
            project_id=p["id"], method="ds", prior=[0.5, 0.5], default_confusion=default_confusion,
            answers=0, fitted_at=0.0))


def test_settled_item_stops_before_the_cap(ws):
    """Annotators right 90 % of the time: two agreeing answers give 0.988 <
    0.99, but the one answer still allowed cannot turn them, so the item is
    settled at two answers instead of asking a third."""
    p = _project(ws, n_items=1, target_confidence=0.99, max_answers=3)
    a, b, c = _annotators(ws, p, 3)
    crowd = [[0.9, 0.1], [0.1, 0.9]]
    table = online.settle_margins(np.array([crowd]), [1], 0.01, 2)
    _store_model(ws, p, {"confusion": crowd, "settle": table})
    t = ws.next_task(p["id"], a)
    ws.submit(t["id"], a, "x")
    assert _status(ws, p, t["item"]["id"])["status"] == "open"  # two more answers could turn one
    t2 = ws.next_task(p["id"], b)
    ws.submit(t2["id"], b, "x")
    row = _task(ws, t["id"])
    assert (row.needed, row.answer_count, row.open_slots) == (2, 2, 0)
    st = _status(ws, p, t["item"]["id"])
    assert st["status"] == "resolved" and st["label"] == "x" and st["confidence"] < 0.99
    assert ws.next_task(p["id"], c) is None


def test_model_rows_without_a_settle_table_still_work(ws):
    """A quality model stored before the settle rule (default_confusion a bare
    K x K list): the posterior rule alone decides, so the third answer is asked."""
    p = _project(ws, n_items=1, target_confidence=0.99, max_answers=3)
    a, b, c = _annotators(ws, p, 3)
    _store_model(ws, p, [[0.9, 0.1], [0.1, 0.9]])
    for u in (a, b):
        t = ws.next_task(p["id"], u)
        ws.submit(t["id"], u, "x")
    row = _task(ws, t["id"])
    assert (row.needed, row.answer_count, row.open_slots) == (3, 2, 1)
    assert ws.next_task(p["id"], c)["id"] == t["id"]


def test_fixed_overlap_projects_are_unchanged(ws):
    ds = text_dataset(ws, "d", ["t0"])
    p = ws.create_project("p", ds["id"], ["x", "y"], overlap=2)
    a, b = _annotators(ws, p, 2)
    for u in (a, b):
        t = ws.next_task(p["id"], u)
        ws.submit(t["id"], u, "x")
    row = _task(ws, t["id"])
    assert (row.needed, row.answer_count, row.open_slots) == (2, 2, 0)
    assert ws.item_consensus(p["id"]) == ([], None)


def test_refit_learns_skills_and_rewrites_posteriors(ws):
    p = _project(ws, n_items=12, overlap=3, max_answers=3)
    us = _annotators(ws, p, 4)
    rng = random.Random(0)
    truth = {}
    busy = True
    while busy:  # round robin, so that everybody answers some items
        busy = False
        for u in us:
            t = ws.next_task(p["id"], u)
            if t is None:
                continue
            busy = True
            item = t["item"]["id"]
            truth.setdefault(item, rng.choice("xy"))
            lab = truth[item] if u is not us[3] else ("y" if truth[item] == "x" else "x")
            ws.submit(t["id"], u, lab)
    out = ws.refit_quality(p["id"])
    assert out["answers"] == ws.progress(p["id"])["answers"] and out["annotators"] == 4
    with ws.db.read() as conn:
        acc = dict(conn.execute(text("SELECT annotator_id, accuracy FROM annotator_skills WHERE project_id = :p"),
                                {"p": p["id"]}).all())
    assert acc[us[0]["id"]] > 0.8 and acc[us[3]["id"]] < 0.3
    rows, _ = ws.item_consensus(p["id"])
    assert {r["item_id"]: r["label"] for r in rows if r["answers"] >= 2} == \
        {i: lab for i, lab in truth.items() if i in {r["item_id"] for r in rows if r["answers"] >= 2}}


def test_counts_are_exact_under_concurrent_annotators(ws):
    """6 annotators, 12 items, 2 at a time per item, random answers. Unmeasured
    annotators (2/3 right) never reach 0.95 within 4 answers (best: 16/17), so
    every item must end with exactly 4 answers from 4 people, in review."""
    n_items, cap = 12, 4
    p = _project(ws, n_items=n_items, overlap=2, max_answers=cap, lease_seconds=600)
    us = _annotators(ws, p, 6)
    errors = []

    def worker(u, seed):
        rng = random.Random(seed)
        idle = 0
        try:
            while idle < 200:
                t = ws.next_task(p["id"], u)
                if t is None:
                    if ws.progress(p["id"])["remaining"] == 0:
                        return
                    idle += 1
                    time.sleep(0.01)
                    continue
                idle = 0
                ws.submit(t["id"], u, rng.choice("xy"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(u, i)) for i, u in enumerate(us)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors
    with ws.db.read() as conn:
        tasks = conn.execute(text("SELECT id, item_id, needed, answer_count, open_slots FROM tasks "
                                  "WHERE project_id = :p"), {"p": p["id"]}).all()
        per = dict(conn.execute(text("SELECT task_id, count(DISTINCT annotator_id) FROM answers "
                                     "WHERE project_id = :p GROUP BY task_id"), {"p": p["id"]}).all())
        leases = conn.execute(text("SELECT count(*) FROM leases")).scalar_one()
    assert leases == 0
    for t in tasks:
        assert (t.needed, t.answer_count, t.open_slots) == (cap, cap, 0)
        assert per[t.id] == cap
    rows, _ = ws.item_consensus(p["id"])
    assert len(rows) == n_items and all(r["status"] == "review" and r["answers"] == cap for r in rows)


def test_http_settings_refit_and_review_queue(ws):
    from fastapi.testclient import TestClient

    from assay.server import create_app

    ds = text_dataset(ws, "d", ["t0", "t1"])
    admin, tok = ws.add_user("root", "admin")
    h = {"Authorization": f"Bearer {tok}"}
    with TestClient(create_app(ws)) as c:
        r = c.post("/api/projects", headers=h, json={
            "name": "p", "dataset_id": ds["id"], "schema": {"classes": ["x", "y"]},
            "target_confidence": 0.95, "max_answers": 2})
        assert r.status_code == 201, r.text
        p = r.json()
        assert p["target_confidence"] == 0.95 and p["max_answers"] == 2
        bad = c.post("/api/projects", headers=h, json={
            "name": "q", "dataset_id": ds["id"], "schema": {"classes": ["x", "y"]}, "target_confidence": 2})
        assert bad.status_code == 422
        a, b = _annotators(ws, p, 2)
        for u, lab in ((a, "x"), (b, "y")):
            t = ws.next_task(p["id"], u)
            ws.submit(t["id"], u, lab)
        r = c.post(f"/api/projects/{p['id']}/quality/refit", headers=h)
        assert r.status_code == 202
        with ws.db.read() as conn:  # TestClient runs the background task before returning
            assert conn.execute(text("SELECT count(*) FROM quality_models")).scalar_one() == 1
        r = c.get(f"/api/projects/{p['id']}/consensus", headers=h, params={"status": "review"})
        assert r.status_code == 200
        assert [i["answers"] for i in r.json()["items"]] == [2]


def test_export_carries_consensus_label_confidence_and_method(ws):
    p = _project(ws, n_items=2, max_answers=2)
    a, b = _annotators(ws, p, 2)
    t = ws.next_task(p["id"], a)
    ws.submit(t["id"], a, "x")
    t2 = ws.next_task(p["id"], b)
    assert t2["id"] == t["id"]  # one answer is not enough: the item goes to b
    ws.submit(t2["id"], b, "y")
    recs = {r["item_id"]: r for r in ws.export_records(p["id"])}
    rec = recs[t["item"]["id"]]
    stored = _status(ws, p, t["item"]["id"])
    assert rec["consensus_status"] == "review" == stored["status"]
    assert rec["label"] == stored["label"] and rec["confidence"] == pytest.approx(stored["confidence"])
    assert rec["label_method"] not in (None, "majority")
    assert rec["n_answers"] == 2
    other = next(r for i, r in recs.items() if i != t["item"]["id"])
    assert other["label"] is None and other["confidence"] is None and other["consensus_status"] is None


def test_export_majority_confidence_is_the_agreeing_share(ws):
    ds = text_dataset(ws, "d", ["only"])
    p = ws.create_project("fixed", ds["id"], ["x", "y"], overlap=3)
    users = _annotators(ws, p, 3)
    for u, lab in zip(users, ["x", "y", "x"]):
        t = ws.next_task(p["id"], u)
        ws.submit(t["id"], u, lab)
    (rec,) = list(ws.export_records(p["id"]))
    assert (rec["label"], rec["label_method"]) == ("x", "majority")
    assert rec["confidence"] == pytest.approx(2 / 3)
