"""A routed project's re-fit learns skills from every answered item.

Under skill-aware routing the items that got a second answer are the ones
whose first answer left them unsure; a fit on them alone learns the class
prior of the contested items only (docs/quality.md, skill-aware routing)."""

from __future__ import annotations

import json

import numpy as np
from sqlalchemy import text

from assay.engine.redundancy import fit_crowd
from factories import project_with_annotators


def _contested_crowd():
    """90 items answered once, class 0, by four annotators; 10 items answered
    twice, class 1 (the contested ones a router sent a second person to)."""
    items, users, labels = [], [], []
    for i in range(90):
        items.append(i), users.append(i % 4), labels.append(0)
    for i in range(90, 100):
        for u in (4, 5):
            items.append(i), users.append(u), labels.append(1)
    return np.array(items, np.int64), np.array(users, np.int64), np.array(labels, np.intp)


def test_fit_crowd_every_item_learns_the_prior_from_every_answered_item():
    items, users, labels = _contested_crowd()
    code_of = {"neg": 0, "pos": 1}
    only_multi = fit_crowd(items, users, labels, code_of, {}, {})
    every = fit_crowd(items, users, labels, code_of, {}, {}, every_item=True)
    assert only_multi.prior[1] > 0.9  # learned from the ten contested items only
    assert every.prior[0] > 0.8  # 90 of the 100 items are class 0
    # the single-answer annotators are measured only when every item counts
    assert set(every.skills) == set(range(6)) and set(only_multi.skills) == {4, 5}


def test_a_routed_projects_refit_fits_every_answered_item(ws):
    for routing in ("off", "skill"):
        p, people = project_with_annotators(ws, 40, 3, overlap=1, target_confidence=0.99, max_answers=2,
                                            name=f"p-{routing}")
        ws.update_project(p["id"], routing=routing)
        done = 0
        for u in people:
            while (t := ws.next_task(p["id"], u)) is not None:
                ws.submit(t["id"], u, "pos" if t["item"]["id"] % 5 else "neg")
                done += 1
        assert done >= 40
        ws.refit_quality(p["id"])
        with ws.db.read() as conn:
            measured = conn.execute(text("SELECT count(*) FROM annotator_skills WHERE project_id = :p"),
                                    {"p": p["id"]}).scalar()
            answered = conn.execute(text("SELECT count(DISTINCT annotator_id) FROM answers WHERE project_id = :p"),
                                    {"p": p["id"]}).scalar()
            prior = conn.execute(text("SELECT prior FROM quality_models WHERE project_id = :p"),
                                 {"p": p["id"]}).scalar()
        prior = json.loads(prior) if isinstance(prior, str) else prior  # SQLite: text; PostgreSQL: JSON
        assert len(prior) == 2
        if routing == "skill":  # every annotator who answered is measured
            assert measured == answered >= 1


def test_a_routed_adaptive_projects_refit_stores_its_close_table(ws):
    from assay.engine.redundancy import model_close_table

    stored = {}
    for routing in ("off", "skill"):
        p, people = project_with_annotators(ws, 60, 4, overlap=1, target_confidence=0.99, max_answers=3,
                                            name=f"c-{routing}")
        ws.update_project(p["id"], routing=routing)
        for u in people:
            while (t := ws.next_task(p["id"], u)) is not None:
                ws.submit(t["id"], u, "pos" if (t["item"]["id"] + u["id"]) % 4 else "neg")
        ws.refit_quality(p["id"])
        with ws.db.read() as conn:
            raw = conn.execute(text("SELECT default_confusion FROM quality_models WHERE project_id = :p"),
                               {"p": p["id"]}).scalar()
        stored[routing] = model_close_table(json.loads(raw) if isinstance(raw, str) else raw)
    assert stored["off"] is None
    table = stored["skill"]
    assert table is not None and table.expected.shape[0] >= 3
    # an item with no answers and an even margin needs answers; one far past the target needs none
    assert table.lookup(np.array([0]), np.array([0.0]))[0] >= 1.0
    assert table.lookup(np.array([1]), np.array([12.0]))[0] < 0.01  # (its small error charge only)


def test_the_hand_out_scores_by_answers_saved_once_the_close_table_is_stored(ws):
    from assay.engine import routing
    from assay.engine.redundancy import model_close_table
    from assay.quality.routing import answers_saved, expected_gain

    p, people = project_with_annotators(ws, 80, 4, overlap=1, target_confidence=0.99, max_answers=3, name="saved")
    ws.update_project(p["id"], routing="skill", routing_random_share=0.0)
    p = ws.get_project(p["id"])
    args = {"project": p["id"], "user": people[0]["id"]}
    with ws.db.read() as conn:  # before any re-fit: the information gain
        rows = routing.candidates(conn, args, n=20)
        before = routing.score(conn, p, args, rows, rows.fitted)
    assert rows.fitted is None and np.allclose(before, before[0])  # nothing known: all alike
    for u in people[1:]:
        for _ in range(15):
            t = ws.next_task(p["id"], u)
            ws.submit(t["id"], u, "pos" if (t["item"]["id"] + u["id"]) % 3 else "neg")
    ws.refit_quality(p["id"])
    with ws.db.read() as conn:
        rows = routing.candidates(conn, args, n=64)
        got = routing.score(conn, p, args, rows, rows.fitted)
        raw = conn.execute(text("SELECT default_confusion FROM quality_models WHERE project_id = :p"),
                           {"p": p["id"]}).scalar()
        conf, _, base = routing._skill(conn, args, 2, rows.fitted)
        counts = dict(conn.execute(text("SELECT id, answer_count FROM tasks WHERE project_id = :p"),
                                   {"p": p["id"]}).all())
    table = model_close_table(json.loads(raw) if isinstance(raw, str) else raw)
    assert rows.fitted is not None and table is not None
    # the window knows each item's answers
    assert [r.n for r in rows] == [counts[r.id] for r in rows] and len({r.n for r in rows}) > 1
    lp = routing._log_posts(rows, 2, base)
    n = np.array([r.n for r in rows])
    np.testing.assert_allclose(got, answers_saved(lp, n, conf, table), atol=1e-12)
    # and that is not the gain: the two rules rank differently here
    post = np.exp(lp - lp.max(axis=1, keepdims=True))
    assert not np.allclose(got, expected_gain(post / post.sum(axis=1, keepdims=True), conf))
