"""Boxes and polygons on images (assay.kinds.shapes): the kinds' rules, and a
project of each over a real image dataset (PNGs made here), answered through
the Workspace and over HTTP, exported in every format, with gold, review and
the quality page behaving for a kind that is not one class out of K."""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest

from _server import LiveServer
from assay import kinds
from assay.errors import InvalidInput
from factories import snapshot, text_dataset

SCHEMA = {"classes": [{"name": "car"}, {"name": "person"}]}
SQUARE = [[10, 10], [50, 10], [50, 50], [10, 50]]


# ---------------------------------------------------------------- the rules


def test_boxes_validate_canonical_and_refusals():
    boxes = kinds.get("boxes")
    got = boxes.validate([(30.004, 5, 60, 25.126, "person"), [1, 2, 3, 4, "car"], [1, 2, 3, 4, "car"]], SCHEMA)
    assert got == [[1.0, 2.0, 3.0, 4.0, "car"], [30.0, 5.0, 60.0, 25.13, "person"]]  # rounded, sorted, deduped
    assert boxes.validate([], SCHEMA) == []  # nothing to mark: an answer
    bad = [
        ("car", "list of boxes"), (None, "list of boxes"), (3, "list of boxes"),
        ([(1, 2, 3, 4)], r"\[x1, y1, x2, y2, label\]"), ([[1, 2, 3, 4, "car", 5]], r"\[x1, y1, x2, y2, label\]"),
        ([[5, 2, 3, 4, "car"]], "x1 < x2"), ([[1, 2, 1, 4, "car"]], "x1 < x2"), ([[1, 9, 3, 4, "car"]], "y1 < y2"),
        ([[-1, 2, 3, 4, "car"]], "from 0"), ([[1, 2, float("inf"), 4, "car"]], "finite"),
        ([[1, 2, float("nan"), 4, "car"]], "finite"), ([[True, 2, 3, 4, "car"]], "must be a number"),
        ([["1", 2, 3, 4, "car"]], "must be a number"), ([[1, 2, 3, 4, "bus"]], "unknown class 'bus'"),
        ([[1, 2, 3, 4, 7]], "class name"), ([[1, 2, 3, 4, None]], "class name"),
    ]
    for label, msg in bad:
        with pytest.raises(InvalidInput, match=msg):
            boxes.validate(label, SCHEMA)
    with pytest.raises(InvalidInput, match="at most"):
        boxes.validate([[1, 2, 3, 4, "car"]] * 2001, SCHEMA)


def test_polygons_validate_canonical_and_refusals():
    polys = kinds.get("polygons")
    closed = {"label": "car", "points": [*SQUARE, [10, 10]]}
    twice = {"label": "person", "points": [[0, 0], [4, 0], [4, 0], [0, 3.333]]}
    assert polys.validate([twice, closed], SCHEMA) == [
        {"label": "person", "points": [[0.0, 0.0], [4.0, 0.0], [0.0, 3.33]]},  # a point clicked twice counts once
        {"label": "car", "points": [[10.0, 10.0], [50.0, 10.0], [50.0, 50.0], [10.0, 50.0]]},  # closing point dropped
    ]
    assert polys.validate([], SCHEMA) == []
    bad = [
        ({"label": "car"}, "must be"), ({"label": "car", "points": SQUARE, "x": 1}, "must be"),
        ([[1, 2], [3, 4], [5, 6]], "must be"), ({"label": "car", "points": [[0, 0], [1, 1]]}, "3 to"),
        ({"label": "car", "points": [[0, 0], [1, 1], [2, 2]]}, "enclose an area"),
        ({"label": "car", "points": [[0, 0], [1, 1], [0, 0]]}, "3 distinct points"),
        ({"label": "car", "points": [[0, 0], [1], [2, 2]]}, r"point 1 must be \[x, y\]"),
        ({"label": "car", "points": [[0, 0], [1, -1], [2, 2]]}, "from 0"),
        ({"label": "bus", "points": SQUARE}, "unknown class"),
    ]
    for p, msg in bad:
        with pytest.raises(InvalidInput, match=msg):
            polys.validate([p], SCHEMA)
    with pytest.raises(InvalidInput, match="list of polygons"):
        polys.validate({"label": "car", "points": SQUARE}, SCHEMA)


