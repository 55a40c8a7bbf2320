"""Hostile input at the HTTP edge (issue 11, items 7, 11, 15), over a real
uvicorn server (tests/_server.py) on SQLite and PostgreSQL.

* 7: bodies are bounded while they stream: a chunked body with no
  Content-Length is cut off at the limit, the server neither buffers it nor
  reads on; uploads are authenticated before a byte of them is read.
* 11: security headers on every page and response; /docs is served from the
  package (no CDN) under the same strict CSP.
* 15: ids ≥ 2^63, negative or huge ids and lone surrogates / NUL in JSON text
  are 4xx on every route, for admin, annotator and anonymous callers; error
  messages that echo input are clipped.
"""

from __future__ import annotations

import json
import re
import select
import socket
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import psutil
import pytest

from _server import LiveServer
from factories import project_with_annotators, snapshot

STATIC = Path(__file__).resolve().parents[1] / "src" / "assay" / "server" / "static"
MiB = 1 << 20


@pytest.fixture
def env(ws):
    admin, admin_tok = ws.add_user("root", "admin")
    p, _ = project_with_annotators(ws, 3, 0)
    ann, ann_tok = ws.add_user("alice", "annotator")
    ws.add_member(p["id"], ann["id"])
    with LiveServer(ws) as srv:
        yield {"ws": ws, "srv": srv, "base": srv.base, "project": p,
               "admin": {"Authorization": f"Bearer {admin_tok}"},
               "annotator": {"Authorization": f"Bearer {ann_tok}"}}


UPLOAD_HEAD = ("Content-Type: multipart/form-data; boundary=xyz",
               b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
               b"Content-Type: text/csv\r\n\r\ntext\n")


