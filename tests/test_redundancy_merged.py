"""Adaptive redundancy, live, for kinds whose answers merge (boxes, spans):
over real HTTP, two agreeing answers settle an item (no third hand-out), two
disagreeing ones give a third annotator the item, ``max_answers`` sends it to
review; the settings accept ``target_confidence`` for these kinds only with an
overlap of 2 or more; the periodic re-fit rewrites the merged confidences
(SQLite and PostgreSQL)."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import text

from _server import LiveServer
from assay import kinds
from assay.errors import InvalidInput
from factories import text_dataset
from test_kinds_shapes import image_dataset

CAR = [20, 30, 80, 90, "car"]
CAR_TOO = [21, 31, 79, 91, "car"]  # IoU ~0.95 with CAR: the same object
PERSON = [100, 5, 120, 40, "person"]
TEXTS = ["Ada Lovelace met Babbage in London", "Paris is far from Rome"]
PER = [0, 12, "PER"]
LOC = [29, 35, "LOC"]


def _people(ws, p, n):
    out = []
    for i in range(n):
        u, tok = ws.add_user(f"a{i}")
        ws.add_member(p["id"], u["id"])
        out.append({"Authorization": f"Bearer {tok}"})
    return out


def _next(c, p, h):
    r = c.post(f"/api/projects/{p['id']}/tasks/next", headers=h)
    assert r.status_code == 200, r.text
    return r.json()["task"]


def _answer(c, task, h, label):
    r = c.post(f"/api/tasks/{task['id']}/answers", headers=h, json={"label": label})
    assert r.status_code == 201, r.text


def _consensus(c, p, admin):
    r = c.get(f"/api/projects/{p['id']}/consensus", headers=admin)
    assert r.status_code == 200, r.text
    return {row["item_id"]: row for row in r.json()["items"]}


def _counts(ws, p):
    with ws.db.read() as conn:
        return {r.item_id: (r.needed, r.answer_count, r.open_slots) for r in conn.execute(
            text("SELECT item_id, needed, answer_count, open_slots FROM tasks WHERE project_id = :p"), {"p": p["id"]})}


def _create(c, admin, ds, schema, **settings):
    r = c.post("/api/projects", headers=admin, json={"name": schema["kind"], "dataset_id": ds["id"],
                                                     "schema": schema, **settings})
    assert r.status_code == 201, r.text
    return r.json()


def _play(ws, c, p, admin, hs, agree, disagree):
    """Two annotators answer both items (``agree[i]``/``disagree[i]``: their
    labels per item, by the item the server handed out), then a third asks."""
    for h, k in ((hs[0], 0), (hs[1], 1)):
        for _ in range(2):
            t = _next(c, p, h)
            item = t["item"]["id"]
            _answer(c, t, h, (agree if item == p["_items"][0] else disagree)[k])
    return _consensus(c, p, admin)


def _check_rules(ws, c, p, admin, hs, agree, disagree, third):
    settled, unsure = p["_items"]
    got = _play(ws, c, p, admin, hs, agree, disagree)
    assert got[settled]["status"] == "resolved" and got[settled]["confidence"] >= p["target_confidence"]
    assert got[settled]["answers"] == 2
    assert got[unsure]["status"] == "open" and got[unsure]["confidence"] < p["target_confidence"]
    counts = _counts(ws, p)
    assert counts[settled] == (2, 2, 0)  # no third slot for the settled item
    assert counts[unsure] == (3, 2, 1)  # one more for the unsure one
    t = _next(c, p, hs[2])
    assert t["item"]["id"] == unsure  # the third annotator gets only the unsure item
    _answer(c, t, hs[2], third)
    assert _next(c, p, hs[2]) is None
    got = _consensus(c, p, admin)
    assert got[unsure]["status"] == "review" and got[unsure]["answers"] == 3  # max_answers, still unsure
    assert _counts(ws, p)[unsure] == (3, 3, 0)
    r = c.get(f"/api/projects/{p['id']}/consensus", headers=admin, params={"status": "review"})
    assert [row["item_id"] for row in r.json()["items"]] == [unsure]
    for h in hs:  # nobody gets anything more
        assert _next(c, p, h) is None
    return got


def test_boxes_settle_reopen_and_review_over_http(ws, tmp_path):
    ds, order = image_dataset(ws, tmp_path, n=2)
    _, tok = ws.add_user("boss", "admin")
    admin = {"Authorization": f"Bearer {tok}"}
    with LiveServer(ws) as srv, httpx.Client(base_url=srv.base, timeout=30) as c:
        p = _create(c, admin, ds, {"kind": "boxes", "classes": ["car", "person"]},
                    overlap=2, target_confidence=0.9, max_answers=3)
        assert p["target_confidence"] == 0.9 and p["max_answers"] == 3
        p["_items"] = order
        hs = _people(ws, p, 3)
        got = _check_rules(ws, c, p, admin, hs, agree=[[CAR], [CAR_TOO]], disagree=[[CAR], [CAR, PERSON]],
                           third=[CAR, PERSON])
        # two of three drew the person: kept, at 2/3 for its keep call (the car: 3 of 3)
        assert got[order[1]]["confidence"] == pytest.approx(2 / 3)
        assert sorted(b[4] for b in got[order[1]]["label"]) == ["car", "person"]
        # the final label (export) is the merged one
        r = c.get(f"/api/projects/{p['id']}/labels", headers=admin)
        assert r.status_code == 200, r.text
        by = {row["item_id"]: row for row in r.json()["labels"]}
        assert by[order[0]]["source"].startswith("consensus") and len(by[order[0]]["label"]) == 1


def test_spans_settle_reopen_and_review_over_http(ws):
    ds = text_dataset(ws, "news", TEXTS)
    with ws.db.read() as conn:
        items = [r.id for r in conn.execute(text("SELECT id FROM items WHERE dataset_id = :d ORDER BY id"),
                                            {"d": ds["id"]})]
    _, tok = ws.add_user("boss", "admin")
    admin = {"Authorization": f"Bearer {tok}"}
    with LiveServer(ws) as srv, httpx.Client(base_url=srv.base, timeout=30) as c:
        p = _create(c, admin, ds, {"kind": "spans", "classes": ["PER", "LOC"]},
                    overlap=2, target_confidence=0.9, max_answers=3)
        p["_items"] = items
        hs = _people(ws, p, 3)
        got = _check_rules(ws, c, p, admin, hs, agree=[[PER, [17, 24, "PER"]], [PER, [17, 24, "PER"]]],
                           disagree=[[[0, 5, "LOC"]], [[0, 5, "LOC"], [15, 19, "LOC"]]], third=[[0, 5, "LOC"]])
        assert got[items[0]]["label"] == [PER, [17, 24, "PER"]] and got[items[0]]["confidence"] == 1.0
        assert got[items[1]]["label"] == [[0, 5, "LOC"]]  # two of three left [15, 19] out


def test_settings_name_the_kinds_and_want_two_answers(ws, tmp_path):
    ds = text_dataset(ws, "d", ["a b"])
    with pytest.raises(InvalidInput, match="overlap of 2 or more"):
        ws.create_project("s1", ds["id"], ["PER"], kind="spans", target_confidence=0.9)
    with pytest.raises(InvalidInput, match="is for single, boxes, polygons, spans projects, not multi"):
        ws.create_project("m", ds["id"], ["a", "b"], kind="multi", overlap=2, target_confidence=0.9)
    assert kinds.adaptive() == ["single", "boxes", "polygons", "spans"]
    p = ws.create_project("s2", ds["id"], ["PER"], kind="spans", overlap=2, target_confidence=0.9)
    assert p["target_confidence"] == 0.9 and p["max_answers"] == 5


def test_gold_item_stays_at_its_label_and_refit_rewrites(ws, tmp_path):
    from assay.engine import gold

    ds, order = image_dataset(ws, tmp_path, n=4)
    p = ws.create_project("b", ds["id"], ["car", "person"], kind="boxes", overlap=2, gold_rate=0.5,
                          target_confidence=0.9, max_answers=3)
    people = [ws.add_user(f"u{i}")[0] for i in range(2)]
    for u in people:
        ws.add_member(p["id"], u["id"])
    ws.import_gold(p["id"], [{"item_id": order[3], "label": [CAR]}])
    gold.seed(7)
    try:
        for u, lab in ((people[0], [CAR]), (people[1], [PERSON])):  # they never agree
            while (t := ws.next_task(p["id"], u)) is not None:
                ws.submit(t["id"], u, lab)
    finally:
        gold.seed(None)
    rows = {r["item_id"]: r for r in ws.item_consensus(p["id"])[0]}
    # the gold question was answered (the seeded draws) and did the same work, then stays at its label
    assert rows[order[3]]["label"] == [CAR] and rows[order[3]]["status"] == "resolved"
    assert rows[order[3]]["confidence"] == 1.0 and rows[order[3]]["answers"] == 2
    for i in order[:3]:  # the real items: two disagreeing answers, open, a third slot each
        assert rows[i]["status"] == "open" and rows[i]["confidence"] == pytest.approx(0.25)
        assert rows[i]["answers"] == 2 and _counts(ws, p)[i] == (3, 2, 1)
    assert p["id"] in ws.refits_due(min_new=1)
    out = ws.refit_quality(p["id"])
    assert out["answers"] == 8 and out["items"] == 3 and out["method"] == "vote" and out["open"] == 3
    with ws.db.read() as conn:
        assert conn.execute(text("SELECT answers FROM quality_models WHERE project_id = :p"),
                            {"p": p["id"]}).scalar_one() == 8
    rows = {r["item_id"]: r for r in ws.item_consensus(p["id"])[0]}
    assert all(rows[i]["status"] == "open" for i in order[:3])
    assert p["id"] not in ws.refits_due(min_new=1)  # fitted on every answer
    assert ws.doctor(p["id"])["drift"] == []


def test_refit_with_skills_rewrites_confidences_and_reopens(ws, tmp_path):
    """Ten images or more with two answers: the re-fit is fit_boxes' EM (recall,
    false rate, missed objects), more careful than the per-answer vote: images
    the vote settled at 1.0 go back to the pool when the EM puts them below target."""
    from assay.quality.boxes import fit_boxes

    ds, order = image_dataset(ws, tmp_path, n=12)
    p = ws.create_project("b", ds["id"], ["car", "person"], kind="boxes", overlap=2,
                          target_confidence=0.9, max_answers=3)
    people = [ws.add_user(f"u{i}")[0] for i in range(2)]
    for u in people:
        ws.add_member(p["id"], u["id"])
    drawn = {}
    for k, u in enumerate(people):
        while (t := ws.next_task(p["id"], u)) is not None:
            lab = [CAR, PERSON] if (t["item"]["id"] == order[0] and k == 1) else [CAR]
            drawn[(t["item"]["id"], u["id"])] = lab
            ws.submit(t["id"], u, lab)
    rows = {r["item_id"]: r for r in ws.item_consensus(p["id"])[0]}
    assert [rows[i]["status"] for i in order[1:]] == ["resolved"] * 11  # the vote: 2 of 2 agree
    assert rows[order[0]]["status"] == "open" and rows[order[0]]["confidence"] == pytest.approx(0.5)
    out = ws.refit_quality(p["id"])
    fit = fit_boxes([{"item": i, "worker": w, "boxes": lab} for (i, w), lab in drawn.items()])
    want = {r["item"]: r["confidence"] for r in fit.results}
    assert out["method"] == fit.method == "em" and out["answers"] == 24
    rows = {r["item_id"]: r for r in ws.item_consensus(p["id"])[0]}
    for i in order:
        assert rows[i]["confidence"] == pytest.approx(want[i])
    below = [i for i in order[1:] if want[i] < 0.9]
    # each image the vote had settled and the EM puts below target gets a third slot
    # (order[0] has had its third since its second answer)
    assert below and out["reopened"] == len(below)
    for i in [order[0], *below]:
        assert rows[i]["status"] == "open" and _counts(ws, p)[i] == (3, 2, 1)
    assert ws.doctor(p["id"])["drift"] == []