def test_same_is_iou_matching_and_majority_keeps_half():
    boxes, polys = kinds.get("boxes"), kinds.get("polygons")
    a = [[10.0, 10.0, 50.0, 50.0, "car"], [100.0, 100.0, 120.0, 130.0, "person"]]
    near = [[101.0, 99.0, 121.0, 129.0, "person"], [12.0, 11.0, 52.0, 49.0, "car"]]
    assert boxes.same(a, near) and not boxes.same(a, near[:1]) and not boxes.same(a, [near[0], near[0]])
    assert not boxes.same(a[:1], [[10.0, 10.0, 50.0, 50.0, "person"]])  # same place, other class
    assert not boxes.same(a[:1], [[30.0, 30.0, 70.0, 70.0, "car"]])  # IoU 1/7
    assert boxes.same([], []) and not boxes.same([], a)

    # three answers: the car drawn by all, the person by one, so it is dropped
    label, conf = boxes.majority([a[:1], near, [[9.0, 9.0, 49.0, 51.0, "car"]]])
    assert label == [[10.0, 10.0, 50.0, 50.0, "car"]]  # per-edge medians
    assert conf == pytest.approx(1.0 * (2 / 3))  # the car kept at 3/3, the person dropped at 1/3
    assert boxes.majority([[], []]) == ([], 1.0)  # both saw nothing to mark
    assert boxes.majority([[], a[:1]])[0] == a[:1]  # half of the answers: kept
    assert boxes.majority([]) == (None, None)
    assert boxes.agreement([a, near, []]) == pytest.approx(1 / 3)

    sq = polys.validate([{"label": "car", "points": SQUARE}], SCHEMA)
    shifted = polys.validate([{"label": "car", "points": [[12, 10], [52, 10], [52, 50], [12, 50]]}], SCHEMA)
    tri = polys.validate([{"label": "car", "points": [[10, 10], [30, 10], [10, 30]]}], SCHEMA)
    assert polys.same(sq, shifted) and not polys.same(sq, tri)  # IoU .905 and .125
    far = polys.validate([{"label": "car", "points": [[40, 40], [90, 40], [90, 90]]}], SCHEMA)
    assert not polys.same(sq, far) and not polys.same(sq, [])
    label, conf = polys.majority([sq, shifted, far, []])
    assert label == sq  # the medoid of {sq, shifted} (a tie: the first); the far triangle: 1 vote of 4
    assert conf == pytest.approx(0.5 * 0.75)


def test_polygon_iou_against_exact_areas():
    from assay.kinds.shapes import polygon_iou

    a = [[0, 0], [10, 0], [10, 10], [0, 10]]
    assert polygon_iou(a, a) == 1.0
    assert polygon_iou(a, [[5, 0], [15, 0], [15, 10], [5, 10]]) == pytest.approx(1 / 3, abs=0.02)
    assert polygon_iou(a, [[0, 0], [10, 0], [0, 10]]) == pytest.approx(0.5, abs=0.02)
    assert polygon_iou(a, [[20, 20], [30, 20], [30, 30]]) == 0.0
    # concave: an L shape over its bounding square covers 3/4
    ell = [[0, 0], [10, 0], [10, 5], [5, 5], [5, 10], [0, 10]]
    assert polygon_iou(a, ell) == pytest.approx(0.75, abs=0.02)


# ---------------------------------------------------------------- a project end to end


def image_dataset(ws, tmp_path, n: int = 3, size=(160, 120)):
    """``n`` small PNGs imported from a folder; their item ids in file order."""
    from PIL import Image, ImageDraw

    folder = tmp_path / "street"
    folder.mkdir()
    for i in range(n):
        im = Image.new("RGB", size, (200, 200, 200))
        ImageDraw.Draw(im).rectangle([20 + 10 * i, 30, 80 + 10 * i, 90], fill=(30, 60, 200))
        im.save(folder / f"img{i}.png")
    ds = ws.create_dataset("street")
    assert ws.import_file(ds["id"], folder)["added"] == n
    with ws.db.read() as conn:
        from sqlalchemy import JSON, text

        rows = conn.execute(text("SELECT id, kind, meta FROM items WHERE dataset_id = :d").columns(meta=JSON),
                            {"d": ds["id"]}).all()
    assert {r.kind for r in rows} == {"image"}
    return ds, [r.id for r in sorted(rows, key=lambda r: r.meta["file"])]


DRAWN = {  # three annotators' answers per image (by index)
    0: [[[20, 30, 80, 90, "car"]], [[21, 31, 79, 91, "car"], [100, 5, 120, 40, "person"]], [[19, 29, 81, 89, "car"]]],
    1: [[], [], [[5, 5, 15, 15, "person"]]],
    2: [[[40, 30, 100, 90, "car"], [100, 10, 130, 60, "person"]], [[41, 30, 100, 90, "car"]],
        [[40, 31, 99, 90, "car"], [101, 10, 130, 59, "person"]]],
}


