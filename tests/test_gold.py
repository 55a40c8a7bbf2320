"""Gold questions, pauses and reviewers' decisions, through the HTTP API
(FastAPI's TestClient over a real workspace) on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from assay.cli import app as cli_app
from assay.server import create_app
from factories import count, item_ids, text_dataset, write_csv


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _user(ws, name, role, project_id=None):
    u, tok = ws.add_user(name, role)
    if project_id is not None:
        ws.add_member(project_id, u["id"])
    return {**u, "token": tok, "h": bearer(tok)}


@pytest.fixture
def gold_env(ws):
    n = 300
    ds = text_dataset(ws, "texts", [f"text {i}" for i in range(n)], meta=[{"ref": f"r{i}"} for i in range(n)])
    p = ws.create_project("g", ds["id"], ["pos", "neg"], overlap=1, gold_rate=0.1)
    ids = item_ids(ws, ds["id"])
    admin = _user(ws, "root", "admin")
    with TestClient(create_app(ws, reclaim_interval=0, refit_interval=0)) as client:
        yield ws, client, p, ids, admin


def _work(client, pid, h, answer, limit=10_000):
    """Ask for tasks and answer them until none is left or refused; the tasks seen."""
    seen = []
    for _ in range(limit):
        r = client.post(f"/api/projects/{pid}/tasks/next", headers=h)
        if r.status_code != 200:
            return seen, r
        task = r.json()["task"]
        if task is None:
            return seen, r
        seen.append(task)
        a = client.post(f"/api/tasks/{task['id']}/answers", json={"label": answer(task)}, headers=h)
        assert a.status_code == 201, a.text
    raise AssertionError("never ran out of tasks")


@pytest.mark.slow  # 6 s on PostgreSQL
def test_gold_is_mixed_in_at_the_rate_and_looks_like_any_task(gold_env):
    ws, c, p, ids, admin = gold_env
    gold_ids = set(ids[:60])
    r = c.post(f"/api/projects/{p['id']}/gold", headers=admin["h"],
               json={"items": [{"item_id": i, "label": "pos"} for i in sorted(gold_ids)]})
    assert r.status_code == 201, r.text
    got = r.json()
    assert {k: got[k] for k in ("added", "updated", "gold")} == {"added": 60, "updated": 0, "gold": 60}
    # the first 60 items: bunched at one end of the ids, which annotators see
    assert len(got["warnings"]) == 1 and "random" in got["warnings"][0]
    ann = _user(ws, "ann", "annotator", p["id"])
    seen, last = _work(c, p["id"], ann["h"], lambda t: "pos")
    assert last.json() == {"task": None}
    served_gold = [t for t in seen if t["item"]["id"] in gold_ids]
    regular = [t for t in seen if t["item"]["id"] not in gold_ids]
    # every regular item once, gold never twice, and none of it once regular work ran out
    assert sorted(t["item"]["id"] for t in regular) == sorted(set(ids) - gold_ids)
    assert len({t["id"] for t in served_gold}) == len(served_gold)
    # 240 regular tasks at a 10 % rate: about 27 gold; far outside is a bug, not luck
    assert 8 <= len(served_gold) <= 50, len(served_gold)
    # same payload shape, nothing that gives gold away
    assert {tuple(sorted(t)) for t in seen} == {tuple(sorted(seen[0]))}
    assert {tuple(sorted(t["item"])) for t in seen} == {tuple(sorted(seen[0]["item"]))}
    # progress counts the real work only
    prog = c.get(f"/api/projects/{p['id']}/progress", headers=admin["h"]).json()
    assert prog["tasks"] == 240 and prog["remaining"] == 0
    stats = c.get(f"/api/projects/{p['id']}/annotators/gold", headers=admin["h"]).json()["annotators"]
    assert [(s["username"], s["answers"], s["correct"], s["paused"]) for s in stats] == \
        [("ann", len(served_gold), len(served_gold), False)]
    # gold tasks never enter the shared pool
    assert count(ws, "tasks", "project_id = :p AND is_gold AND open_slots > 0", p=p["id"]) == 0


@pytest.mark.slow  # 8 s on PostgreSQL
def test_a_gold_answer_updates_skill_at_once_and_a_bad_annotator_is_paused(gold_env):
    ws, c, p, ids, admin = gold_env
    pid = p["id"]
    r = c.patch(f"/api/projects/{pid}/settings", headers=admin["h"],
                json={"gold_rate": 0.5, "gold_min_accuracy": 0.8, "gold_min_answers": 4})
    assert r.status_code == 200, r.text
    assert (r.json()["gold_rate"], r.json()["gold_min_accuracy"], r.json()["gold_min_answers"]) == (0.5, 0.8, 4)
    gold_ids = set(ids[:100])
    assert c.post(f"/api/projects/{pid}/gold", headers=admin["h"],
                  json={"items": [{"item_id": i, "label": "pos"} for i in gold_ids]}).status_code == 201
    bad = _user(ws, "bad", "annotator", pid)
    good = _user(ws, "good", "annotator", pid)
    seen, refused = _work(c, pid, bad["h"], lambda t: "neg")
    err = refused.json()["error"]
    assert refused.status_code == 403 and err["code"] == "paused"
    # the refusal says nothing about gold: no counts, no bar, no details
    assert "paused" in err["message"] and "%" not in err["message"] and not err.get("details")
    # paused some answers after the 4th gold answer crossed the bar (each
    # answer has a 1/3 chance to check the rule: 40 answers late is ~1e-7)
    gold_seen = sum(t["item"]["id"] in gold_ids for t in seen)
    fourth = [i for i, t in enumerate(seen) if t["item"]["id"] in gold_ids][3]
    assert gold_seen >= 4 and len(seen) - 1 - fourth <= 40
    # a good annotator is never paused
    seen_good, last = _work(c, pid, good["h"], lambda t: "pos")
    assert last.status_code == 200 and last.json() == {"task": None}
    stats = {s["username"]: s for s in c.get(f"/api/projects/{pid}/annotators/gold", headers=admin["h"]).json()["annotators"]}
    assert stats["bad"]["paused"] is True and stats["bad"]["accuracy"] == 0.0
    assert stats["good"]["paused"] is False and stats["good"]["accuracy"] == 1.0
    # the quality report shows the pause and fits with gold clamped
    rep = c.get(f"/api/projects/{pid}/quality", headers=admin["h"]).json()
    assert [x["username"] for x in rep["paused"]] == ["bad"]
    by_name = {a["username"]: a for a in rep["annotators"]}
    assert by_name["bad"]["paused"] is True and by_name["bad"]["gold_accuracy"] == 0.0
    assert by_name["bad"]["accuracy"] < 0.5 < by_name["good"]["accuracy"]
    # only an admin lifts a pause; then a fresh window starts
    r = c.post(f"/api/projects/{pid}/annotators/{bad['id']}/unpause", headers=good["h"])
    assert r.status_code == 403
    r = c.post(f"/api/projects/{pid}/annotators/{bad['id']}/unpause", headers=admin["h"])
    assert r.status_code == 200 and r.json()["paused"] is False
    after = c.get(f"/api/projects/{pid}/annotators/gold", headers=admin["h"]).json()["annotators"]
    after = {s["username"]: s for s in after}["bad"]
    assert (after["paused"], after["window_answers"], after["answers"]) == (False, 0, gold_seen)
    r = c.post(f"/api/projects/{pid}/tasks/next", headers=bad["h"])
    assert r.status_code == 200 and r.json()["task"] is None  # "good" did all the regular work
    assert c.post(f"/api/projects/{pid}/annotators/{bad['id']}/unpause", headers=admin["h"]).status_code == 404


def test_gold_import_is_all_or_nothing(gold_env):
    ws, c, p, ids, admin = gold_env
    pid = p["id"]
    ann = _user(ws, "ann", "annotator", pid)
    bad_rows = [
        [{"item_id": ids[0], "label": "pos"}, {"item_id": ids[1], "label": "maybe"}],  # unknown class
        [{"item_id": ids[0], "label": "pos"}, {"item_id": 10**9, "label": "pos"}],  # not an item
        [{"item_id": ids[0]}],  # no label
        [{"item_id": "seven", "label": "pos"}],
    ]
    for rows in bad_rows:
        r = c.post(f"/api/projects/{pid}/gold", headers=admin["h"], json={"items": rows})
        assert r.status_code == 400, r.text
        assert "nothing was stored" in r.json()["error"]["message"]
    r = c.post(f"/api/projects/{pid}/gold", headers=ann["h"], json={"items": [{"item_id": ids[0], "label": "pos"}]})
    assert r.status_code == 403
    assert count(ws, "gold") == 0
    assert count(ws, "tasks", "is_gold") == 0
    assert ws.get_project(pid)["has_gold"] is False


def test_gold_by_key_from_a_file_with_the_cli(gold_env, tmp_path):
    ws, c, p, ids, admin = gold_env
    f = write_csv(tmp_path / "gold.csv", ["ref", "label"], [["r3", "neg"], ["r5", "pos"]])
    res = CliRunner().invoke(cli_app, ["project", "gold", "g", str(f), "--key", "ref", "--home", str(ws.home)],
                             env={"ASSAY_DATABASE_URL": str(ws.db.engine.url.render_as_string(hide_password=False))})
    assert res.exit_code == 0, res.output
    assert "2 added" in res.output
    gold, _ = ws.list_gold(p["id"])
    assert {(g["item_id"], g["label"]) for g in gold} == {(ids[3], "neg"), (ids[5], "pos")}
    bad = write_csv(tmp_path / "bad.csv", ["ref", "label"], [["r4", "neg"], ["nope", "pos"]])
    res = CliRunner().invoke(cli_app, ["project", "gold", "g", str(bad), "--key", "ref", "--home", str(ws.home)],
                             env={"ASSAY_DATABASE_URL": str(ws.db.engine.url.render_as_string(hide_password=False))})
    assert res.exit_code == 1 and "no item has ref = 'nope'" in res.output
    assert count(ws, "gold") == 2
    # exports mark gold labels as such
    recs = {r["item_id"]: r for r in ws.export_records(p["id"])}
    assert (recs[ids[3]]["label"], recs[ids[3]]["label_method"], recs[ids[3]]["confidence"]) == ("neg", "gold", 1.0)
    # removing gold puts the task back into the pool
    ws.remove_gold(p["id"], ids[3])
    assert count(ws, "tasks", "item_id = :i AND NOT is_gold AND open_slots = 1", i=ids[3]) == 1


def test_expired_or_undone_gold_leases_never_enter_the_pool(ws, seeded_gold):
    seeded_gold(1)  # which tasks are gold draws is random; fix it so both cases below occur
    ds = text_dataset(ws, "d", [f"t{i}" for i in range(20)])
    p = ws.create_project("p", ds["id"], ["a", "b"], overlap=1, gold_rate=0.5)
    ids = item_ids(ws, ds["id"])
    ws.import_gold(p["id"], [{"item_id": i, "label": "a"} for i in ids[:10]])
    u, _ = ws.add_user("u", "annotator")
    ws.add_member(p["id"], u["id"])
    held = []
    while True:
        t = ws.next_task(p["id"], u)
        if t is None or t["item"]["id"] in ids[:10]:
            held.append(t)
            break
        ws.submit(t["id"], u, "a")
    gold_task = held[-1]
    assert gold_task is not None
    # the lease runs out: the gold task's slot is not "given back" to the pool
    assert ws.reclaim_expired(now=time.time() + 10**6) >= 1
    assert count(ws, "tasks", "is_gold AND open_slots > 0") == 0
    # answer a gold task, undo, answer again: needed follows the answers
    t = None
    for _ in range(200):
        t = ws.next_task(p["id"], u)
        if t is None or t["item"]["id"] in ids[:10]:
            break
        ws.submit(t["id"], u, "a")
    assert t is not None and t["item"]["id"] in ids[:10]
    a = ws.submit(t["id"], u, "b")
    assert {s["username"]: s["correct"] for s in ws.gold_stats(p["id"])} == {"u": 0}
    ws.undo(a["id"], u)
    ws.submit(t["id"], u, "a")
    row = count(ws, "tasks", "id = :t AND needed = answer_count AND answer_count = 1 AND open_slots = 0", t=t["id"])
    assert row == 1
    stats = {s["username"]: s for s in ws.gold_stats(p["id"])}["u"]
    # append-only: the undone wrong answer still counts, the re-answer is not scored
    assert (stats["answers"], stats["correct"]) == (1, 0)


def test_a_reviewers_decision_is_final_and_counts_like_gold(ws):
    ds = text_dataset(ws, "d", ["hard one", "easy one"])
    p = ws.create_project("p", ds["id"], ["x", "y"], overlap=1, target_confidence=0.95, max_answers=2)
    a, _ = ws.add_user("a", "annotator")
    b, _ = ws.add_user("b", "annotator")
    rev = _user(ws, "rev", "reviewer", p["id"])
    for u in (a, b):
        ws.add_member(p["id"], u["id"])
    t = ws.next_task(p["id"], a)
    ws.submit(t["id"], a, "x")
    t2 = ws.next_task(p["id"], b)
    assert t2["item"]["id"] == t["item"]["id"]
    ws.submit(t2["id"], b, "y")
    queue, _ = ws.review_queue(p["id"])
    item = t["item"]["id"]
    assert [q["item_id"] for q in queue] == [item]
    with TestClient(create_app(ws, reclaim_interval=0, refit_interval=0)) as c:
        ann_h = bearer(ws.create_token(a["id"]))
        r = c.post(f"/api/projects/{p['id']}/items/{item}/review", json={"label": "y"}, headers=ann_h)
        assert r.status_code == 403
        r = c.post(f"/api/projects/{p['id']}/items/{item}/review", json={"label": "z"}, headers=rev["h"])
        assert r.status_code == 400
        r = c.post(f"/api/projects/{p['id']}/items/{item}/review", json={"label": "y"}, headers=rev["h"])
        assert r.status_code == 200, r.text
        assert r.json()["label"] == "y"
    assert ws.review_queue(p["id"])[0] == []
    cons, _ = ws.item_consensus(p["id"], status="resolved")
    assert [(x["item_id"], x["label"], x["confidence"]) for x in cons] == [(item, "y", 1.0)]
    rec = next(r for r in ws.export_records(p["id"]) if r["item_id"] == item)
    assert (rec["label"], rec["label_method"], rec["confidence"]) == ("y", "review", 1.0)
    # counts like gold: both annotators are scored against it
    stats = {s["username"]: (s["answers"], s["correct"]) for s in ws.gold_stats(p["id"])}
    assert stats == {"a": (1, 0), "b": (1, 1)}
    assert count(ws, "tasks", "id = :t AND open_slots = 0", t=t["id"]) == 1
    # a reviewed item is not handed out as a gold question
    assert count(ws, "tasks", "is_gold") == 0


def test_settings_are_checked(gold_env):
    ws, c, p, ids, admin = gold_env
    for body in ({"gold_rate": 0.9}, {"gold_min_accuracy": 0}, {"gold_min_answers": 0}):
        r = c.patch(f"/api/projects/{p['id']}/settings", headers=admin["h"], json=body)
        assert r.status_code in (400, 422), (body, r.text)
    assert ws.get_project(p["id"])["gold_rate"] == 0.1
    with pytest.raises(Exception, match="cannot change overlap"):
        ws.update_project(p["id"], overlap=3)


def test_refits_keep_gold_out_of_the_pool_and_reviews_final(ws, seeded_gold):
    """A re-fit rewrites posteriors from the answers: it must neither reopen
    a gold task nor overturn a reviewer's decision, and it clamps both."""
    seeded_gold(3)  # gold questions are drawn at random; fix the draw
    ds = text_dataset(ws, "d", [f"t{i}" for i in range(12)])
    p = ws.create_project("p", ds["id"], ["x", "y"], overlap=1, target_confidence=0.99, max_answers=2,
                          gold_rate=0.5)
    ids = item_ids(ws, ds["id"])
    ws.import_gold(p["id"], [{"item_id": i, "label": "x"} for i in ids[:4]])
    people = []
    for n in range(3):
        u, _ = ws.add_user(f"u{n}")
        ws.add_member(p["id"], u["id"])
        people.append(u)
    for u in people:
        while (t := ws.next_task(p["id"], u)) is not None:
            ws.submit(t["id"], u, "y" if u is people[0] else "x")
    queue, _ = ws.review_queue(p["id"])
    assert queue, "some item should wait for a reviewer"
    rev = _user(ws, "rev", "reviewer", p["id"])
    decided = queue[0]["item_id"]
    ws.review(p["id"], decided, "y", rev)
    ws.refit_quality(p["id"])
    assert count(ws, "tasks", "project_id = :p AND is_gold AND open_slots > 0", p=p["id"]) == 0
    cons = {c["item_id"]: c for c in ws.item_consensus(p["id"], limit=100)[0]}
    assert (cons[decided]["label"], cons[decided]["status"], cons[decided]["confidence"]) == ("y", "resolved", 1.0)
    rec = next(r for r in ws.export_records(p["id"]) if r["item_id"] == decided)
    assert rec["label"] == "y" and rec["label_method"] == "review"
