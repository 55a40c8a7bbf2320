"""Label Studio's JSON export (assay.formats.labelstudio) for every kind:
export -> import as gold of a new project -> the same labels and the same
export; the file's shape (data, annotations[].result with choices, labels,
rectanglelabels in percent with original_width/height, polygonlabels);
HTTP and CLI; bad tasks store nothing and are named. Both databases."""

from __future__ import annotations

import json

import httpx
import pytest

from _server import LiveServer
from assay.errors import InvalidInput
from factories import answer_item, run_cli, snapshot, text_dataset
from test_formats_shapes import BOXES, CLASSES, POLYS, finals, labeled
from test_formats_spans import CLASSES as NER, DOCS, _spacy_file

TEXTS = ["good film", "bad film", "so so", "unlabeled"]


def gold(ws, p) -> dict:
    return {g["item_id"]: g["label"] for g in ws.list_gold(p["id"])[0]}


def round_trip(ws, tmp_path, p, kind, classes) -> list:
    ws.export(p["id"], tmp_path / f"{kind}.json", "labelstudio")
    tasks = json.loads((tmp_path / f"{kind}.json").read_text())
    q = ws.create_project(f"{kind} again", p["dataset_id"], classes, kind=kind)
    ws.import_gold_file(q["id"], tmp_path / f"{kind}.json")
    assert gold(ws, q) == finals(ws, p) and gold(ws, q)
    ws.export(q["id"], tmp_path / f"{kind}-back.json", "labelstudio")
    back = json.loads((tmp_path / f"{kind}-back.json").read_text())
    strip = [[{k: v for k, v in a.items() if k not in ("meta", "ground_truth")} for a in t["annotations"]]
             for t in tasks]
    assert strip == [[{k: v for k, v in a.items() if k not in ("meta", "ground_truth")} for a in t["annotations"]]
                     for t in back]
    return tasks


@pytest.mark.parametrize("kind,labels", [("single", ["pos", "neg", "pos", None]),
                                         ("multi", [["pos"], [], ["pos", "neg"], None])])
def test_choices_round_trip(ws, tmp_path, kind, labels):
    ds = text_dataset(ws, "reviews", TEXTS)
    p = ws.create_project(kind, ds["id"], ["pos", "neg"], kind=kind)
    user = ws.add_user("ann")[0]
    ws.add_member(p["id"], user["id"])
    items = [r["item_id"] for r in ws.export_records(p["id"])]
    for item, label in zip(items, labels):
        if label is not None:
            answer_item(ws, p["id"], item, user, label)
    tasks = round_trip(ws, tmp_path, p, kind, ["pos", "neg"])
    assert [t["data"]["text"] for t in tasks] == TEXTS and tasks[3]["annotations"] == []
    res = tasks[0]["annotations"][0]["result"]
    assert res == [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["pos"]}}]


def test_spans_round_trip_by_text(ws, tmp_path):
    f = _spacy_file(tmp_path, DOCS)
    ds = ws.create_dataset("news")
    ws.import_file(ds["id"], f, text_column="text")
    p = ws.create_project("spans", ds["id"], NER, kind="spans")
    ws.import_gold_file(p["id"], f)
    tasks = round_trip(ws, tmp_path, p, "spans", NER)
    first = tasks[0]["annotations"][0]
    assert first["ground_truth"] is True
    assert first["result"][0]["value"] == {"start": 0, "end": 12, "text": "Ada Lovelace", "labels": ["PER"]}
    # a file from Label Studio itself names items by their text, not assay_item_id
    for t in tasks:
        del t["data"]["assay_item_id"]
    (tmp_path / "ls.json").write_text(json.dumps(tasks))
    q = ws.create_project("by text", ds["id"], NER, kind="spans")
    ws.import_labelstudio(q["id"], tmp_path / "ls.json")
    assert gold(ws, q) == finals(ws, p)


