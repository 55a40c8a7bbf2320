"""Bring your own model: a Label Studio style ML backend (written here, run
in a thread on a free port) and the python: hook, on SQLite and PostgreSQL.

The test backend follows label-studio-ml-backend's API as a backend built on
it sees requests: ``/predict`` reads ``tasks``, ``label_config`` and
``project`` ("<id>.<timestamp>"), ``/webhook`` pops ``action`` and reads
``project.id`` and ``project.label_config``.
"""

from __future__ import annotations

import base64
import io
import json
import socket
import threading
import xml.etree.ElementTree as ET
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import JSON, text

from assay import kinds
from assay.learn import ml_backend as backends
from assay.learn.ml_backend import BackendProtocolError, BackendUnreachable
from assay.errors import InvalidInput, Unsupported
from assay.server import create_app
from factories import count, item_ids, snapshot, text_dataset

RULES = {"great": "pos", "awful": "neg", "weird": "mystery"}  # "mystery" is no class of the project
TEXTS = ["a great phone", "awful battery", "a weird one", "nothing to say", "GREAT value", "great but awful"]


# ---------------------------------------------------------------- the test backend


class KeywordBackend:
    """A tiny LS ML backend: keyword rules over ``data.text``."""

    def __init__(self, *, auth: tuple[str, str] | None = None) -> None:
        self.mode = "ok"          # ok | bare | per_task_list | old | malformed(_later) | not_json | http500 | short
        self.webhook_mode = "ok"  # ok | http500
        self.version = "kw-1"
        self.auth = auth
        self.calls: dict[str, list] = {"health": [], "setup": [], "predict": [], "webhook": []}
        self.headers: list[dict] = []
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _send(self, status: int, body, raw: bytes | None = None):
                data = raw if raw is not None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                backend.headers.append(dict(self.headers))
                if backend.auth is None:
                    return True
                want = "Basic " + base64.b64encode(":".join(backend.auth).encode()).decode()
                if self.headers.get("Authorization") != want:
                    self._send(401, None, b"Unauthorized")
                    return False
                return True

            def do_GET(self):
                if not self._authorized():
                    return
                if self.path in ("/health", "/"):
                    backend.calls["health"].append(None)
                    return self._send(200, {"status": "UP", "model_class": "KeywordModel"})
                self._send(404, {"error": "no such path"})

            def do_POST(self):
                if not self._authorized():
                    return
                data = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
                if self.path == "/setup":
                    backend.calls["setup"].append(data)
                    data["project"].split(".", 1)  # as the SDK does
                    return self._send(200, {"model_version": backend.version})
                if self.path == "/predict":
                    backend.calls["predict"].append(data)
                    return backend.predict(self, data)
                if self.path == "/webhook":
                    backend.calls["webhook"].append(json.loads(json.dumps(data)))  # a copy: the SDK pops
                    if backend.webhook_mode == "http500":
                        return self._send(500, {"status": "ERROR", "error": "training exploded"})
                    event = data.pop("action")
                    _ = (str(data["project"]["id"]), data["project"]["label_config"])  # as the SDK does
                    return self._send(201, {"result": {"event": event}, "status": "ok"})
                self._send(404, {"error": "no such path"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        host, port = self.server.server_address
        self.url = f"http://{host}:{port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def predict(self, h, data):
        if self.mode == "http500":
            return h._send(500, {"status": "ERROR", "error": "model crashed"})
        if self.mode == "not_json":
            return h._send(200, None, b"<html>oops</html>")
        if self.mode == "malformed" or (self.mode == "malformed_later" and len(self.calls["predict"]) > 1):
            return h._send(200, {"predictions_please": True})
        cfg = ET.fromstring(data["label_config"])
        choices_tag = cfg.find("Choices")
        from_name, to_name = choices_tag.get("name"), choices_tag.get("toName")
        out = []
        for task in data["tasks"]:
            words = task["data"].get("text", "").lower().split()
            hits = [RULES[w] for w in words if w in RULES]
            result = [{"from_name": from_name, "to_name": to_name, "type": "choices",
                       "value": {"choices": hits[:1] if choices_tag.get("choice") == "single" else hits}}] if hits else []
            pred = {"result": result, "score": 0.9 if len(hits) == 1 else 0.6, "model_version": self.version}
            if self.mode == "old":
                pred.pop("model_version")
            out.append([pred, {**pred, "score": 0.1}] if self.mode == "per_task_list" else pred)
        if self.mode == "short":
            out = out[:-1]
        if self.mode == "bare":
            return h._send(200, out)
        if self.mode == "old":
            return h._send(200, {"results": out, "model_version": "old-7"})
        return h._send(200, {"results": out})

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backend():
    b = KeywordBackend()
    yield b
    b.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def predictions(ws, project_id: int) -> dict[int, tuple]:
    with ws.db.read() as conn:
        rows = conn.execute(text(
            "SELECT item_id, model_version, label, confidence, proba FROM predictions WHERE project_id = :p"
        ).columns(label=JSON, proba=JSON), {"p": project_id}).all()
    return {r.item_id: (r.label, r.confidence, r.model_version, r.proba) for r in rows}


def by_text(ws, ds) -> dict[str, int]:
    with ws.db.read() as conn:
        return {r.text: r.id for r in conn.execute(text("SELECT id, text FROM items WHERE dataset_id = :d"),
                                                     {"d": ds["id"]})}


@pytest.fixture
def proj(ws):
    ds = text_dataset(ws, "reviews", TEXTS)
    p = ws.create_project("sentiment", ds["id"], [{"name": "pos", "description": "likes it"}, "neg"])
    return ds, p


# ---------------------------------------------------------------- label config


def _parse(xml: str):
    root = ET.fromstring(xml)
    assert root.tag == "View"
    return root


def test_label_config_lists_classes_and_parses():
    p = {"id": 1, "name": "x", "created_at": 1764170000.5,
         "schema": {"kind": "single", "instructions": "Judge <the> \"writer\" & co",
                    "classes": [{"name": "pos", "description": "likes it"}, {"name": 'a<b & "c"', "description": ""}]}}
    root = _parse(backends.label_config(p))
    t = root.find("Text")
    assert (t.get("name"), t.get("value")) == ("text", "$text")
    ch = root.find("Choices")
    assert (ch.get("name"), ch.get("toName"), ch.get("choice")) == ("label", "text", "single")
    assert [c.get("value") for c in ch.findall("Choice")] == ["pos", 'a<b & "c"']
    assert ch.find("Choice").get("hint") == "likes it"
    assert root.find("Header").get("value") == 'Judge <the> "writer" & co'

    multi = {**p, "schema": {**p["schema"], "kind": "multi"}}
    root = _parse(backends.label_config(multi, "image"))
    assert root.find("Text") is None
    img = root.find("Image")
    assert (img.get("name"), img.get("value")) == ("image", "$image")
    ch = root.find("Choices")
    assert (ch.get("toName"), ch.get("choice")) == ("image", "multiple")
    assert backends.project_uid(p) == "1.1764170000"


def test_parse_and_map_helpers():
    names = ["pos", "neg", "Neutral"]
    assert backends.map_choices(["pos"], names, "single") == ("pos", [])
    assert backends.map_choices(["neutral"], names, "single") == ("Neutral", [])
    assert backends.map_choices(["mystery", "neg"], names, "single") == ("neg", ["mystery"])
    assert backends.map_choices(["mystery"], names, "single") == (None, ["mystery"])
    assert backends.map_choices(["neg", "pos", "pos"], names, "multi") == (["pos", "neg"], [])
    one = {"result": [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["pos"]}}],
           "score": 0.8}
    assert backends.parse_predict_response([one], 1)[0] == [[one]]
    assert backends.parse_predict_response({"results": [one], "model_version": 3}, 1)[1] == "3"
    assert backends.parse_predict_response({"results": [[one, one]]}, 1)[0] == [[one, one]]
    assert backends.prediction_choices(one) == (["pos"], 0.8)
    for bad in ({"nope": 1}, "text", {"results": "x"}, {"results": [5]}, {"results": [{"result": "x"}]}):
        with pytest.raises(BackendProtocolError):
            backends.parse_predict_response(bad, 1)
    with pytest.raises(BackendProtocolError, match="2 result"):
        backends.parse_predict_response([one, one], 3)
    assert kinds.get("single").proba("pos", 0.8, ["pos", "neg", "x"]) == [0.8, 0.1, 0.1]
    assert kinds.get("multi").proba(["pos"], 0.8, ["pos", "neg"]) == [0.8, 0.2]
    for bad in ("ftp://x", "python:", "python:a b", "http://", 7, "http://h/?q=1"):
        with pytest.raises(InvalidInput):
            backends.check_url(bad)
    assert backends.check_url(" http://h:9090/ ") == "http://h:9090"
    assert backends.check_url("") is None
    assert backends.redact("http://u:secret@h:1/x") == "http://u:***@h:1/x"