def _answer_all(ws, p, people, order):
    for n, u in enumerate(people):
        while (task := ws.next_task(p["id"], u)) is not None:
            ws.submit(task["id"], u, DRAWN[order.index(task["item"]["id"])][n])


def test_boxes_project_workspace_export_gold_review(ws, tmp_path):
    ds, order = image_dataset(ws, tmp_path)
    texts = text_dataset(ws, "notes", ["a line of text"])
    for kind in ("boxes", "polygons"):
        with pytest.raises(InvalidInput, match="label image items; dataset 'notes' holds text items"):
            ws.create_project(f"on text {kind}", texts["id"], ["car"], kind=kind)
    with pytest.raises(InvalidInput, match="routing"):
        ws.create_project("bad", ds["id"], ["car", "person"], kind="boxes", routing="skill")
    p = ws.create_project("street boxes", ds["id"], ["car", "person"], kind="boxes", overlap=3)
    assert (p["schema"]["kind"], p["widget"]) == ("boxes", "boxes")
    people = [ws.add_user(f"u{i}")[0] for i in range(3)]
    admin = ws.add_user("boss", role="admin")[0]
    for u in people:
        ws.add_member(p["id"], u["id"])

    task = ws.next_task(p["id"], people[0])
    assert task["item"]["kind"] == "image" and task["item"]["content_url"]
    before = snapshot(ws)
    for bad in ([[5, 5, 1, 1, "car"]], [[1, 1, 5, 5, "bus"]], "car", [["car"]], [{"label": "car"}]):
        with pytest.raises(InvalidInput):
            ws.submit(task["id"], people[0], bad)
    assert snapshot(ws) == before  # a refused answer changes nothing
    ws.submit(task["id"], people[0], DRAWN[order.index(task["item"]["id"])][0])
    _answer_all(ws, p, people, order)

    stored = {(a["item_id"], a["annotator_id"]): a["label"] for a in ws.list_answers(p["id"], limit=100)[0]}
    assert stored[(order[0], people[1]["id"])] == [[21.0, 31.0, 79.0, 91.0, "car"], [100.0, 5.0, 120.0, 40.0, "person"]]
    assert stored[(order[1], people[0]["id"])] == []  # "nothing to mark" is stored as an answer

    recs = {r["item_id"]: r for r in ws.export_records(p["id"])}
    assert recs[order[0]]["label"] == [[20.0, 30.0, 80.0, 90.0, "car"]] and recs[order[0]]["label_method"] == "majority"
    assert recs[order[1]]["label"] == []
    assert recs[order[2]]["label"] == [[40.0, 30.0, 100.0, 90.0, "car"], [100.5, 10.0, 130.0, 59.5, "person"]]
    for fmt in ("csv", "jsonl", "parquet"):
        ws.export(p["id"], tmp_path / f"boxes.{fmt}")
    csv_labels = [json.loads(x) for x in pd.read_csv(tmp_path / "boxes.csv")["label"]]
    assert csv_labels == [recs[i]["label"] for i in order]
    lines = [json.loads(x) for x in (tmp_path / "boxes.jsonl").read_text().splitlines()]
    assert [x["label"] for x in lines] == csv_labels and len(lines[0]["answers"]) == 3
    assert [json.loads(x) for x in pd.read_parquet(tmp_path / "boxes.parquet")["label"]] == csv_labels

    # the quality page is for one-class-of-K projects: a clear refusal, not a crash
    with pytest.raises(InvalidInput, match="single-label"):
        ws.quality_report(p["id"])

    # a reviewer's boxes are validated by the kind and score the answers by IoU matching
    with pytest.raises(InvalidInput, match="x1 < x2"):
        ws.review(p["id"], order[0], [[9, 9, 1, 1, "car"]], admin)
    ws.review(p["id"], order[0], [[20, 30, 80, 90, "car"]], admin)
    stats = {s["username"]: (s["answers"], s["correct"]) for s in ws.gold_stats(p["id"])}
    assert stats == {"u0": (1, 1), "u1": (1, 0), "u2": (1, 1)}  # u1 drew an extra person
    assert next(r for r in ws.export_records(p["id"]) if r["item_id"] == order[0])["label_method"] == "review"