@pytest.mark.parametrize("kind,answers", [("boxes", BOXES), ("polygons", POLYS)])
def test_shapes_round_trip(ws, tmp_path, kind, answers):
    p, order = labeled(ws, tmp_path, kind, answers, kind)
    tasks = round_trip(ws, tmp_path, p, kind, CLASSES)
    r = tasks[0]["annotations"][0]["result"][0]
    assert (r["original_width"], r["original_height"], r["to_name"]) == (160, 120, "image")
    assert tasks[0]["data"]["image"] == "img0.png"
    if kind == "boxes":
        assert r["type"] == "rectanglelabels"
        assert r["value"] == {"x": 12.8125, "y": 25.0, "width": 37.1875, "height": 50.0, "rotation": 0,
                              "rectanglelabels": ["car"]}
    else:
        assert r["type"] == "polygonlabels" and r["value"]["points"][1] == [50.0, 25.0]
    # by the image's file name when the task does not carry assay_item_id
    for t in tasks:
        del t["data"]["assay_item_id"]
    (tmp_path / "ls.json").write_text(json.dumps(tasks))
    q = ws.create_project("by file", p["dataset_id"], CLASSES, kind=kind)
    ws.import_labelstudio(q["id"], tmp_path / "ls.json")
    assert gold(ws, q) == finals(ws, p)


def test_bad_tasks_store_nothing(ws, tmp_path):
    ds = text_dataset(ws, "reviews", TEXTS)
    p = ws.create_project("single", ds["id"], ["pos", "neg"])
    sp = ws.create_project("spans", ds["id"], NER, kind="spans")
    ok = {"id": 1, "data": {"text": "good film"}, "annotations": [{"result": [
        {"type": "choices", "value": {"choices": ["pos"]}}]}]}
    before = snapshot(ws)
    bad = [({"tasks": []}, p, "a JSON list of tasks"),
           ([ok, {"id": 9, "annotations": []}], p, "task 9: a task needs a 'data' object"),
           ([ok, {"id": 9, "data": {"text": "nope"}, "annotations": [{"result": [
               {"type": "choices", "value": {"choices": ["pos"]}}]}]}], p, "task 9: no item of the project's dataset"),
           ([ok, {"id": 9, "data": {"text": "bad film"}, "annotations": [{"result": [
               {"type": "choices", "value": {"choices": ["pos", "neg"]}}]}]}], p, "task 9: a single-label .* one choice"),
           ([{"id": 9, "data": {"text": "bad film"}, "annotations": [{"result": [
               {"type": "choices", "value": {"choices": ["ugly"]}}]}]}], p, "ugly"),
           ([{"id": 4, "data": {"text": "so so"}, "annotations": [{"result": [
               {"type": "labels", "value": {"start": "0", "end": 2, "labels": ["PER"]}}]}]}], sp,
            "task 4, result 0: value.start must be a number"),
           ([{"id": 4, "data": {"text": "so so"}, "annotations": [{"result": [
               {"type": "choices", "value": {"choices": ["PER"]}}]}]}], sp, "spans projects take 'labels' results")]
    for n, (body, proj, msg) in enumerate(bad):
        (tmp_path / f"bad{n}.json").write_text(json.dumps(body))
        with pytest.raises(InvalidInput, match=msg):
            ws.import_labelstudio(proj["id"], tmp_path / f"bad{n}.json")
    assert snapshot(ws) == before