# ---------------------------------------------------------------- round trip


def test_round_trip_set_health_setup_predict(ws, backend, proj):
    ds, p = proj
    r = ws.connect_backend(p["id"], backend.url + "/", base_url="http://assay.example")
    assert r["url"] == backend.url and r["model_version"] == "kw-1"
    assert r["health"]["status"] == "UP" and r["health"]["model_class"] == "KeywordModel"
    assert ws.get_project(p["id"])["ml_backend_url"] == backend.url
    # /setup got what Label Studio sends
    setup = backend.calls["setup"][-1]
    assert setup["project"] == f"{p['id']}.{int(p['created_at'])}"
    assert setup["hostname"] == "http://assay.example"
    assert {"schema", "access_token", "extra_params", "model_version"} <= set(setup)
    assert [c.get("value") for c in ET.fromstring(setup["schema"]).iter("Choice")] == ["pos", "neg"]

    assert ws.backend_health(p["id"])["health"]["status"] == "UP"
    assert ws.backend_setup(p["id"])["model_version"] == "kw-1"

    out = ws.backend_predict(p["id"], batch=4)
    assert len(backend.calls["predict"]) == 2  # 6 items, 4 per call
    sent = backend.calls["predict"][0]
    assert set(sent) >= {"tasks", "label_config", "project", "params", "model_version"}
    assert set(sent["params"]) == {"login", "password", "context"}
    assert sent["project"] == setup["project"]
    ids = by_text(ws, ds)
    assert sent["tasks"][0] == {"id": ids[TEXTS[0]], "data": {"text": TEXTS[0]}}
    assert out["tasks"] == 6 and out["stored"] == 4
    assert out["no_prediction"] == 1  # "nothing to say"
    assert out["skipped_unknown"] == 1 and out["unknown_choices"] == 1  # "weird" -> mystery
    rows = predictions(ws, p["id"])
    assert set(rows) == {ids["a great phone"], ids["awful battery"], ids["GREAT value"], ids["great but awful"]}
    assert rows[ids["a great phone"]][0] == "pos" and rows[ids["awful battery"]][0] == "neg"
    assert rows[ids["great but awful"]][:2] == ("pos", pytest.approx(0.6))
    assert rows[ids["a great phone"]][3] == [0.9, pytest.approx(0.1)]
    version = out["model_versions"]["kw-1"]
    assert {r[2] for r in rows.values()} == {version}
    with ws.db.read() as conn:
        m = conn.execute(text("SELECT metrics FROM ml_models WHERE project_id = :p AND version = :v")
                         .columns(metrics=JSON), {"p": p["id"], "v": version}).scalar_one()
    assert m["source"] == "backend" and m["backend_version"] == "kw-1" and m["url"] == backend.url

    # same backend version -> same integer; a new one -> the next integer
    again = ws.backend_predict(p["id"], item_ids=[ids["awful battery"]])
    assert again["model_versions"] == {"kw-1": version} and again["stored"] == 1
    backend.version = "kw-2"
    newer = ws.backend_predict(p["id"])
    assert newer["model_versions"] == {"kw-2": version + 1}
    assert {r[2] for r in predictions(ws, p["id"]).values()} == {version + 1}
    assert count(ws, "predictions", "project_id = :p", p=p["id"]) == 4

    with pytest.raises(InvalidInput, match="not in project"):
        ws.backend_predict(p["id"], item_ids=[10 ** 9])


