"""Pre-labels: the model's suggestion travels with every task, answers record
whether it was accepted, and the anchoring readout counts it. Through the
real workspace and the HTTP API (both the fast lane and the FastAPI route),
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import JSON, bindparam, text

from assay.learn.step import ml_step
from assay.server import create_app
from factories import count, embedded_dataset, item_ids, predict, project_with_annotators

ROUTE_ONLY = {"Content-Type": "application/json; charset=UTF-8"}  # the fast lane passes these on


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def stored(ws, answer_id: int):
    with ws.db.read() as conn:
        return conn.execute(text(
            "SELECT label, suggestion, suggestion_accepted FROM answers WHERE id = :a")
            .columns(label=JSON, suggestion=JSON), {"a": answer_id}).one()


def assert_error(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return body["error"]


@pytest.fixture
def api(ws):
    with TestClient(create_app(ws, reclaim_interval=0)) as client:
        yield client


# ---------------------------------------------------------------- the task payload


def test_tasks_carry_the_models_suggestion_or_null(ws, api):
    p, (ann,) = project_with_annotators(ws, 6, 1, classes=("pos", "neg"), overlap=2)
    ids = item_ids(ws, p["dataset_id"])
    preds = {ids[0]: ("neg", 0.91), ids[2]: ("pos", 0.625), ids[3]: ("neg", 0.5)}
    predict(ws, p["id"], preds, version=4)
    # another project's prediction for the same item never leaks in
    other = ws.create_project("other", p["dataset_id"], ["x", "y"])
    predict(ws, other["id"], {ids[1]: ("x", 0.99)}, version=1)
    h = bearer(ws.create_token(ann["id"]))

    seen = {}
    while True:
        r = api.post(f"/api/projects/{p['id']}/tasks/next", headers=h)
        assert r.status_code == 200, r.text
        task = r.json()["task"]
        if task is None:
            break
        assert "suggestion" in task
        seen[task["item"]["id"]] = task["suggestion"]
        r = api.post(f"/api/tasks/{task['id']}/answers", json={"label": "pos"}, headers=h)
        assert r.status_code == 201, r.text
    assert set(seen) == set(ids)
    for i in ids:
        if i in preds:
            lab, c = preds[i]
            assert seen[i] == {"label": lab, "confidence": pytest.approx(c), "model_version": 4}
            assert isinstance(seen[i]["confidence"], float) and isinstance(seen[i]["model_version"], int)
        else:
            assert seen[i] is None, (i, seen[i])

    # the Python API gives the same; undo hands the task back with its suggestion
    u2, _ = ws.add_user("u2")
    ws.add_member(p["id"], u2["id"])
    t = ws.next_task(p["id"], u2)
    assert t["suggestion"] == (None if t["item"]["id"] not in preds else
                               {"label": preds[t["item"]["id"]][0], "confidence": pytest.approx(
                                   preds[t["item"]["id"]][1]), "model_version": 4})
    a = ws.submit(t["id"], u2, "neg")
    back = ws.undo(a["id"], u2)
    assert back["id"] == t["id"] and back["suggestion"] == t["suggestion"]


def test_gold_tasks_get_the_prediction_like_any_other(ws):
    p, (ann,) = project_with_annotators(ws, 20, 1, classes=("pos", "neg"), gold_rate=0.5)
    ids = item_ids(ws, p["dataset_id"])
    gold_items = set(ids[:5])
    ws.import_gold(p["id"], [{"item_id": i, "label": "pos"} for i in gold_items])
    predict(ws, p["id"], {i: ("neg" if i % 2 else "pos", 0.8) for i in ids}, version=2)
    got_gold = got_plain = 0
    while (t := ws.next_task(p["id"], ann)) is not None:
        i = t["item"]["id"]
        assert t["suggestion"] == {"label": "neg" if i % 2 else "pos", "confidence": pytest.approx(0.8),
                                   "model_version": 2}
        assert set(t) == {"id", "project_id", "lease_expires_at", "item", "suggestion"}
        if i in gold_items:
            got_gold += 1
        else:
            got_plain += 1
        ws.submit(t["id"], ann, "pos", suggestion=t["suggestion"]["label"])
    assert got_gold >= 1 and got_plain == 15


def test_predictions_of_the_in_loop_model_become_suggestions(ws):
    n = 60
    ds, ids, y = embedded_dataset(ws, n, seed=5)
    p = ws.create_project("p", ds["id"], ["a", "b"], overlap=1)
    ann, _ = ws.add_user("ann")
    ws.add_member(p["id"], ann["id"])
    t = ws.next_task(p["id"], ann)
    assert t["suggestion"] is None  # no model yet
    ws.skip(t["id"], ann)
    ws.update_project(p["id"], ml_space="f")
    ws.import_gold(p["id"], [{"item_id": ids[i], "label": "ab"[y[i]]} for i in range(40)])
    step = ml_step(ws, p["id"])
    assert step["version"] == 1
    with ws.db.read() as conn:
        rows = {r.item_id: r for r in conn.execute(text(
            "SELECT item_id, label, confidence, model_version FROM predictions WHERE project_id = :p")
            .columns(label=JSON), {"p": p["id"]})}
    # every item but the held-out validation share, which people label unaided
    from assay.learn.step import validation_mask
    held = set(np.array(ids)[validation_mask(np.array(ids), n)].tolist())
    assert set(rows) == set(ids) - held
    shown = 0
    while (t := ws.next_task(p["id"], ann)) is not None:
        if t["item"]["id"] in held:
            assert t["suggestion"] is None
            ws.skip(t["id"], ann)
            continue
        r = rows[t["item"]["id"]]
        assert t["suggestion"] == {"label": r.label, "confidence": pytest.approx(r.confidence),
                                   "model_version": 1}
        assert t["suggestion"]["label"] in ("a", "b") and 0.5 <= t["suggestion"]["confidence"] <= 1
        ws.submit(t["id"], ann, t["suggestion"]["label"], suggestion=t["suggestion"]["label"])
        shown += 1
    assert shown >= 1
    s = ws.suggestion_stats(p["id"])
    assert s["answers_with_suggestion"] == shown == s["accepted"] and s["acceptance_rate"] == 1.0


# ---------------------------------------------------------------- answers


@pytest.mark.parametrize("lane", ["fast", "route"])
def test_answers_record_whether_the_suggestion_was_accepted(ws, api, lane):
    p, (ann,) = project_with_annotators(ws, 5, 1, classes=("pos", "neg", "neutral"))
    h = bearer(ws.create_token(ann["id"]))
    if lane == "route":
        h = {**h, **ROUTE_ONLY}
    # (label, body extras) -> (stored suggestion, accepted)
    cases = [
        ({"label": "pos", "suggestion": "pos"}, ("pos", True)),
        ({"label": "neg", "suggestion": "pos"}, ("pos", False)),
        ({"label": "neutral"}, (None, None)),
        ({"label": "neg", "suggestion": None}, (None, None)),
        ({"label": "neutral", "suggestion": "neutral", "note": "extra keys are ignored"}, ("neutral", True)),
    ]
    for body, (sugg, accepted) in cases:
        t = api.post(f"/api/projects/{p['id']}/tasks/next", headers=h).json()["task"]
        r = api.post(f"/api/tasks/{t['id']}/answers", content=json.dumps(body), headers={
            "Content-Type": "application/json", **h})
        assert r.status_code == 201, r.text
        ans = r.json()["answer"]
        assert (ans["label"], ans["suggestion"], ans["suggestion_accepted"]) == (body["label"], sugg, accepted)
        row = stored(ws, ans["id"])
        assert (row.label, row.suggestion, row.suggestion_accepted) == (body["label"], sugg, accepted)
    # NULL, not JSON null, when no suggestion was shown
    assert count(ws, "answers", "project_id = :p AND suggestion IS NULL AND suggestion_accepted IS NULL",
                 p=p["id"]) == 2
    assert count(ws, "answers", "project_id = :p AND suggestion_accepted", p=p["id"]) == 2
    # the list of answers (reviewers) shows them too
    rows, _ = ws.list_answers(p["id"])
    assert sorted(r["suggestion_accepted"] is True for r in rows) == [False, False, False, True, True]


def test_multi_label_suggestion_accepted_means_the_same_set(ws, api):
    p, (ann,) = project_with_annotators(ws, 4, 1, classes=("a", "b", "c"), kind="multi")
    h = bearer(ws.create_token(ann["id"]))
    cases = [
        ({"label": ["c", "a"], "suggestion": ["a", "c"]}, (["a", "c"], True)),     # order does not matter
        ({"label": ["a"], "suggestion": ["a", "c"]}, (["a", "c"], False)),         # a subset is an override
        ({"label": ["a", "b", "c"], "suggestion": "b"}, (["b"], False)),           # a string is one class
        ({"label": ["b", "b"], "suggestion": ["b"]}, (["b"], True)),
    ]
    for body, (sugg, accepted) in cases:
        t = api.post(f"/api/projects/{p['id']}/tasks/next", headers=h).json()["task"]
        r = api.post(f"/api/tasks/{t['id']}/answers", json=body, headers=h)
        assert r.status_code == 201, r.text
        row = stored(ws, r.json()["answer"]["id"])
        assert (row.suggestion, row.suggestion_accepted) == (sugg, accepted), body


@pytest.mark.parametrize("lane", ["fast", "route"])
def test_a_bad_suggestion_is_refused_and_nothing_is_stored(ws, api, lane):
    p, (ann,) = project_with_annotators(ws, 3, 1, classes=("pos", "neg"))
    h = bearer(ws.create_token(ann["id"]))
    if lane == "route":
        h = {**h, **ROUTE_ONLY}
    t = api.post(f"/api/projects/{p['id']}/tasks/next", headers=h).json()["task"]
    url = f"/api/tasks/{t['id']}/answers"
    # a list is a label's shape for some kinds (boxes, spans): the kind refuses it here
    for body in ({"label": "pos", "suggestion": "maybe"}, {"label": "pos", "suggestion": ["pos"]},
                 {"label": "pos", "suggestion": ""}, {"label": "pos", "suggestion": [1]}):
        err = assert_error(api.post(url, json=body, headers=h), 400, "bad_request")
        assert "suggestion" in err["message"], err
    for body in ({"label": "pos", "suggestion": 5}, {"label": "pos", "suggestion": {"label": "pos"}}):
        assert_error(api.post(url, json=body, headers=h), 422, "validation_error")
    assert count(ws, "answers") == 0
    # the lease is still there: a good answer goes through
    r = api.post(url, json={"label": "neg", "suggestion": "pos"}, headers=h)
    assert r.status_code == 201, r.text
    assert count(ws, "answers", "suggestion_accepted = :f", f=False) == 1


def test_python_api_validates_the_suggestion(ws):
    p, (ann,) = project_with_annotators(ws, 2, 1, classes=("pos", "neg"))
    t = ws.next_task(p["id"], ann)
    from assay.errors import InvalidInput

    with pytest.raises(InvalidInput, match="suggestion"):
        ws.submit(t["id"], ann, "pos", suggestion="nope")
    assert count(ws, "answers") == 0
    a = ws.submit(t["id"], ann, "pos", suggestion="pos")
    assert a["suggestion"] == "pos" and a["suggestion_accepted"] is True


# ---------------------------------------------------------------- the anchoring readout


def test_suggestion_stats(ws, api):
    p, (ann,) = project_with_annotators(ws, 10, 1, classes=("pos", "neg"))
    rev, rev_token = ws.add_user("rev", "reviewer")
    ws.add_member(p["id"], rev["id"])
    _, admin_token = ws.add_user("root", "admin")
    ann_token = ws.create_token(ann["id"])
    ids = item_ids(ws, p["dataset_id"])
    empty = api.get(f"/api/projects/{p['id']}/suggestions", headers=bearer(admin_token))
    assert empty.status_code == 200, empty.text
    assert empty.json()["answers_with_suggestion"] == 0 and empty.json()["acceptance_rate"] is None
    assert empty.json()["accepted_accuracy"] is None

    # item -> (label, suggestion shown, truth and where it comes from)
    plan = {
        0: ("pos", "pos", ("pos", "review")),      # accepted, right
        1: ("pos", "pos", ("neg", "review")),      # accepted, wrong (the model was wrong too)
        2: ("neg", "pos", ("neg", "consensus")),   # overridden, right
        3: ("neg", "pos", ("pos", "consensus")),   # overridden, wrong
        4: ("pos", "pos", None),                   # accepted, truth unknown
        5: ("neg", "neg", ("pos", "open")),        # an open consensus is no truth
        6: ("pos", None, ("pos", "review")),       # no suggestion shown: not counted
        7: ("neg", "neg", ("neg", "review")),      # accepted, right
        8: ("neg", "pos", ("neg", "review")),      # overridden, right
    }
    while (t := ws.next_task(p["id"], ann)) is not None:
        k = ids.index(t["item"]["id"])
        if k not in plan:
            ws.skip(t["id"], ann)
            continue
        label, sugg, _ = plan[k]
        ws.submit(t["id"], ann, label, suggestion=sugg)
    now = time.time()
    for k, (_, _, truth) in plan.items():
        if truth is None:
            continue
        lab, src = truth
        if src == "review":
            ws.review(p["id"], ids[k], lab, rev)
        else:
            with ws.db.write() as conn:
                conn.execute(text(
                    "INSERT INTO item_consensus (project_id, item_id, label, confidence, log_post, answers, "
                    "status, updated_at) VALUES (:p, :i, :label, 0.97, :lp, 1, :st, :now)").bindparams(
                        bindparam("label", type_=JSON), bindparam("lp", type_=JSON)),
                    {"p": p["id"], "i": ids[k], "label": lab, "lp": [0.0, -3.0],
                     "st": "resolved" if src == "consensus" else "open", "now": now})

    want = {
        "project_id": p["id"], "answers_with_suggestion": 8, "accepted": 5, "overridden": 3,
        "acceptance_rate": pytest.approx(5 / 8), "with_truth": 6,
        "accepted_with_truth": 3, "accepted_correct": 2, "accepted_accuracy": pytest.approx(2 / 3),
        "overridden_with_truth": 3, "overridden_correct": 2, "overridden_accuracy": pytest.approx(2 / 3),
        "suggestion_accuracy": pytest.approx(3 / 6),
    }
    assert ws.suggestion_stats(p["id"]) == want
    assert ws.suggestion_stats(p["id"], page_size=2) == want  # keyset pages add up
    # a gold label wins over the consensus: item 3's truth becomes "neg" (overridden, right)
    with ws.db.write() as conn:
        conn.execute(text("INSERT INTO gold (project_id, item_id, label, source, created_at) "
                          "VALUES (:p, :i, :label, 'import', :now)").bindparams(bindparam("label", type_=JSON)),
                     {"p": p["id"], "i": ids[3], "label": "neg", "now": now})
    s = ws.suggestion_stats(p["id"])
    assert (s["overridden_correct"], s["suggestion_accuracy"]) == (3, pytest.approx(2 / 6))

    for token in (admin_token, rev_token):
        r = api.get(f"/api/projects/{p['id']}/suggestions", headers=bearer(token))
        assert r.status_code == 200, r.text
        assert r.json() == s
    assert_error(api.get(f"/api/projects/{p['id']}/suggestions", headers=bearer(ann_token)), 403, "forbidden")
    _, out_token = ws.add_user("outsider", "reviewer")
    assert_error(api.get(f"/api/projects/{p['id']}/suggestions", headers=bearer(out_token)), 404, "not_found")
    assert_error(api.get("/api/projects/999/suggestions", headers=bearer(admin_token)), 404, "not_found")


def test_the_fast_lane_takes_answers_with_a_suggestion():
    """The "fast" cases above really run through HotPaths; odd ones go to the route."""
    from assay.server.routers.tasks import _plain_answer

    js = {"headers": [(b"content-type", b"application/json")]}
    assert _plain_answer(js, b'{"label": "pos", "suggestion": "neg"}') == ("pos", "neg")
    assert _plain_answer(js, b'{"label": ["a"], "suggestion": ["a", "b"]}') == (["a"], ["a", "b"])
    assert _plain_answer(js, b'{"label": "pos", "suggestion": null}') == ("pos", None)
    assert _plain_answer(js, b'{"label": "pos"}') == ("pos", None)
    for body in (b'{"label": "pos", "suggestion": 5}', b'{"label": "pos", "suggestion": [1]}',
                 b'{"label": "pos", "suggestion": {"label": "pos"}}'):
        assert _plain_answer(js, body) is None  # the route answers 422
    route = {"headers": [(b"content-type", ROUTE_ONLY["Content-Type"].encode())]}
    assert _plain_answer(route, b'{"label": "pos", "suggestion": "neg"}') is None
