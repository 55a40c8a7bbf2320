"""Pre-labels for boxes, polygons and spans: a Label Studio ML backend's
region results (``rectanglelabels``, ``polygonlabels``, ``labels``) become
the kind's label (the kind converts them), stored as the item's prediction
and shown with its tasks; the answer records whether it took the suggestion
unchanged. A real backend over HTTP, hand-computed pixel coordinates."""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import JSON, text

from assay import kinds
from assay.errors import InvalidInput
from assay.learn import ml_backend as backends
from factories import text_dataset
from test_kinds_shapes import image_dataset

SCHEMA = {"classes": [{"name": "car", "description": ""}, {"name": "person", "description": ""}],
          "instructions": ""}


def _rect(x, y, w, h, labels, ow=200, oh=100, **extra):
    return {"from_name": "label", "to_name": "image", "type": "rectanglelabels", "original_width": ow,
            "original_height": oh, "value": {"x": x, "y": y, "width": w, "height": h, "rectanglelabels": labels,
                                             **extra}}


# ---------------------------------------------------------------- conversion (the kinds own it)


def test_rectangles_percent_to_pixels():
    boxes = kinds.get("boxes")
    # x 10 % of 200 = 20 px, y 20 % of 100 = 20 px; width 25 % = 50 px, height 50 % = 50 px
    label, skipped = boxes.from_ls_results([_rect(10, 20, 25, 50, ["car"]), _rect(50, 0, 10, 10, ["Person"])], SCHEMA)
    assert label == [[20.0, 20.0, 70.0, 70.0, "car"], [100.0, 0.0, 120.0, 10.0, "person"]]  # case-folded class
    assert skipped == []
    # past the edge: kept on the image (90 % + 20 % of 200 px ends at 200, not 220)
    label, _ = boxes.from_ls_results([_rect(90, 0, 20, 10, ["car"])], SCHEMA)
    assert label == [[180.0, 0.0, 200.0, 10.0, "car"]]
    # an unknown class, a rotated box and one without the image size are skipped, said why
    label, skipped = boxes.from_ls_results([
        _rect(0, 0, 10, 10, ["truck"]), _rect(0, 0, 10, 10, ["car"], rotation=30),
        {**_rect(0, 0, 10, 10, ["car"]), "original_width": None}, _rect(1, 1, 1, 1, ["car"], ow=1000, oh=1000)], SCHEMA)
    assert label == [[10.0, 10.0, 20.0, 20.0, "car"]]
    assert skipped[0] == "truck" and "rotated" in skipped[1] and "original_width" in skipped[2]
    assert boxes.from_ls_results([_rect(0, 0, 10, 10, ["truck"])], SCHEMA) == (None, ["truck"])
    with pytest.raises(InvalidInput):  # a zero-width box is no box
        boxes.from_ls_results([_rect(10, 10, 0, 10, ["car"])], SCHEMA)


def test_polygons_and_spans_from_results():
    poly = {"type": "polygonlabels", "original_width": 400, "original_height": 300,
            "value": {"points": [[10, 10], [50, 10], [50, 50]], "polygonlabels": ["car"]}}
    label, skipped = kinds.get("polygons").from_ls_results([poly], SCHEMA)
    assert label == [{"label": "car", "points": [[40.0, 30.0], [200.0, 30.0], [200.0, 150.0]]}] and skipped == []
    spans = kinds.get("spans")
    schema = spans.normalize_schema({"classes": ["PER", "LOC"]})
    res = [{"type": "labels", "value": {"start": 6, "end": 11, "labels": ["LOC"], "text": "Paris"}},
           {"type": "labels", "value": {"start": 0, "end": 3, "labels": ["per"]}},
           {"type": "labels", "value": {"start": "0", "end": 3, "labels": ["PER"]}}]
    label, skipped = spans.from_ls_results(res, schema)
    assert label == [[0, 3, "PER"], [6, 11, "LOC"]]
    assert skipped == ["value.start must be a number (a labels region's character offset, an integer)"]


def test_label_config_carries_regions():
    for kind, tag, obj in (("boxes", "RectangleLabels", "Image"), ("polygons", "PolygonLabels", "Image"),
                           ("spans", "Labels", "Text")):
        p = {"schema": {**SCHEMA, "kind": kind}}
        root = ET.fromstring(backends.label_config(p, "image" if obj == "Image" else "text"))
        control = root.find(tag)
        assert control is not None and root.find("Choices") is None
        assert control.get("name") == "label" and control.get("toName") == root.find(obj).get("name")
        assert [c.get("value") for c in control.findall("Label")] == ["car", "person"]


# ---------------------------------------------------------------- a real backend over HTTP