@pytest.mark.parametrize("mode", ["bare", "per_task_list", "old"])
def test_older_and_newer_response_shapes(ws, backend, proj, mode):
    ds, p = proj
    ws.connect_backend(p["id"], backend.url)
    backend.mode = mode
    out = ws.backend_predict(p["id"])
    assert out["stored"] == 4
    ids = by_text(ws, ds)
    label, conf, _, _ = predictions(ws, p["id"])[ids["a great phone"]]
    assert label == "pos" and conf == pytest.approx(0.9)  # the best of several predictions per task
    assert list(out["model_versions"]) == (["old-7"] if mode == "old" else ["kw-1"])


def test_multi_label_project(ws, backend):
    ds = text_dataset(ws, "multi", ["great but awful", "weird"])
    p = ws.create_project("tags", ds["id"], ["pos", "neg"], kind="multi")
    ws.connect_backend(p["id"], backend.url)
    assert ET.fromstring(backend.calls["setup"][-1]["schema"]).find("Choices").get("choice") == "multiple"
    out = ws.backend_predict(p["id"])
    assert out["stored"] == 1 and out["skipped_unknown"] == 1
    (label, conf, _, proba), = predictions(ws, p["id"]).values()
    assert label == ["pos", "neg"] and proba == [pytest.approx(0.6), pytest.approx(0.6)]