def test_labelstudio_over_http_and_cli(ws, home, tmp_path):
    ds = text_dataset(ws, "reviews", TEXTS)
    p = ws.create_project("sent", ds["id"], ["pos", "neg"])
    items = [r["item_id"] for r in ws.export_records(p["id"])]
    ws.import_gold(p["id"], [{"item_id": items[0], "label": "neg"}])
    _, tok = ws.add_user("root", role="admin")
    with LiveServer(ws) as srv, httpx.Client(base_url=srv.base, timeout=30) as c:
        r = c.get(f"/api/projects/{p['id']}/export", headers={"Authorization": f"Bearer {tok}"},
                  params={"format": "labelstudio"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        assert "sent-labels.json" in r.headers["content-disposition"]
        tasks = r.json()
    assert [t["annotations"][0]["result"][0]["value"]["choices"] for t in tasks if t["annotations"]] == [["neg"]]
    out = run_cli("export", "sent", str(tmp_path / "ls.json"), "--format", "labelstudio")
    assert "wrote 4 items" in out.output and json.loads((tmp_path / "ls.json").read_text()) == tasks
    ws.create_project("sent2", ds["id"], ["pos", "neg"])
    r = run_cli("project", "gold", "sent2", str(tmp_path / "ls.json"))
    assert "1 added" in r.output, r.output


def test_gold_file_upload_over_http(ws, tmp_path):
    """``POST /api/projects/{id}/gold/file``: a Label Studio export, a CoNLL
    file; a bad one is a 400 naming the task and stores nothing; annotators get 403."""
    f = _spacy_file(tmp_path, DOCS)
    ds = ws.create_dataset("news")
    ws.import_file(ds["id"], f, text_column="text")
    p = ws.create_project("ner", ds["id"], NER, kind="spans")
    ws.import_gold_file(p["id"], f)
    ws.export(p["id"], tmp_path / "ls.json", "labelstudio")
    ws.export(p["id"], tmp_path / "ner.conll")
    q = ws.create_project("ner2", ds["id"], NER, kind="spans")
    _, tok = ws.add_user("root", role="admin")
    ann, atok = ws.add_user("ann")
    ws.add_member(q["id"], ann["id"])
    url = f"/api/projects/{q['id']}/gold/file"
    with LiveServer(ws) as srv, httpx.Client(base_url=srv.base, timeout=30) as c:
        h = {"Authorization": f"Bearer {tok}"}
        bad = json.loads((tmp_path / "ls.json").read_text())
        bad[1]["annotations"][0]["result"] = [{"type": "labels", "value": {"start": 0, "labels": ["PER"]}}]
        r = c.post(url, headers=h, files={"file": ("bad.json", json.dumps(bad).encode())})
        assert r.status_code == 400 and "task" in r.json()["error"]["message"] and "value.end" in r.json()["error"]["message"]
        assert ws.list_gold(q["id"])[0] == []
        r = c.post(url, headers={"Authorization": f"Bearer {atok}"},
                   files={"file": ("ls.json", (tmp_path / "ls.json").read_bytes())})
        assert r.status_code == 403
        r = c.post(url, headers=h, files={"file": ("../ls.json", b"[]")})
        assert r.status_code == 400
        r = c.post(url, headers=h, files={"file": ("ls.json", (tmp_path / "ls.json").read_bytes())})
        assert r.status_code == 201 and r.json()["added"] == len(DOCS)
        assert gold(ws, q) == finals(ws, p)
        ws.remove_gold(q["id"], next(iter(gold(ws, q))))
        r = c.post(url, headers=h, files={"file": ("ner.conll", (tmp_path / "ner.conll").read_bytes())})
        assert r.status_code == 201 and r.json()["added"] == 1, r.text
        assert gold(ws, q) == finals(ws, p)


@pytest.mark.parametrize("kind,answers", [("boxes", BOXES), ("polygons", POLYS)])
def test_bad_regions_are_named_and_store_nothing(ws, tmp_path, kind, answers):
    """The kind reads an export strictly: a region the ML-backend path would
    skip (unknown class, no image size, rotated, bad coordinates) is refused,
    named by task and result."""
    p, _ = labeled(ws, tmp_path, kind, answers, kind)
    ws.export(p["id"], tmp_path / "ls.json", "labelstudio")
    tasks = json.loads((tmp_path / "ls.json").read_text())
    q = ws.create_project("again", p["dataset_id"], CLASSES, kind=kind)
    key = "rectanglelabels" if kind == "boxes" else "polygonlabels"
    coord = "x" if kind == "boxes" else "points"
    before = snapshot(ws)
    for n, (change, msg) in enumerate([
            (lambda r: r["value"].update({key: ["truck"]}), r"result 0: unknown class\(es\) \['truck'\]"),
            (lambda r: r.pop("original_width"), "result 0: original_width and original_height"),
            (lambda r: r["value"].update(rotation=30), "result 0: a rotated"),
            (lambda r: r["value"].update({coord: "12"}), f"result 0: value.{coord} must be")]):
        bad = json.loads(json.dumps(tasks))
        change(bad[0]["annotations"][0]["result"][0])
        (tmp_path / f"bad{n}.json").write_text(json.dumps(bad))
        with pytest.raises(InvalidInput, match=f"task {bad[0]['id']}, {msg}"):
            ws.import_labelstudio(q["id"], tmp_path / f"bad{n}.json")
    assert snapshot(ws) == before