def test_boxes_gold_files_csv_and_jsonl(ws, tmp_path):
    ds, order = image_dataset(ws, tmp_path)
    p = ws.create_project("gold boxes", ds["id"], ["car", "person"], kind="boxes")
    (tmp_path / "gold.jsonl").write_text(
        json.dumps({"item_id": order[0], "label": [[20, 30, 80, 90.004, "car"]]}) + "\n"
        + json.dumps({"item_id": order[1], "label": []}) + "\n")
    assert ws.import_gold_file(p["id"], tmp_path / "gold.jsonl")["added"] == 2
    pd.DataFrame({"item_id": [order[2]], "label": ['[[40, 30, 100, 90, "car"]]']}).to_csv(tmp_path / "g.csv", index=False)
    assert ws.import_gold_file(p["id"], tmp_path / "g.csv")["added"] == 1
    gold = {g["item_id"]: g["label"] for g in ws.list_gold(p["id"])[0]}
    assert gold == {order[0]: [[20.0, 30.0, 80.0, 90.0, "car"]], order[1]: [], order[2]: [[40.0, 30.0, 100.0, 90.0, "car"]]}
    before = snapshot(ws)
    pd.DataFrame({"item_id": [order[2]], "label": ["car"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InvalidInput, match="JSON"):
        ws.import_gold_file(p["id"], tmp_path / "bad.csv")
    with pytest.raises(InvalidInput, match="x1 < x2"):
        ws.import_gold(p["id"], [{"item_id": order[2], "label": [[5, 5, 5, 9, "car"]]}])
    assert snapshot(ws) == before


def test_polygons_and_boxes_over_http(ws, tmp_path):
    ds, order = image_dataset(ws, tmp_path, n=2)
    admin, admin_token = ws.add_user("boss", role="admin")
    ann, token = ws.add_user("ann")
    h = {"Authorization": f"Bearer {token}"}
    ha = {"Authorization": f"Bearer {admin_token}"}
    drawn = {order[0]: [{"label": "car", "points": [[20, 30], [80, 30], [80, 90], [20, 90]]}], order[1]: []}
    with LiveServer(ws) as srv, httpx.Client(base_url=srv.base, timeout=10) as c:
        ids = {}
        for kind in ("polygons", "boxes"):
            r = c.post("/api/projects", headers=ha, json={"name": f"street {kind}", "dataset_id": ds["id"],
                                                          "schema": {"kind": kind, "classes": ["car", "person"]}})
            assert r.status_code == 201, r.text
            assert r.json()["widget"] == kind
            ids[kind] = r.json()["id"]
            assert c.post(f"/api/projects/{ids[kind]}/members", headers=ha, json={"user_id": ann["id"]}).status_code == 201
        pid = ids["polygons"]
        for _ in order:
            t = c.post(f"/api/projects/{pid}/tasks/next", headers=h).json()["task"]
            url = f"/api/tasks/{t['id']}/answers"
            bad = c.post(url, headers=h, json={"label": [{"label": "car", "points": [[0, 0], [1, 1]]}]})
            assert bad.status_code == 400 and "3 to" in bad.json()["error"]["message"]
            assert c.post(url, headers=h, json={"label": 3}).status_code == 422
            r = c.post(url, headers=h, json={"label": drawn[t["item"]["id"]]})
            assert r.status_code == 201, r.text
        bid = ids["boxes"]
        t = c.post(f"/api/projects/{bid}/tasks/next", headers=h).json()["task"]
        r = c.post(f"/api/tasks/{t['id']}/answers", headers=h, json={"label": [[1.5, 2, 30, 40.25, "person"]]})
        assert r.status_code == 201 and r.json()["answer"]["label"] == [[1.5, 2.0, 30.0, 40.25, "person"]]
        lines = [json.loads(x) for x in c.get(f"/api/projects/{pid}/export", headers=ha).text.splitlines()]
        csv = c.get(f"/api/projects/{pid}/export", params={"format": "csv"}, headers=ha)
        assert csv.status_code == 200
        consensus = c.get(f"/api/projects/{pid}/consensus", headers=ha)
        assert consensus.status_code == 200, consensus.text
        review = c.post(f"/api/projects/{pid}/items/{order[1]}/review", headers=ha,
                        json={"label": [{"label": "person", "points": [[1, 1], [9, 1], [5, 9]]}]})
        assert review.status_code == 200, review.text
    want = {order[0]: [{"label": "car", "points": [[20.0, 30.0], [80.0, 30.0], [80.0, 90.0], [20.0, 90.0]]}],
            order[1]: []}
    assert {x["item_id"]: x["label"] for x in lines} == want
    assert {a["item_id"]: a["label"] for a in ws.list_answers(pid)[0]} == want