# ---------------------------------------------------------------- failures store nothing


@pytest.mark.parametrize("mode,error,words", [
    ("malformed", BackendProtocolError, "without 'results'"),
    ("malformed_later", BackendProtocolError, "without 'results'"),  # the first batch was fine
    ("not_json", BackendProtocolError, "not JSON"),
    ("short", BackendProtocolError, "one entry per task"),
    ("http500", BackendUnreachable, r"HTTP 500 \(its answer is in the server log\)"),
])
def test_bad_predict_answers_store_nothing(ws, backend, proj, mode, error, words, caplog):
    ds, p = proj
    ws.connect_backend(p["id"], backend.url)
    before = snapshot(ws)
    backend.mode = mode
    with pytest.raises(error, match=words) as e:
        ws.backend_predict(p["id"], batch=2)
    assert isinstance(e.value, (InvalidInput, Unsupported))
    assert snapshot(ws) == before
    # What the backend said goes to the server log, never into the error.
    for said in ("model crashed", "oops", "predictions_please"):
        assert said not in e.value.message
    if mode in ("http500", "not_json"):
        assert ("model crashed" if mode == "http500" else "oops") in caplog.text


def test_unreachable_backend(ws, proj):
    ds, p = proj
    dead = f"http://127.0.0.1:{free_port()}"
    before = snapshot(ws)
    with pytest.raises(BackendUnreachable, match="unreachable"):
        ws.connect_backend(p["id"], dead)
    assert ws.get_project(p["id"])["ml_backend_url"] is None
    with pytest.raises(InvalidInput, match="no ML backend"):
        ws.backend_predict(p["id"])
    ws.update_project(p["id"], ml_backend_url=dead)  # stored without a check
    with pytest.raises(BackendUnreachable, match="unreachable"):
        ws.backend_health(p["id"])
    with pytest.raises(BackendUnreachable, match="unreachable"):
        ws.backend_predict(p["id"])
    assert count(ws, "predictions") == 0 and count(ws, "ml_models") == 0
    after = snapshot(ws)
    after.pop("audit", None), before.pop("audit", None)  # update_project above is audited
    assert after == before


