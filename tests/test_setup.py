"""First run (issue 16 part 1): an empty workspace's first admin is claimed
with the one-time code `assay serve` prints — over real HTTP, on SQLite and
PostgreSQL, as an attacker on the network would try it: a wrong or missing
code creates nothing, guesses are throttled, two claims at once make one
admin, and once anyone exists /setup is closed for good."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import httpx
import pytest

from _server import LiveServer
from assay.engine import setup as _setup
from assay.errors import Conflict, Forbidden


def _post(base: str, code: str, username: str = "root", password: str = "correct horse") -> httpx.Response:
    return httpx.post(base + "/api/setup", json={"code": code, "username": username, "password": password},
                      timeout=10)


def test_first_admin_is_claimed_once_with_the_printed_code(ws):
    code = ws.setup_code()
    assert code and len(code) == 19
    stored = (ws.home / _setup.CODE_FILE).read_text()
    assert code not in stored and code.replace("-", "") not in stored  # only its hash is kept
    assert (ws.home / _setup.CODE_FILE).stat().st_mode & 0o777 == 0o600
    with LiveServer(ws) as srv:
        assert httpx.get(srv.base + "/api/setup").json()["needed"] is True
        for page in ("/", "/login"):
            r = httpx.get(srv.base + page)
            assert r.status_code == 303 and r.headers["location"] == "/setup"
        assert httpx.get(srv.base + "/setup").status_code == 200

        wrong = _post(srv.base, "AAAA-AAAA-AAAA-AAAA")
        assert wrong.status_code == 403 and "setup code" in wrong.json()["error"]["message"]
        assert _post(srv.base, "").status_code == 403
        short = _post(srv.base, code, password="short")
        assert short.status_code == 400
        assert ws.list_users() == []  # nothing was created by any of those

        ok = _post(srv.base, code.lower().replace("-", " "))  # typed loosely: still the code
        assert ok.status_code == 201, ok.text
        token = ok.json()["token"]
        me = httpx.get(srv.base + "/api/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["username"] == "root" and me["role"] == "admin"
        assert not (ws.home / _setup.CODE_FILE).exists()

        again = _post(srv.base, code, username="mallory")
        assert again.status_code == 409
        assert [u["username"] for u in ws.list_users()] == ["root"]
        assert httpx.get(srv.base + "/api/setup").json()["needed"] is False
        r = httpx.get(srv.base + "/setup")
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert httpx.get(srv.base + "/login").status_code == 200
    assert ws.setup_code() is None  # a set-up workspace gets no new code


def test_setup_is_closed_when_users_exist_even_with_a_code_file(ws):
    ws.add_user("alice", "annotator")
    code = _setup.new_code(ws.home)  # a stale file left behind must not reopen setup
    with pytest.raises(Conflict):
        ws.claim_setup(code, "mallory", "correct horse")
    assert [u["username"] for u in ws.list_users()] == ["alice"]


def test_wrong_codes_are_throttled_per_address(ws):
    code = ws.setup_code()
    with LiveServer(ws) as srv:
        statuses = [_post(srv.base, "BBBB-BBBB-BBBB-BBBB").status_code for _ in range(ws.accounts.max_failures + 1)]
        assert statuses[:ws.accounts.max_failures] == [403] * ws.accounts.max_failures
        assert statuses[-1] == 429
        locked = _post(srv.base, code)  # locked out: even the right code waits
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
    assert ws.list_users() == []


def test_two_claims_at_once_make_one_admin(ws):
    code = ws.setup_code()
    results: list = []
    gate = threading.Barrier(4)

    def claim(name: str) -> None:
        gate.wait()
        try:
            results.append(ws.claim_setup(code, name, "correct horse")[0]["username"])
        except (Conflict, Forbidden) as exc:
            results.append(type(exc))

    threads = [threading.Thread(target=claim, args=(f"admin{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    users = ws.list_users()
    assert len(users) == 1 and users[0]["role"] == "admin"
    assert [r for r in results if isinstance(r, str)] == [users[0]["username"]]


def test_serve_prints_a_code_that_claims_the_workspace(tmp_path):
    from test_cli_hardening import _free_port

    home = tmp_path / "ws"
    port = _free_port()
    p = subprocess.Popen([sys.executable, "-m", "assay.cli", "serve", "--port", str(port)],
                         env={**os.environ, "ASSAY_HOME": str(home)}, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not any("/setup" in x for x in lines):
            line = p.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        code = next(x.strip() for x in iter(p.stdout.readline, "") if x.strip())
        assert len(code) == 19 and code.count("-") == 3
        base = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 30
        while True:
            try:
                r = _post(base, code)
                break
            except httpx.TransportError:
                assert time.monotonic() < end
                time.sleep(0.1)
        assert r.status_code == 201, r.text
    finally:
        p.terminate()
        p.wait(20)