def _stream(port: int, path: str, headers: list[str], *, total: int, chunk: int = 1 << 16,
            prefix: bytes = b""):
    """POST a chunked body of up to ``total`` bytes (no Content-Length), watching
    for an answer between chunks. Returns (bytes sent before the server answered
    or hung up, the response head)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            + "".join(f"{h}\r\n" for h in headers) + "\r\n")
    s.sendall(head.encode())
    if prefix:
        s.sendall(f"{len(prefix):x}\r\n".encode() + prefix + b"\r\n")
    frame = f"{chunk:x}\r\n".encode() + b"x" * chunk + b"\r\n"
    sent = 0
    try:
        while sent < total:
            if select.select([s], [], [], 0)[0]:
                break  # the server answered (or closed): stop sending
            try:
                s.sendall(frame)
            except OSError:  # reset / broken pipe: it stopped reading
                break
            sent += chunk
        else:
            s.sendall(b"0\r\n\r\n")
        response = b""
        try:
            while b"\r\n\r\n" not in response:
                data = s.recv(1 << 16)
                if not data:
                    break
                response += data
        except OSError:
            pass
    finally:
        s.close()
    return sent, response.split(b"\r\n\r\n")[0].decode("latin-1")


def _status(head: str) -> int:
    m = re.match(r"HTTP/1\.1 (\d{3})", head)
    assert m, f"no HTTP response came back: {head!r}"
    return int(m.group(1))


# ---------------------------------------------------------------- 7: body limits


def test_chunked_login_body_is_refused_early_without_buffering(env):
    """A 200 MB chunked body to the anonymous login: 413 after about 1 MiB; the
    server stops reading (the client could not push more than the socket
    buffers hold) and its memory does not grow with the body."""
    proc = psutil.Process()  # the live server runs in this process
    rss0 = proc.memory_info().rss
    sent, head = _stream(env["srv"].port, "/api/auth/login", ["Content-Type: application/json"],
                         total=200 * MiB)
    grown = (proc.memory_info().rss - rss0) / MiB
    assert _status(head) == 413, head
    assert sent < 32 * MiB, f"the server read on: {sent / MiB:.0f} MiB were accepted"
    assert grown < 50, f"the server grew by {grown:.0f} MiB"
    # The limit also holds for a declared length, and a body under it is read as usual.
    r = httpx.post(env["base"] + "/api/auth/login", content=b"{" + b" " * (2 * MiB) + b"}",
                   headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"
    assert "ASSAY_MAX_BODY_KB" in r.json()["error"]["message"]
    body = json.dumps({"username": "nobody", "password": "p" * 500_000})
    r = httpx.post(env["base"] + "/api/auth/login", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code in (400, 401, 422, 429), r.text


def test_uploads_are_authenticated_before_the_body_is_read(env, tmp_path):
    """An anonymous or non-admin 300 MB chunked upload gets its 401 / 403 at
    once; the server reads (and spools) none of it."""
    ds = env["project"]["dataset_id"]
    ctype, prefix = UPLOAD_HEAD
    for who, status in ((None, 401), ("annotator", 403), ("bogus", 401)):
        auth = [] if who is None else [f"Authorization: {env[who]['Authorization']}" if who in env
                                       else "Authorization: Bearer asy_not_a_token"]
        sent, head = _stream(env["srv"].port, f"/api/datasets/{ds}/import", [ctype, *auth], total=300 * MiB,
                             prefix=prefix)
        assert _status(head) == status, (who, head)
        assert sent < 32 * MiB, f"{who}: the server read {sent / MiB:.0f} MiB of an upload it refuses"


def test_admin_upload_over_the_limit_is_cut_off_while_streaming(ws, monkeypatch):
    monkeypatch.setenv("ASSAY_MAX_UPLOAD_MB", "2")
    _, tok = ws.add_user("root", "admin")
    ds = ws.create_dataset("d")
    before = snapshot(ws)
    with LiveServer(ws) as srv:
        sent, head = _stream(srv.port, f"/api/datasets/{ds['id']}/import",
                             [UPLOAD_HEAD[0], f"Authorization: Bearer {tok}"], total=300 * MiB,
                             prefix=UPLOAD_HEAD[1])
        assert _status(head) == 413, head
        assert sent < 32 * MiB
        # a small upload still imports
        r = httpx.post(srv.base + f"/api/datasets/{ds['id']}/import", headers={"Authorization": f"Bearer {tok}"},
                       files={"file": ("a.csv", b"text\nhello\nworld\n", "text/csv")})
        assert r.status_code == 200, r.text
    assert snapshot(ws)["items"] == before["items"] + 2


def test_hot_path_keeps_working_and_is_bounded(env):
    base, h, pid = env["base"], env["annotator"], env["project"]["id"]
    r = httpx.post(f"{base}/api/projects/{pid}/tasks/next", headers=h, json={"exclude": []})
    assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
    task = r.json()["task"]
    # over the fast lane's 64 KiB but under the JSON limit: the route still takes it
    r = httpx.post(f"{base}/api/tasks/{task['id']}/answers", headers=h,
                   json={"label": "pos", "pad": "x" * 100_000})
    assert r.status_code == 201, r.text
    # over the JSON limit, chunked: refused while streaming
    sent, head = _stream(env["srv"].port, f"/api/tasks/{task['id']}/answers",
                         ["Content-Type: application/json", f"Authorization: {h['Authorization']}"],
                         total=100 * MiB)
    assert _status(head) == 413 and sent < 32 * MiB


# ---------------------------------------------------------------- 11: headers, /docs

PAGES = ["/", "/login", "/admin", "/admin/projects/new", "/admin/people", "/label/1", "/quality/1", "/search/1", "/map/1", "/curate/1", "/docs"]


def _assert_common(r, page: bool = False) -> None:
    assert r.headers["x-content-type-options"] == "nosniff", r.url
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"], r.url
    if page:
        assert r.headers["x-frame-options"] == "DENY", r.url
        assert r.headers["referrer-policy"] == "no-referrer", r.url


def test_security_headers_on_every_page_and_response(env):
    with httpx.Client(base_url=env["base"]) as c:
        for path in PAGES:
            r = c.get(path)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
            _assert_common(r, page=True)
            csp = r.headers["content-security-policy"]
            directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
            assert directives["script-src"] == "'self'", (path, csp)
            assert directives["style-src"] == "'self'", (path, csp)
            assert directives["object-src"] == "'none'" and directives["base-uri"] == "'none'"
            assert "unsafe" not in csp and "http" not in csp, csp
        for path, headers in (("/api/me", env["annotator"]), ("/api/me", {}), ("/api/nothing", {}),
                              ("/static/api.js", {}), ("/openapi.json", {})):
            r = c.get(path, headers=headers)
            _assert_common(r)
            assert r.headers["content-security-policy"].startswith("default-src 'none'"), path


def test_static_pages_have_no_inline_script_or_style():
    for page in STATIC.glob("*.html"):
        html = page.read_text()
        for m in re.finditer(r"<script\b([^>]*)>(.*?)</script>", html, re.S | re.I):
            assert "src=" in m.group(1) and not m.group(2).strip(), f"{page.name}: inline script"
        assert not re.search(r"\son[a-z]+\s*=", html, re.I), f"{page.name}: inline event handler"
        assert not re.search(r"\sstyle\s*=", html, re.I) and "<style" not in html, f"{page.name}: inline style"
        assert "javascript:" not in html.lower()


def test_docs_are_served_from_the_package(env):
    with httpx.Client(base_url=env["base"]) as c:
        r = c.get("/docs")
        assert r.status_code == 200
        assert not re.search(r"https?://", r.text), "the /docs page references an outside URL"
        refs = re.findall(r'(?:src|href)="([^"]+)"', r.text)
        assert any(x.endswith(".js") for x in refs) and any(x.endswith(".css") for x in refs)
        for ref in refs:
            assert ref.startswith("/"), ref
            got = c.get(ref)
            assert got.status_code == 200 and len(got.content) > 0, ref
        assert c.get("/openapi.json").status_code == 200
        assert c.get("/redoc").status_code == 404  # ReDoc would need a CDN and inline styles: off


# ---------------------------------------------------------------- 15: numbers and text

BAD_INTS = [2**63, 2**64, -(2**63) - 1, 10**30, -1]


def _resolve(schema: dict, spec: dict) -> dict:
    while "$ref" in schema:
        node = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [_resolve(s, spec) for s in schema[key]]
            options = [s for s in options if s.get("type") != "null"] or options
            return options[0]
    return schema


def _sample(schema: dict, spec: dict, number, text, depth: int = 0):
    """A body for ``schema`` with every integer ``number`` and every string ``text``."""
    schema = _resolve(schema, spec)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return {}
        return {k: _sample(v, spec, number, text, depth + 1) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [_sample(schema.get("items", {}), spec, number, text, depth + 1)]
    if kind == "integer":
        return number
    if kind == "number":
        return 0.5
    if kind == "boolean":
        return True
    return text


def _operations(spec: dict):
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method.upper(), op


def _request(c, method, path, op, spec, *, number, text, headers):
    """One request for ``op`` with ``number`` in every int slot and ``text`` in every string."""
    params = {p["name"]: p for p in op.get("parameters", [])}
    raw_text = quote(text.encode("utf-8", "surrogatepass"), safe="")  # a lone surrogate as raw bytes
    url, query = path, []
    for name, p in params.items():
        kind = _resolve(p.get("schema", {}), spec).get("type")
        value = str(number) if kind == "integer" else raw_text
        if p["in"] == "path":
            url = url.replace("{" + name + "}", value)
        elif p["in"] == "query":
            query.append(f"{name}={value}")
    if query:
        url += "?" + "&".join(query)
    content = None
    body = op.get("requestBody", {}).get("content", {})
    h = dict(headers)
    if "application/json" in body:
        content = json.dumps(_sample(body["application/json"].get("schema", {}), spec, number, text))
        h["Content-Type"] = "application/json"
    elif "multipart/form-data" in body:
        return c.request(method, url, headers=h, files={"file": ("a.csv", b"text\nhi\n", "text/csv")},
                         data={"text_column": text.encode("utf-8", "surrogatepass")})
    return c.request(method, url, headers=h, content=content)


def test_no_route_answers_hostile_numbers_or_text_with_a_5xx(env):
    """Walk every route of the OpenAPI document as admin, annotator and
    anonymous with ids ≥ 2^63 (and negative / huge ones), lone surrogates and
    NUL in JSON text: every answer is a 4xx (or a 2xx), never a 5xx."""
    base = env["base"]
    spec = httpx.get(base + "/openapi.json").json()
    ops = list(_operations(spec))
    assert len(ops) >= 25
    failures = []
    with httpx.Client(base_url=base, timeout=30) as c:
        for who in ("admin", "annotator", "anonymous"):
            headers = env.get(who, {})
            cases = [(n, "x") for n in BAD_INTS] + [(1, "\ud800"), (1, "a\udc00b"), (1, "a\x00b"),
                                                      (2**64, "\ud800")]
            for path, method, op in ops:
                if path.endswith("/auth/logout"):
                    continue  # would revoke the token the rest of the walk uses
                for number, text in cases:
                    try:
                        r = _request(c, method, path, op, spec, number=number, text=text, headers=headers)
                    except httpx.TransportError as exc:  # a crashed or dropped request
                        failures.append(f"{who} {method} {path} number={number} text={text!r}: {exc!r}")
                        continue
                    if r.status_code >= 500:
                        failures.append(f"{who} {method} {path} number={number} text={text!r}: "
                                        f"{r.status_code} {r.text[:200]}")
                    elif r.status_code >= 400:
                        err = r.json()["error"]
                        assert err["message"] and len(err["message"]) <= 400, err
    assert not failures, f"{len(failures)} 5xx answers:\n" + "\n".join(failures[:40])


def test_lone_surrogates_and_nul_are_clear_400s(env):
    base, h = env["base"], env["admin"]
    for raw in ('{"username": "\\ud800", "role": "annotator"}', '{"username": "a\\udc00", "role": "annotator"}',
                '{"username": "a\\ud800\\ud800b"}', '{"username": "a\\u0000b"}'):
        r = httpx.post(base + "/api/users", content=raw, headers={**h, "Content-Type": "application/json"})
        assert r.status_code == 400, (raw, r.text)
        msg = r.json()["error"]["message"]
        assert "surrogate" in msg or "NUL" in msg, msg
    for raw in ('{"name": "ok \\ud83d\\ude00 emoji"}', '{"name": "a literal \\\\ud800 is fine"}'):
        r = httpx.post(base + "/api/datasets", content=raw, headers={**h, "Content-Type": "application/json"})
        assert r.status_code == 201, (raw, r.text)


def test_huge_ids_are_clear_4xx(env):
    base, h, pid = env["base"], env["admin"], env["project"]["id"]
    for url in (f"/api/projects/{2**63}", f"/api/projects/{2**64}/progress", f"/api/items/{10**30}",
                f"/api/datasets/{-(2**63) - 1}", f"/api/projects/{pid}/answers?after={2**64}"):
        r = httpx.get(base + url, headers=h)
        assert 400 <= r.status_code < 500, (url, r.text)
        assert r.json()["error"]["message"], url
    for exclude in ([2**63], [2**64], [-(2**63) - 1]):  # the fast lane too
        r = httpx.post(f"{base}/api/projects/{pid}/tasks/next", headers=env["annotator"], json={"exclude": exclude})
        assert r.status_code < 500 and (r.status_code == 200 or r.json()["error"]["message"]), r.text


def test_error_messages_clip_echoed_input(env):
    base, h = env["base"], env["admin"]
    ds = env["project"]["dataset_id"]
    column = "c" * 5000
    r = httpx.post(f"{base}/api/datasets/{ds}/import", headers=h, data={"text_column": "t" * 5000},
                   files={"file": ("a.csv", column.encode() + b",lang\nhello,en\n", "text/csv")})
    assert r.status_code == 400, r.text
    msg = r.json()["error"]["message"]
    assert len(msg) <= 400 and "characters cut" in msg, msg


def test_json_text_scanner():
    from assay.server.edge import json_text_problem as p

    assert p(b'{"a": "plain"}') is None
    assert p(b'{"a": "\\ud83d\\ude00"}') is None  # a pair is an emoji
    assert p(b'{"a": "\\\\ud800"}') is None  # an escaped backslash, then text
    assert p(b'{"a": "\\u00e9\\n"}') is None
    for bad in (b'"\\ud800"', b'"\\udc00"', b'"\\ud800x"', b'"\\ud800\\u0041"', b'"\\ud800\\ud800"',
                b'"\\\\\\ud800"', b'"\\u0000"', b'"\\ude00\\ud83d"'):
        assert p(bad) is not None, bad
    t0 = time.perf_counter()
    assert p(b'{"label": "pos"}') is None
    assert time.perf_counter() - t0 < 0.01