def test_basic_auth_and_redacted_url(ws, proj):
    ds, p = proj
    b = KeywordBackend(auth=("ml", "s3cret"))
    try:
        with pytest.raises(BackendUnreachable, match="HTTP 401"):
            ws.connect_backend(p["id"], b.url)
        url = b.url.replace("http://", "http://ml:s3cret@")
        r = ws.connect_backend(p["id"], url)
        assert "s3cret" not in json.dumps(r) and r["url"] == b.url.replace("http://", "http://ml:***@")
        assert ws.get_project(p["id"])["ml_backend_url"] == r["url"]
        ws.update_project(p["id"], gold_rate=0.1)  # other settings keep the real URL
        assert ws.backend_predict(p["id"])["stored"] == 4
    finally:
        b.close()


# ---------------------------------------------------------------- the HTTP API and webhooks


def _user(ws, name, role):
    u, tok = ws.add_user(name, role)
    return {**u, "h": {"Authorization": f"Bearer {tok}"}}


def test_http_api_and_webhook_on_answers(ws, backend, proj):
    ds, p = proj
    quiet = ws.create_project("quiet", ds["id"], ["pos", "neg"])  # no backend
    admin, ann, rev = _user(ws, "root", "admin"), _user(ws, "ann", "annotator"), _user(ws, "rev", "reviewer")
    for q in (p, quiet):
        ws.add_member(q["id"], ann["id"])
    ws.add_member(p["id"], rev["id"])
    base = f"/api/projects/{p['id']}/ml-backend"
    with TestClient(create_app(ws, reclaim_interval=0)) as c:
        # only admins connect; a dead backend is refused and not stored
        assert c.put(base, json={"url": backend.url}, headers=ann["h"]).status_code == 403
        r = c.put(base, json={"url": f"http://127.0.0.1:{free_port()}"}, headers=admin["h"])
        assert r.status_code == 400 and "unreachable" in r.json()["error"]["message"]
        r = c.put(base, json={"url": "ftp://nope"}, headers=admin["h"])
        assert r.status_code == 400
        assert c.get(base, headers=admin["h"]).json()["url"] is None
        r = c.put(base, json={"url": backend.url}, headers=admin["h"])
        assert r.status_code == 200, r.text
        assert r.json()["model_version"] == "kw-1"
        assert backend.calls["setup"][-1]["hostname"] == "http://testserver"
        r = c.get(base, headers=rev["h"])
        assert r.status_code == 200 and r.json()["ok"] is True and r.json()["health"]["status"] == "UP"
        assert c.get(base, headers=ann["h"]).status_code == 403
        assert c.get(f"/api/projects/{p['id']}", headers=admin["h"]).json()["ml_backend_url"] == backend.url

        # predictions in the background
        assert c.post(f"{base}/predict", headers=ann["h"]).status_code == 403
        r = c.post(f"{base}/predict", json={"batch": 5}, headers=admin["h"])
        assert r.status_code == 202, r.text
        run = c.get(base, headers=admin["h"]).json()["predict"]
        assert run["state"] == "done" and run["result"]["stored"] == 4, run
        assert len(predictions(ws, p["id"])) == 4
        r = c.post(f"/api/projects/{quiet['id']}/ml-backend/predict", headers=admin["h"])
        assert r.status_code == 400 and "no ML backend" in r.json()["error"]["message"]

        # an answer goes to /webhook as ANNOTATION_CREATED, in Label Studio's shape
        task = c.post(f"/api/projects/{p['id']}/tasks/next", headers=ann["h"]).json()["task"]
        r = c.post(f"/api/tasks/{task['id']}/answers", json={"label": "neg"}, headers=ann["h"])
        assert r.status_code == 201, r.text
        answer = r.json()["answer"]
        assert ws.wait_backend_notifications(10)
        (hook,) = backend.calls["webhook"]
        assert hook["action"] == "ANNOTATION_CREATED" and set(hook) >= {"annotation", "task", "project"}
        a = hook["annotation"]
        assert a["id"] == answer["id"] and a["completed_by"] == ann["id"] and a["task"] == task["item"]["id"]
        assert a["result"] == [{"from_name": "label", "to_name": "text", "type": "choices",
                                "value": {"choices": ["neg"]}, "origin": "manual"}]
        assert hook["task"]["id"] == task["item"]["id"] and hook["task"]["data"] == {"text": task["item"]["text"]}
        assert hook["project"]["id"] == p["id"] and "<Choices" in hook["project"]["label_config"]

        # through the route (not the fast lane) too; other projects send nothing
        t2 = c.post(f"/api/projects/{p['id']}/tasks/next", headers=ann["h"]).json()["task"]
        r = c.post(f"/api/tasks/{t2['id']}/answers", content=json.dumps({"label": "pos"}),
                   headers={**ann["h"], "Content-Type": "application/json; charset=latin-1"})
        assert r.status_code == 201, r.text
        t3 = c.post(f"/api/projects/{quiet['id']}/tasks/next", headers=ann["h"]).json()["task"]
        assert c.post(f"/api/tasks/{t3['id']}/answers", json={"label": "pos"}, headers=ann["h"]).status_code == 201
        # a refused answer sends nothing
        assert c.post(f"/api/tasks/{t3['id']}/answers", json={"label": "pos"}, headers=ann["h"]).status_code == 409
        assert ws.wait_backend_notifications(10)
        assert len(backend.calls["webhook"]) == 2
        assert backend.calls["webhook"][1]["annotation"]["result"][0]["value"]["choices"] == ["pos"]

        # a failing backend never fails the answer
        backend.webhook_mode = "http500"
        t4 = c.post(f"/api/projects/{p['id']}/tasks/next", headers=ann["h"]).json()["task"]
        assert c.post(f"/api/tasks/{t4['id']}/answers", json={"label": "pos"}, headers=ann["h"]).status_code == 201
        assert ws.wait_backend_notifications(10)
        stats = c.get(base, headers=admin["h"]).json()["webhooks"]
        assert stats["sent"] == 2 and stats["failed"] == 1

        # disconnect
        r = c.put(base, json={"url": None}, headers=admin["h"])
        assert r.status_code == 200 and r.json()["url"] is None
        assert c.get(base, headers=admin["h"]).json()["ok"] is None


