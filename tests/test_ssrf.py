"""The ML backend URL against server-side request forgery (issue 11, item
12), on SQLite and PostgreSQL, over real HTTP where it is about the server.

The backends here are real HTTP servers on 127.0.0.1 (threads on free
ports); nothing is mocked. What they receive is recorded, so a test can
prove that a refused URL was never contacted, that a redirect was not
followed, and which address the backend was told to fetch content from.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from PIL import Image

from assay.learn import ml_backend as backends
from assay.learn.ml_backend import BackendUnreachable
from assay.errors import InvalidInput
from _server import LiveServer
from factories import snapshot, text_dataset
from test_backends import backend  # noqa: F401 - the shared fake-backend fixture

SECRET = "SECRET-INTERNAL-7d1f"


class Recorder:
    """An HTTP server that answers every request with ``answer(path)`` →
    ``(status, headers, body bytes)`` and records ``(method, path, headers)``."""

    def __init__(self, answer) -> None:
        self.requests: list[tuple[str, str, dict]] = []
        rec = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                rec.requests.append((self.command, self.path, dict(self.headers)))
                status, headers, body = answer(self.path)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()




@pytest.fixture
def proj(ws):
    ds = text_dataset(ws, "reviews", ["a great phone", "awful battery"])
    return ws.create_project("sentiment", ds["id"], ["pos", "neg"])


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("ASSAY_BACKEND_ALLOW", "ASSAY_BACKEND_DENY", "ASSAY_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)


def _admin(ws):
    _, token = ws.add_user("root", "admin")
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- what a URL may be


@pytest.mark.parametrize("url", [
    "ftp://127.0.0.1/", "file:///etc/passwd", "gopher://127.0.0.1:70/", "javascript:alert(1)",
    "http:///nohost", "http://127.0.0.1:9090/?q=1", "http://127.0.0.1:9090/#x",
    "http://127.0.0.1\\@evil.example/", "http://evil.example /", "http://127.0.0.1:9090/\r\nX: y",
    "http://127.0.0.1:99999/",
])
def test_only_plain_http_urls(ws, proj, url):
    before = snapshot(ws)
    for attempt in (lambda: ws.connect_backend(proj["id"], url),
                    lambda: ws.update_project(proj["id"], ml_backend_url=url)):
        with pytest.raises(InvalidInput):
            attempt()
    assert snapshot(ws) == before and ws.get_project(proj["id"])["ml_backend_url"] is None


NEVER = [
    "http://169.254.169.254/latest/meta-data/",      # AWS / Azure / GCP metadata
    "http://169.254.1.1:9090",                        # link-local
    "http://[fe80::1]:9090",
    "http://[fd00:ec2::254]/",                        # AWS metadata, IPv6
    "http://100.100.100.200/",                        # Alibaba metadata
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.google.internal./",
    "http://0.0.0.0:9090", "http://[::]:9090",        # unspecified (reaches loopback on Linux)
    "http://224.0.0.1:9090", "http://[ff02::1]:9090",  # multicast
    "http://255.255.255.255/",
    "http://[::ffff:169.254.169.254]/",               # IPv4-mapped
    "http://[64:ff9b::a9fe:a9fe]/",                   # NAT64 of 169.254.169.254
    "http://2852039166/", "http://0xa9.0xfe.0xa9.0xfe/", "http://0251.0376.0251.0376/",  # old IPv4 forms
    "http://user:pw@169.254.169.254/",
]


@pytest.mark.parametrize("url", NEVER)
def test_link_local_metadata_multicast_unspecified_never_allowed(ws, proj, url, monkeypatch):
    before = snapshot(ws)
    with pytest.raises(InvalidInput, match="never allowed"):
        ws.connect_backend(proj["id"], url)
    with pytest.raises(InvalidInput, match="never allowed"):
        ws.update_project(proj["id"], ml_backend_url=url)  # refused when set, not only when used
    monkeypatch.setenv("ASSAY_BACKEND_ALLOW", "all")  # nothing allows them
    with pytest.raises(InvalidInput, match="never allowed"):
        ws.connect_backend(proj["id"], url)
    assert snapshot(ws) == before


def test_loopback_allowed_by_default_and_deniable(ws, proj, backend, monkeypatch):
    local = backend.url.replace("127.0.0.1", "localhost")  # a name that resolves to loopback
    for url in (backend.url, local):
        assert ws.connect_backend(proj["id"], url)["model_version"] == "kw-1"
    calls = sum(len(v) for v in backend.calls.values())
    ws.connect_backend(proj["id"], None)
    for deny in ("loopback", "127.0.0.0/8", "localhost", "private,loopback"):
        monkeypatch.setenv("ASSAY_BACKEND_DENY", deny)
        for url in (backend.url, local) if deny != "localhost" else (local,):  # a name denies that name
            with pytest.raises(InvalidInput, match="ASSAY_BACKEND_DENY"):
                ws.connect_backend(proj["id"], url)
    assert sum(len(v) for v in backend.calls.values()) == calls  # never contacted
    assert ws.get_project(proj["id"])["ml_backend_url"] is None


def test_allow_list(ws, proj, backend, monkeypatch):
    monkeypatch.setenv("ASSAY_BACKEND_ALLOW", "10.0.0.0/8,ml.example.com")
    with pytest.raises(InvalidInput, match="not in ASSAY_BACKEND_ALLOW"):
        ws.connect_backend(proj["id"], backend.url)
    assert backend.calls["health"] == []
    for allow in ("127.0.0.1/32", "127.0.0.1", "loopback", "localhost", ".localhost,10.0.0.0/8"):
        monkeypatch.setenv("ASSAY_BACKEND_ALLOW", allow)
        url = backend.url if "localhost" not in allow else backend.url.replace("127.0.0.1", "localhost")
        assert ws.connect_backend(proj["id"], url)["model_version"] == "kw-1", allow
    monkeypatch.setenv("ASSAY_BACKEND_ALLOW", "loopback")
    monkeypatch.setenv("ASSAY_BACKEND_DENY", "127.0.0.1")  # deny wins over allow
    with pytest.raises(InvalidInput, match="ASSAY_BACKEND_DENY"):
        ws.connect_backend(proj["id"], backend.url)
    monkeypatch.setenv("ASSAY_BACKEND_DENY", "not a host!")
    with pytest.raises(InvalidInput, match="ASSAY_BACKEND_DENY: 'not a host!'"):
        ws.connect_backend(proj["id"], backend.url)


def test_checked_again_at_every_use(ws, proj, backend, monkeypatch):
    """A stored URL is checked at each call (health, predict, webhooks), so a
    changed setting or a changed DNS answer takes effect at once."""
    ws.connect_backend(proj["id"], backend.url)
    ann, _ = ws.add_user("ann")
    ws.add_member(proj["id"], ann["id"])
    seen = {k: len(v) for k, v in backend.calls.items()}
    monkeypatch.setenv("ASSAY_BACKEND_DENY", "loopback")
    with pytest.raises(InvalidInput, match="ASSAY_BACKEND_DENY"):
        ws.backend_health(proj["id"])
    with pytest.raises(InvalidInput, match="ASSAY_BACKEND_DENY"):
        ws.backend_predict(proj["id"])
    t = ws.next_task(proj["id"], ann)
    ws.submit(t["id"], ann, "pos")  # the answer.created event queues the webhook
    assert ws.wait_backend_notifications(10)
    assert ws.backend_notifications()["failed"] == 1
    assert {k: len(v) for k, v in backend.calls.items()} == seen  # not one request reached it


def test_connects_to_the_address_it_checked(ws, proj, backend):
    """The client resolves once per call, checks every address, and opens
    its socket to a checked address: a name is never looked up a second
    time between the check and the connection."""
    addrs = backends.resolve("localhost", 80)
    assert addrs and all(a in ("127.0.0.1", "::1") for a in addrs)
    client = backends.HttpBackend(backend.url.replace("127.0.0.1", "localhost"))
    conn = client._connection("127.0.0.1", 5)
    conn.connect()  # to the given address, whatever "localhost" resolves to now
    try:
        assert conn.sock.getpeername()[:2] == ("127.0.0.1", backend.server.server_address[1])
    finally:
        conn.close()


# ---------------------------------------------------------------- redirects and error bodies


def test_redirects_are_not_followed(ws, proj):
    target = Recorder(lambda path: (200, {"Content-Type": "application/json"}, b'{"status": "UP"}'))
    hop = Recorder(lambda path: (302, {"Location": f"{target.url}{path}"}, b""))
    try:
        url = hop.url.replace("http://", "http://ml:s3cret@")
        with pytest.raises(BackendUnreachable, match=r"redirect \(HTTP 302\)") as e:
            ws.connect_backend(proj["id"], url)
        assert "s3cret" not in e.value.message and target.url not in e.value.message
        assert len(hop.requests) == 1 and hop.requests[0][2].get("Authorization", "").startswith("Basic ")
        assert target.requests == []  # neither the request nor the credentials went on
        assert ws.get_project(proj["id"])["ml_backend_url"] is None
    finally:
        hop.close()
        target.close()


def _secret_server(kind: str) -> Recorder:
    def answer(path):
        if kind == "500":
            return 500, {"Content-Type": "text/plain"}, f"internal page: {SECRET}".encode()
        if kind == "html":
            return 200, {"Content-Type": "text/html"}, f"<html>{SECRET}</html>".encode()
        if kind == "status":
            return 200, {"Content-Type": "application/json"}, json.dumps({"status": SECRET}).encode()
        if kind == "extra":  # a JSON API that happens to say "UP"
            if path == "/health":
                return 200, {}, json.dumps({"status": "UP", "db_password": SECRET, "model_class": "M"}).encode()
            return 200, {}, json.dumps({"model_version": "v1", "token": SECRET}).encode()
        return 200, {}, json.dumps({"detail": SECRET, "results_missing": True}).encode()
    return Recorder(answer)


@pytest.mark.parametrize("kind", ["500", "html", "status", "extra"])
def test_backend_bodies_never_reach_the_api_caller(ws, proj, kind, caplog):
    srv = _secret_server(kind)
    h = _admin(ws)
    base = f"/api/projects/{proj['id']}/ml-backend"
    try:
        with LiveServer(ws) as live:
            r = httpx.put(live.base + base, json={"url": srv.url}, headers=h, timeout=30)
            assert SECRET not in r.text
            if kind == "extra":
                assert r.status_code == 200 and r.json()["health"] == {"status": "UP", "model_class": "M"}
                r = httpx.get(live.base + base, headers=h, timeout=30)
                assert r.status_code == 200 and r.json()["ok"] is True and SECRET not in r.text
            else:
                assert r.status_code in (400, 415), r.text
                if kind == "500":
                    assert "HTTP 500" in r.json()["error"]["message"]
                ws.update_project(proj["id"], ml_backend_url=srv.url)  # stored without a check
                r = httpx.get(live.base + base, headers=h, timeout=30)
                assert r.status_code == 200 and r.json()["ok"] is False and SECRET not in r.text
        if kind != "extra":
            assert SECRET in caplog.text  # what went wrong is in the server log, for the operator
    finally:
        srv.close()


def test_predict_errors_do_not_echo_the_backend(ws, proj):
    srv = _secret_server("predict")
    h = _admin(ws)
    ws.update_project(proj["id"], ml_backend_url=srv.url)
    base = f"/api/projects/{proj['id']}/ml-backend"
    try:
        with LiveServer(ws) as live:
            r = httpx.post(live.base + base + "/predict", headers=h, timeout=30)
            assert r.status_code == 202
            for _ in range(200):
                run = httpx.get(live.base + base, headers=h, timeout=30).json()["predict"]
                if run["state"] != "running":
                    break
                threading.Event().wait(0.05)
            assert run["state"] == "failed" and "without 'results'" in run["error"]
            assert SECRET not in json.dumps(run) and "results_missing" not in json.dumps(run)
    finally:
        srv.close()


# ---------------------------------------------------------------- the address a backend is given


def _image_project(ws, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for name, color in (("red.png", (255, 0, 0)), ("blue.png", (0, 0, 255))):
        Image.new("RGB", (4, 4), color).save(folder / name)
    ws.import_file("pics", folder, create=True)
    return ws.create_project("colors", "pics", ["red", "blue"])


@pytest.mark.parametrize("public", [None, "https://assay.example.org/labels"])
def test_backend_gets_the_configured_address_not_the_host_header(ws, backend, tmp_path, monkeypatch, public):
    if public:
        monkeypatch.setenv("ASSAY_PUBLIC_URL", public)
    p = _image_project(ws, tmp_path)
    h = _admin(ws)
    ann, tok = ws.add_user("ann")
    ws.add_member(p["id"], ann["id"])
    forged = {"Host": "evil.example:666", "X-Forwarded-Host": "evil.example"}
    base = f"/api/projects/{p['id']}/ml-backend"
    with LiveServer(ws) as live:
        want = public or live.base
        r = httpx.put(live.base + base, json={"url": backend.url}, headers={**h, **forged}, timeout=30)
        assert r.status_code == 200, r.text
        assert backend.calls["setup"][-1]["hostname"] == want
        r = httpx.post(live.base + base + "/predict", headers={**h, **forged}, timeout=30)
        assert r.status_code == 202
        for _ in range(200):
            if httpx.get(live.base + base, headers=h, timeout=30).json()["predict"]["state"] != "running":
                break
            threading.Event().wait(0.05)
        images = [t["data"]["image"] for call in backend.calls["predict"] for t in call["tasks"]]
        assert len(images) == 2 and all(u.startswith(f"{want}/api/items/") for u in images), images
        # An annotator's answer, sent to the backend's /webhook
        ah = {"Authorization": f"Bearer {tok}", **forged}
        t = httpx.post(f"{live.base}/api/projects/{p['id']}/tasks/next", headers=ah, timeout=30).json()["task"]
        r = httpx.post(f"{live.base}/api/tasks/{t['id']}/answers", json={"label": "red"}, headers=ah, timeout=30)
        assert r.status_code == 201, r.text
        assert ws.wait_backend_notifications(10)
    hook = backend.calls["webhook"][-1]
    assert hook["task"]["data"]["image"] == f"{want}/api/items/{t['item']['id']}/content"
    assert "evil.example" not in json.dumps(backend.calls)


def test_cli_uses_public_url_setting(ws, proj, backend, monkeypatch):
    monkeypatch.setenv("ASSAY_PUBLIC_URL", "http://labels.internal:8000/")
    ws.connect_backend(proj["id"], backend.url)
    assert backend.calls["setup"][-1]["hostname"] == "http://labels.internal:8000"