class RegionBackend:
    """A tiny LS ML backend answering fixed region results per task (by data)."""

    def __init__(self, answer) -> None:
        self.answer, self.setups, self.webhooks = answer, [], []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, body):
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send({"status": "UP"})

            def do_POST(self):
                data = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
                if self.path == "/setup":
                    backend.setups.append(data)
                    return self._send({"model_version": "regions-1"})
                if self.path == "/webhook":
                    backend.webhooks.append(data)
                    return self._send({"status": "ok"})
                cfg = ET.fromstring(data["label_config"])
                self._send({"results": [backend.answer(t, cfg) for t in data["tasks"]]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://%s:%d" % self.server.server_address
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _prediction(ws, p, item):
    with ws.db.read() as conn:
        return conn.execute(text("SELECT label, confidence, proba FROM predictions WHERE project_id = :p "
                                 "AND item_id = :i").columns(label=JSON, proba=JSON), {"p": p, "i": item}).first()


def _task_for(ws, p, user, item):
    """Tasks until the one of ``item`` (the others given back by skipping)."""
    for _ in range(10):
        t = ws.next_task(p, user)
        if t["item"]["id"] == item:
            return t
        ws.skip(t["id"], user)
    raise AssertionError("the item was never handed out")


def test_boxes_backend_predicts_and_answer_records_acceptance(ws, tmp_path):
    ds, order = image_dataset(ws, tmp_path, n=2, size=(160, 120))
    p = ws.create_project("boxes pre", ds["id"], ["car", "person"], kind="boxes", overlap=2)

    def answer(task, cfg):
        assert cfg.find("RectangleLabels") is not None
        if task["id"] != order[0]:
            return {"result": [], "score": 0.2}
        # 12.5 % of 160 = 20, 25 % of 120 = 30; width 37.5 % = 60 px, height 50 % = 60 px
        return {"result": [_rect(12.5, 25, 37.5, 50, ["car"], ow=160, oh=120)], "score": 0.8}

    b = RegionBackend(answer)
    ws.connect_backend(p["id"], b.url)
    assert b.setups and "RectangleLabels" in b.setups[0]["schema"]
    got = ws.backend_predict(p["id"])
    assert got["stored"] == 1 and got["no_prediction"] == 1
    row = _prediction(ws, p["id"], order[0])
    assert row.label == [[20.0, 30.0, 80.0, 90.0, "car"]] and row.confidence == 0.8 and row.proba == []
    ann, _ = ws.add_user("ann")
    ws.add_member(p["id"], ann["id"])
    t = _task_for(ws, p["id"], ann, order[0])
    assert t["suggestion"]["label"] == [[20.0, 30.0, 80.0, 90.0, "car"]]
    moved = ws.submit(t["id"], ann, [[21, 30, 80, 90, "car"]], suggestion=t["suggestion"]["label"])
    assert moved["suggestion_accepted"] is True  # the same box to the kind (IoU >= 0.5)
    ann2, _ = ws.add_user("ann2")
    ws.add_member(p["id"], ann2["id"])
    t = _task_for(ws, p["id"], ann2, order[0])
    other = ws.submit(t["id"], ann2, [[100, 10, 150, 60, "car"]], suggestion=t["suggestion"]["label"])
    assert other["suggestion_accepted"] is False
    try:  # both answers went to the backend's /webhook as regions in percent of the 160 x 120 image
        assert ws.wait_backend_notifications(10)
        results = [w["annotation"]["result"] for w in b.webhooks]
    finally:
        b.close()
    assert len(results) == 2
    first = results[0][0]
    assert first["type"] == "rectanglelabels" and (first["original_width"], first["original_height"]) == (160, 120)
    assert first["value"]["rectanglelabels"] == ["car"]
    # [21, 30, 80, 90]: x 21/160 = 13.125 %, y 30/120 = 25 %, width 59/160 = 36.875 %, height 60/120 = 50 %
    assert [first["value"][k] for k in ("x", "y", "width", "height")] == [13.125, 25.0, 36.875, 50.0]


def test_spans_backend_predicts_checked_against_the_text(ws):
    ds = text_dataset(ws, "ner", ["Ada in Paris", "Bob"])
    p = ws.create_project("ner pre", ds["id"], ["PER", "LOC"], kind="spans")

    def answer(task, cfg):
        assert cfg.find("Labels") is not None and cfg.find("Text") is not None
        t = task["data"]["text"]
        if t == "Bob":  # past the end of the text: the kind refuses it, nothing stored
            return {"result": [{"type": "labels", "from_name": "label", "value": {"start": 0, "end": 9,
                                                                                  "labels": ["PER"]}}]}
        return {"result": [{"type": "labels", "from_name": "label", "score": 0.7,
                            "value": {"start": 0, "end": 3, "labels": ["PER"]}},
                           {"type": "labels", "from_name": "label", "value": {"start": 7, "end": 12,
                                                                             "labels": ["LOC"]}}]}

    b = RegionBackend(answer)
    try:
        ws.connect_backend(p["id"], b.url)
        got = ws.backend_predict(p["id"])
    finally:
        b.close()
    assert got["stored"] == 1 and got["skipped_unknown"] == 1
    with ws.db.read() as conn:
        ids = dict(conn.execute(text("SELECT text, id FROM items WHERE dataset_id = :d"), {"d": ds["id"]}).all())
    row = _prediction(ws, p["id"], ids["Ada in Paris"])
    assert row.label == [[0, 3, "PER"], [7, 12, "LOC"]] and row.confidence == 0.7  # best region's score
    assert _prediction(ws, p["id"], ids["Bob"]) is None


def test_gold_task_shows_its_pre_label_like_real_work(ws, tmp_path, seeded_gold):
    seeded_gold(3)
    ds, order = image_dataset(ws, tmp_path, n=8, size=(160, 120))
    p = ws.create_project("gold pre", ds["id"], ["car", "person"], kind="boxes", overlap=1, gold_rate=0.5)
    ws.import_gold(p["id"], [{"item_id": i, "label": [[0, 0, 50, 50, "person"]]} for i in order[:4]])
    backends.register_model("same_box", lambda items: [{"label": [[20, 30, 80, 90, "car"]], "score": 0.6}
                                                       for _ in items])
    try:
        ws.connect_backend(p["id"], "python:same_box")
        assert ws.backend_predict(p["id"])["stored"] == 8
    finally:
        backends.unregister_model("same_box")
    ann, _ = ws.add_user("ann")
    ws.add_member(p["id"], ann["id"])
    seen = {}
    while (t := ws.next_task(p["id"], ann)) is not None:
        seen[t["item"]["id"]] = t
        ws.submit(t["id"], ann, [[20, 30, 80, 90, "car"]], suggestion=t["suggestion"]["label"])
    assert set(order[4:]) <= set(seen) and set(order[:4]) & set(seen)  # gold handed out among the real ones
    shapes = {(tuple(sorted(t)), tuple(sorted(t["suggestion"])), t["suggestion"]["label"] == [[20, 30, 80, 90, "car"]])
              for t in seen.values()}
    assert shapes == {(tuple(sorted(seen[order[5]])), ("confidence", "label", "model_version"), True)}


def test_over_http_a_gold_task_and_real_work_carry_the_same_pre_label(ws, tmp_path, seeded_gold):
    """The hostile annotator's view: every task ``tasks/next`` gives, gold or
    real, carries the model's boxes in the same shape; none shows the gold
    label, and answering the pre-label is taken the same way."""
    seeded_gold(5)
    ds, order = image_dataset(ws, tmp_path, n=24, size=(320, 120))  # distinct images
    p = ws.create_project("gold pre http", ds["id"], ["car", "person"], kind="boxes", overlap=1, gold_rate=0.5)
    known = [[0, 0, 50, 50, "person"]]
    ws.import_gold(p["id"], [{"item_id": i, "label": known} for i in order[:5]])
    model = [[20, 30, 80, 90, "car"]]
    backends.register_model("same_box_http", lambda items: [{"label": model, "score": 0.6} for _ in items])
    try:
        ws.connect_backend(p["id"], "python:same_box_http")
        assert ws.backend_predict(p["id"])["stored"] == 24
        _hand_out_over_http(ws, p, order, model)
    finally:
        backends.unregister_model("same_box_http")


def _hand_out_over_http(ws, p, order, model):
    import httpx

    from _server import LiveServer

    ann, tok = ws.add_user("ann")
    ws.add_member(p["id"], ann["id"])
    h = {"Authorization": f"Bearer {tok}"}
    seen = {}
    with LiveServer(ws) as srv, httpx.Client(base_url=srv.base, timeout=30) as c:
        while (t := c.post(f"/api/projects/{p['id']}/tasks/next", headers=h).json()["task"]) is not None:
            seen[t["item"]["id"]] = t
            r = c.post(f"/api/tasks/{t['id']}/answers", json={"label": t["suggestion"]["label"]}, headers=h)
            assert r.status_code == 201 and set(r.json()) == {"answer"}, r.text
    gold_seen = set(order[:5]) & set(seen)
    assert set(order[5:]) <= set(seen) and gold_seen  # gold was handed out among the real tasks
    version = seen[order[5]]["suggestion"]["model_version"]
    assert all(t["suggestion"] == {"label": model, "confidence": 0.6, "model_version": version} for t in seen.values())
    assert len({tuple(sorted(t)) for t in seen.values()}) == 1
    assert "person" not in json.dumps([seen[i] for i in gold_seen])  # the gold label shows nowhere