# ---------------------------------------------------------------- python: models


def test_python_hook(ws, proj):
    ds, p = proj
    seen: list[list[dict]] = []
    hooks: list[dict] = []

    def predict(items):
        seen.append(items)
        out = []
        for it in items:
            words = it["text"].lower().split()
            hit = next((RULES[w] for w in words if w in RULES), None)
            out.append(None if hit is None else {"label": hit, "score": 0.75})
        return out

    url = backends.register_model("keywords", predict, version="kw-py", on_answer=hooks.append)
    try:
        assert url == "python:keywords"
        r = ws.connect_backend(p["id"], url)
        assert r["health"] == {"status": "UP", "model_class": "keywords"} and r["model_version"] == "kw-py"
        out = ws.backend_predict(p["id"], batch=4)
        assert out["stored"] == 4 and out["skipped_unknown"] == 1 and out["no_prediction"] == 1
        assert [len(b) for b in seen] == [4, 2] and set(seen[0][0]) == {"id", "text"}
        ids = by_text(ws, ds)
        label, conf, version, _ = predictions(ws, p["id"])[ids["awful battery"]]
        assert (label, conf, version) == ("neg", 0.75, out["model_versions"]["kw-py"])

        # answers reach on_answer as a Label Studio webhook body, from submit alone
        u, _ = ws.add_user("ann")
        ws.add_member(p["id"], u["id"])
        t = ws.next_task(p["id"], u)
        answer = ws.submit(t["id"], u, "pos")
        assert ws.wait_backend_notifications(10)
        assert len(hooks) == 1 and hooks[0]["annotation"]["id"] == answer["id"]
        assert ws.notify_backend(answer) is True  # sending one again by hand still works
        assert ws.wait_backend_notifications(10) and len(hooks) == 2
        assert hooks[0]["action"] == "ANNOTATION_CREATED"
        assert hooks[0]["annotation"]["result"][0]["value"]["choices"] == ["pos"]
        # an undo tells the backend the annotation is gone (Label Studio's ANNOTATIONS_DELETED)
        ws.undo(answer["id"], u)
        assert ws.wait_backend_notifications(10) and len(hooks) == 3
        assert hooks[2]["action"] == "ANNOTATIONS_DELETED"
        assert hooks[2]["annotations"] == [{"id": answer["id"]}] and hooks[2]["project"]["id"] == p["id"]

        # a model that breaks the contract: a clear error, nothing stored
        backends.register_model("keywords", lambda items: [{"label": "pos"}])
        before = snapshot(ws)
        with pytest.raises(BackendProtocolError, match="one dict per item"):
            ws.backend_predict(p["id"])
        backends.register_model("keywords", lambda items: 1 / 0)
        with pytest.raises(BackendUnreachable, match="ZeroDivisionError"):
            ws.backend_predict(p["id"])
        assert snapshot(ws) == before
    finally:
        backends.unregister_model("keywords")
    with pytest.raises(BackendUnreachable, match="no Python model"):
        ws.backend_health(p["id"])


def test_python_hook_gets_image_bytes(ws, tmp_path):
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for name, color in (("red.png", (255, 0, 0)), ("blue.png", (0, 0, 255))):
        Image.new("RGB", (4, 4), color).save(folder / name)
    ws.import_file("pics", folder, create=True)
    p = ws.create_project("colors", "pics", ["red", "blue"])

    def predict(items):
        out = []
        for it in items:
            r, g, b = Image.open(io.BytesIO(it["image_bytes"])).convert("RGB").getpixel((0, 0))
            out.append({"label": "red" if r > b else "blue", "score": 1.0})
        return out

    backends.register_model("colors", predict)
    try:
        ws.connect_backend(p["id"], "python:colors")
        assert ws.backend_predict(p["id"])["stored"] == 2
        labels = {v[0] for v in predictions(ws, p["id"]).values()}
        assert labels == {"red", "blue"}
        # the HTTP protocol gets the image's URL
        (iid, *_rest) = item_ids(ws, p["dataset_id"])
        task = backends.ls_task({"id": iid, "kind": "image"}, "http://assay.example/")
        assert task == {"id": iid, "data": {"image": f"http://assay.example/api/items/{iid}/content"}}
        assert ET.fromstring(backends.label_config(p, "image")).find("Image") is not None
    finally:
        backends.unregister_model("colors")


def test_no_backend_no_webhook(ws, proj):
    ds, p = proj
    u, _ = ws.add_user("ann")
    ws.add_member(p["id"], u["id"])
    t = ws.next_task(p["id"], u)
    assert ws.notify_backend(ws.submit(t["id"], u, "pos")) is False
    assert ws.backend_notifications()["queued"] == 0


# ---------------------------------------------------------------- the command line


def test_cli_backend_and_predict(tmp_path, db_url, monkeypatch, backend):
    from typer.testing import CliRunner

    from assay import Workspace
    from assay.cli import app

    home = tmp_path / "ws"
    monkeypatch.setenv("ASSAY_HOME", str(home))
    monkeypatch.setenv("ASSAY_DATABASE_URL", db_url)
    with Workspace(home) as ws:
        ds = text_dataset(ws, "reviews", TEXTS)
        ws.create_project("sentiment", ds["id"], ["pos", "neg"])
    runner = CliRunner()
    r = runner.invoke(app, ["project", "backend", "sentiment", f"http://127.0.0.1:{free_port()}"])
    assert r.exit_code == 1 and "unreachable" in r.output
    r = runner.invoke(app, ["project", "predict", "sentiment"])
    assert r.exit_code == 1 and "no ML backend" in r.output
    r = runner.invoke(app, ["project", "backend", "sentiment", backend.url])
    assert r.exit_code == 0, r.output
    assert "model version kw-1" in r.output
    r = runner.invoke(app, ["project", "predict", "sentiment", "--batch", "2"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["stored"] == 4 and out["skipped_unknown"] == 1 and len(backend.calls["predict"]) == 3
    backend.mode = "malformed"
    r = runner.invoke(app, ["project", "predict", "sentiment"])
    assert r.exit_code == 1 and "without 'results'" in r.output
    r = runner.invoke(app, ["project", "backend", "sentiment", "none"])
    assert r.exit_code == 0 and "no ML backend" in r.output
