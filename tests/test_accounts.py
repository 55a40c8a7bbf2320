"""Accounts under attack (issue 11, items 8, 9, 20, 25): login throttling with
backoff per username and per address, equal timing for known and unknown
names, a password minimum, normalised usernames, tokens that can be listed,
revoked and expire, log out, and an all-or-nothing user CLI. SQLite and
PostgreSQL; the HTTP parts over a real server."""

from __future__ import annotations

import statistics
import threading
import time

import httpx
import pytest
from sqlalchemy import text

from _server import LiveServer
from assay import Workspace
from assay.errors import Conflict, InvalidInput, NotFound, TooManyRequests, Unauthorized
from assay.store import Database, migrate
from factories import run_cli as run
from factories import snapshot, text_dataset

PW = "correct horse battery"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _login(base: str, username: str, password: str) -> httpx.Response:
    return httpx.post(base + "/api/auth/login", json={"username": username, "password": password}, timeout=30)


def _throttle_rows(ws) -> list:
    with ws.db.read() as conn:
        return conn.execute(text("SELECT key, failures, last_failure, locked_until FROM login_throttle "
                                 "ORDER BY key")).all()


# ---------------------------------------------------------------- 8. throttling


def test_login_backoff_per_username_over_http_shared_by_processes(ws, tmp_path):
    ws.accounts.max_failures = 3
    ws.accounts.backoff_seconds = 1.0
    ws.add_user("alice", "annotator", PW)
    with LiveServer(ws) as srv:
        for _ in range(3):
            r = _login(srv.base, "alice", "wrong password")
            assert r.status_code == 401
        # Locked now: even the right password waits, and the answer says how long.
        r = _login(srv.base, "alice", PW)
        assert r.status_code == 429, r.text
        assert r.json()["error"]["code"] == "too_many_requests"
        assert int(r.headers["Retry-After"]) == 1
        # Another server process on the same database sees the same lock.
        other = Workspace(tmp_path / "other", database_url=str(ws.db.engine.url.render_as_string(False)))
        try:
            other.accounts.max_failures = 3
            with pytest.raises(TooManyRequests):
                other.login("alice", PW)
        finally:
            other.close()
        time.sleep(1.1)
        r = _login(srv.base, "Alice", PW)  # any spelling of the name
        assert r.status_code == 200, r.text
    # A good login clears the username's counter; the address keeps its 3 real failures.
    assert [(r.key[:5], r.failures) for r in _throttle_rows(ws)] == [("addr:", 3)]


def test_backoff_doubles_up_to_the_cap_and_unknown_names_lock_too(ws):
    ws.accounts.max_failures = 2
    ws.accounts.backoff_seconds = 0.2
    ws.accounts.max_backoff_seconds = 0.8
    locks = []
    for _ in range(6):
        with pytest.raises(Unauthorized):
            ws.login("ghost", "whatever1")  # nobody is called ghost: locked all the same
        (row,) = _throttle_rows(ws)
        if row.locked_until:
            locks.append(round(row.locked_until - row.last_failure, 3))
            time.sleep(row.locked_until - time.time() + 0.02)
    assert locks == [0.2, 0.4, 0.8, 0.8, 0.8]
    with ws.db.read() as conn:
        n = conn.execute(text("SELECT count(*) FROM audit WHERE action = 'login.locked'")).scalar_one()
    assert n == 5
    ws.accounts.backoff_seconds = 60
    for _ in range(2):
        with pytest.raises((Unauthorized, TooManyRequests)):
            ws.login("ghost", "x")
    with pytest.raises(TooManyRequests) as e:
        ws.login("ghost", "x")
    assert e.value.details["retry_after"] >= 1


def test_backoff_per_client_address(ws):
    ws.accounts.max_failures_per_address = 4
    ws.accounts.backoff_seconds = 60
    ws.add_user("carol", "annotator", PW)
    for name in ("a", "b", "c", "d"):  # a different name each time: the address still counts
        with pytest.raises(Unauthorized):
            ws.login(name, "nope nope", address="10.0.0.1")
    with pytest.raises(TooManyRequests):
        ws.login("carol", PW, address="10.0.0.1")
    user, token = ws.login("carol", PW, address="10.0.0.2")  # another address is not punished
    assert ws.authenticate(token)["username"] == "carol"


def test_good_logins_are_not_counted_against_an_address(ws):
    ws.accounts.max_failures_per_address = 3
    ws.add_user("dora", "annotator", PW)
    for _ in range(10):
        ws.login("dora", PW, address="10.9.9.9")


def test_parallel_guesses_cannot_outrun_the_counter(ws):
    ws.accounts.max_failures = 3
    ws.accounts.backoff_seconds = 60
    ws.add_user("erin", "annotator", PW)
    with LiveServer(ws) as srv:
        codes: list[int] = []
        start = threading.Barrier(12)

        def guess(i: int) -> None:
            start.wait()
            codes.append(_login(srv.base, "erin", f"guess number {i}").status_code)

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(set(codes)) == [401, 429]
    assert codes.count(401) <= 3  # no more password checks than the limit, however many at once


def test_login_takes_the_same_time_for_known_and_unknown_names(ws):
    ws.accounts.max_failures = ws.accounts.max_failures_per_address = 10_000
    ws.add_user("frank", "annotator", PW)
    ws.add_user("tokenonly", "annotator")  # no password at all
    with LiveServer(ws) as srv, httpx.Client(base_url=srv.base, timeout=30) as c:
        times: dict[str, list[float]] = {"frank": [], "nobody-here": [], "tokenonly": []}
        for _ in range(2):  # warm up
            for name in times:
                c.post("/api/auth/login", json={"username": name, "password": "wrong password"})
        for _ in range(15):
            for name in times:  # interleaved: drift in machine load hits all three alike
                t0 = time.perf_counter()
                r = c.post("/api/auth/login", json={"username": name, "password": "wrong password"})
                times[name].append(time.perf_counter() - t0)
                assert r.status_code == 401
                assert r.json()["error"]["message"] == "wrong username or password"
    med = {k: statistics.median(v) for k, v in times.items()}
    assert med["frank"] > 0.005, med  # a real scrypt check happens
    for other in ("nobody-here", "tokenonly"):
        assert abs(med[other] - med["frank"]) <= 0.3 * med["frank"], med


# ---------------------------------------------------------------- 8. passwords and names


def test_password_minimum_length(ws, tmp_path, monkeypatch):
    before = snapshot(ws)
    for bad in ("", "short", "7 chars"):
        with pytest.raises(InvalidInput, match="at least 8 characters"):
            ws.add_user("gina", "annotator", bad)
    assert snapshot(ws) == before
    ws.add_user("gina", "annotator", "eight ch")
    with pytest.raises(InvalidInput, match="at least 8"):
        ws.set_password("gina", "1234567")
    # An existing account with a shorter password (made before the rule) still logs in.
    from assay import security

    with ws.db.write() as conn:
        conn.execute(text("UPDATE users SET password_hash = :h WHERE username = 'gina'"),
                     {"h": security.hash_password("old")})
    assert ws.login("gina", "old")[0]["username"] == "gina"
    # The minimum is a setting.
    monkeypatch.setenv("ASSAY_MIN_PASSWORD_LENGTH", "12")
    strict = Workspace(tmp_path / "strict", database_url=str(ws.db.engine.url.render_as_string(False)))
    try:
        with pytest.raises(InvalidInput, match="at least 12"):
            strict.add_user("hank", "annotator", "eleven char")
    finally:
        strict.close()
    with LiveServer(ws) as srv:
        admin, tok = ws.add_user("root", "admin")
        r = httpx.post(srv.base + "/api/users", json={"username": "ivan", "password": "short"}, headers=bearer(tok))
        assert r.status_code == 400 and "at least 8" in r.json()["error"]["message"]


@pytest.mark.parametrize("bad", ["jo\u200bhn", "jo\u202ehn", "jo\x00hn", "jo\thn", "jo\u2028hn", "jo\ufeffhn",
                                 "jo\u2066hn", "\u200d"])
def test_usernames_refuse_invisible_characters(ws, bad):
    before = snapshot(ws)
    with pytest.raises(InvalidInput, match="U\\+"):
        ws.add_user(bad)
    assert snapshot(ws) == before


def test_usernames_are_normalised_and_unique_whatever_the_case(ws):
    u, _ = ws.add_user("Alice", "annotator", PW)
    for twin in ("alice", "ALICE", " alice ", "\uff21lice", "aLiCe"):
        with pytest.raises(Conflict):
            ws.add_user(twin)
    # NFKC: a full-width name is stored as its plain form.
    v, _ = ws.add_user("\uff42\uff4f\uff42")
    assert v["username"] == "bob"
    assert ws.get_user("BOB")["id"] == v["id"] and ws.get_user("alice")["id"] == u["id"]
    assert ws.login("ALICE", PW)[0]["id"] == u["id"]
    with LiveServer(ws) as srv:
        _, tok = ws.add_user("root", "admin")
        r = httpx.post(srv.base + "/api/users", json={"username": "mal\u202elory"}, headers=bearer(tok))
        assert r.status_code == 400 and "U+202E" in r.json()["error"]["message"]
        r = httpx.post(srv.base + "/api/users", json={"username": "ALICE"}, headers=bearer(tok))
        assert r.status_code == 409


def test_migration_keeps_accounts_whose_names_only_differ_in_case(db_url):
    db = Database(db_url)
    try:
        migrate.upgrade(db, "0008")
        with db.write() as conn:
            conn.execute(text("INSERT INTO users (username, role, created_at, active) VALUES "
                              "('Bob', 'annotator', 0, true), ('bob', 'annotator', 0, true)"))
        migrate.upgrade(db)
    finally:
        db.dispose()
    import tempfile

    with Workspace(tempfile.mkdtemp(), database_url=db_url) as ws:
        assert ws.get_user("Bob")["username"] == "Bob" and ws.get_user("bob")["username"] == "bob"
        with pytest.raises(Conflict):
            ws.add_user("BOB")


# ---------------------------------------------------------------- 9. tokens


def test_tokens_list_without_secrets_and_revoke_at_once(ws):
    alice, default = ws.add_user("alice", "annotator")
    extra = ws.create_token("alice", "laptop", expires_days=30)
    assert ws.authenticate(extra)["id"] == alice["id"]  # now cached for 5 s
    listed = ws.list_tokens("alice")
    assert [t["name"] for t in listed] == ["default", "laptop"]
    assert set(listed[0]) == {"id", "user_id", "username", "name", "kind", "created_at", "last_used_at",
                              "expires_at", "revoked_at", "active"}
    assert listed[0]["expires_at"] is None and 29.9 * 86400 < listed[1]["expires_at"] - time.time() <= 30 * 86400
    assert not any(default in str(v) or extra in str(v) for t in listed for v in t.values())
    ws.revoke_token(listed[1]["id"])
    with pytest.raises(Unauthorized):
        ws.authenticate(extra)  # at once, although it was cached
    assert [t["name"] for t in ws.list_tokens("alice")] == ["default"]
    assert [t["revoked_at"] is not None for t in ws.list_tokens("alice", include_inactive=True)] == [False, True]
    assert ws.authenticate(default)["id"] == alice["id"]
    with pytest.raises(NotFound):
        ws.revoke_token(10_000)


def test_tokens_expire_even_when_cached(ws):
    ws.add_user("alice", "annotator")
    tok = ws.create_token("alice", "brief", expires_days=1.5 / 86400)
    assert ws.authenticate(tok, cache_seconds=60)["username"] == "alice"
    time.sleep(1.6)
    with pytest.raises(Unauthorized):
        ws.authenticate(tok)
    with pytest.raises(InvalidInput):
        ws.create_token("alice", "x", expires_days=0)


def test_password_login_gets_an_expiring_session_token(ws):
    ws.add_user("alice", "annotator", PW)
    _, tok = ws.login("alice", PW)
    (row,) = [t for t in ws.list_tokens("alice") if t["kind"] == "session"]
    assert abs(row["expires_at"] - (time.time() + 7 * 86400)) < 60  # ASSAY_TOKEN_TTL_DAYS default 7
    ws.accounts.token_ttl_days = 1.0 / 86400
    _, brief = ws.login("alice", PW)
    assert ws.authenticate(brief)["username"] == "alice"
    time.sleep(1.1)
    with pytest.raises(Unauthorized):
        ws.authenticate(brief)
    assert ws.authenticate(tok)["username"] == "alice"


def test_sessions_per_user_are_bounded(ws):
    from assay import security

    ws.add_user("alice", "annotator", PW)
    first = ws.login("alice", PW)[1]
    for _ in range(security.SESSION_LIMIT):
        ws.login("alice", PW)
    assert len([t for t in ws.list_tokens("alice") if t["kind"] == "session"]) == security.SESSION_LIMIT
    with pytest.raises(Unauthorized):
        ws.authenticate(first)  # the oldest session made room


def test_last_used_is_recorded(ws):
    _, tok = ws.add_user("alice", "annotator")
    assert ws.list_tokens("alice")[0]["last_used_at"] is None
    ws.authenticate(tok)
    end = time.time() + 10
    while ws.list_tokens("alice")[0]["last_used_at"] is None and time.time() < end:
        time.sleep(0.05)
    assert abs(ws.list_tokens("alice")[0]["last_used_at"] - time.time()) < 10


def test_logout_and_tokens_over_http(ws):
    ws.add_user("ann", "annotator", PW)
    bob, bob_tok = ws.add_user("bob", "annotator")
    _, admin_tok = ws.add_user("root", "admin")
    with LiveServer(ws) as srv, httpx.Client(base_url=srv.base, timeout=30) as c:
        tok = c.post("/api/auth/login", json={"username": "ann", "password": PW}).json()["token"]
        assert c.get("/api/me", headers=bearer(tok)).status_code == 200
        mine = c.get("/api/tokens", headers=bearer(tok)).json()["tokens"]
        assert {t["kind"] for t in mine} == {"api", "session"} and {t["username"] for t in mine} == {"ann"}
        assert tok not in str(mine)
        # An annotator cannot see, revoke or mint anybody else's tokens.
        bobs = ws.list_tokens("bob")[0]["id"]
        assert c.delete(f"/api/tokens/{bobs}", headers=bearer(tok)).status_code == 404
        assert c.post("/api/tokens", json={"user_id": bob["id"]}, headers=bearer(tok)).status_code == 403
        # (last_used_at is written by a background thread, so it may appear between the two reads)
        def ids(ts):
            return [(t["id"], t["username"], t["kind"]) for t in ts]

        assert ids(c.get("/api/tokens", params={"user_id": bob["id"]}, headers=bearer(tok)).json()["tokens"]) == \
            ids(mine)
        # Log out: that token stops working at once; the user's other tokens do not.
        r = c.post("/api/auth/logout", headers=bearer(tok))
        assert r.status_code == 204
        assert c.get("/api/me", headers=bearer(tok)).status_code == 401
        assert c.post("/api/auth/logout", headers=bearer(tok)).status_code == 401
        # An admin issues a token with an expiry and revokes another user's.
        r = c.post("/api/tokens", json={"user_id": bob["id"], "name": "ci", "expires_days": 2},
                   headers=bearer(admin_tok))
        assert r.status_code == 201
        new = r.json()["token"]
        assert c.get("/api/me", headers=bearer(new)).json()["username"] == "bob"
        everyone = c.get("/api/tokens", params={"all": "true"}, headers=bearer(admin_tok)).json()["tokens"]
        assert {"ann", "bob", "root"} <= {t["username"] for t in everyone}
        assert c.get("/api/me", headers=bearer(bob_tok)).status_code == 200  # cached now
        r = c.delete(f"/api/tokens/{bobs}", headers=bearer(admin_tok))
        assert r.status_code == 200 and r.json()["revoked_at"]
        assert c.get("/api/me", headers=bearer(bob_tok)).status_code == 401
        # A role change takes effect at once too.
        assert c.put(f"/api/users/{bob['id']}/role", json={"role": "reviewer"},
                     headers=bearer(admin_tok)).status_code == 200
        assert c.get("/api/me", headers=bearer(new)).json()["role"] == "reviewer"


# ---------------------------------------------------------------- 20, 25. the CLI







def test_cli_user_add_is_all_or_nothing(home):
    ws = Workspace(home)
    try:
        ds = text_dataset(ws, "d", ["a", "b"])
        ws.create_project("p", ds["id"], ["x", "y"])
        before = snapshot(ws)
        r = run("user", "add", "dave", "--project", "p", "--project", "nope")
        assert r.exit_code == 1 and "nope" in r.output
        assert snapshot(ws) == before  # no dave, no token, no membership
        r = run("user", "add", "dave", "--project", "p", "--password", "long enough")
        assert r.exit_code == 0, r.output
        token = r.output.strip().rsplit(" ", 1)[1]
        dave = ws.authenticate(token)
        assert ws.is_member(ws.get_project("p")["id"], dave["id"])
        r = run("user", "add", "mallory", "--password", "short")
        assert r.exit_code == 1 and "at least 8" in r.output
        # add-member: an unknown name adds nobody.
        ws.add_user("erin")
        before = snapshot(ws)
        r = run("project", "add-member", "p", "erin", "ghost")
        assert r.exit_code == 1 and snapshot(ws) == before
    finally:
        ws.close()


def test_cli_user_list_and_tokens(home):
    assert run("user", "add", "dave").exit_code == 0
    assert run("user", "add", "root", "--role", "admin").exit_code == 0
    r = run("user", "list")
    assert r.exit_code == 0 and "dave" in r.output and "root" in r.output and "admin" in r.output
    r = run("user", "token", "new", "DAVE", "--name", "ci", "--expires-days", "3")
    assert r.exit_code == 0, r.output
    token = r.output.strip().rsplit(" ", 1)[1]
    ws = Workspace(home)
    try:
        assert ws.authenticate(token)["username"] == "dave"
        r = run("user", "token", "list", "dave")
        assert r.exit_code == 0 and "ci" in r.output and "default" in r.output and token not in r.output
        tid = [t["id"] for t in ws.list_tokens("dave") if t["name"] == "ci"][0]
        r = run("user", "token", "revoke", str(tid))
        assert r.exit_code == 0, r.output
        revoked = time.monotonic()
        # Another process (this ws cached the token) stops accepting it within its 5 s cache.
        while time.monotonic() - revoked < 6:
            try:
                ws.authenticate(token)
            except Unauthorized:
                break
            time.sleep(0.2)
        assert time.monotonic() - revoked <= 5.5
        with pytest.raises(Unauthorized):
            ws.authenticate(token)
        assert "revoked" in run("user", "token", "list", "dave", "--all").output
        assert run("user", "token", "revoke", "99999").exit_code == 1
        r = run("user", "role", "dave", "reviewer")
        assert r.exit_code == 0 and ws.get_user("dave")["role"] == "reviewer"
    finally:
        ws.close()


def test_cli_unpause_names_the_user(home):
    ws = Workspace(home)
    try:
        ds = text_dataset(ws, "d", ["a", "b"])
        p = ws.create_project("p", ds["id"], ["x", "y"])
        alice, _ = ws.add_user("alice")
        ws.add_member(p["id"], alice["id"])
        r = run("project", "unpause", "p", "alice")
        assert r.exit_code == 1
        assert "'alice' is not paused" in r.output and f"user {alice['id']}" not in r.output
        with ws.db.write() as conn:
            conn.execute(text("INSERT INTO gold_stats (project_id, annotator_id, answers, correct, window_answers, "
                              "window_correct, paused, paused_at) VALUES (:p, :u, 5, 0, 5, 0, true, 0)"),
                         {"p": p["id"], "u": alice["id"]})
        r = run("project", "unpause", "p", "ALICE")
        assert r.exit_code == 0, r.output
        assert "alice may work on 'p' again" in r.output
    finally:
        ws.close()


def test_names_no_account_can_have_are_simply_unknown(ws):
    ws.add_user("alice", "annotator", PW)
    for name in ("ali\x00ce", "ali\ud800ce", "x" * 5000):
        with pytest.raises(NotFound):
            ws.get_user(name)
        with pytest.raises(Unauthorized):
            ws.login(name, PW)


def test_the_last_admin_cannot_be_demoted(ws):
    from assay.errors import Conflict

    ws.add_user("root", "admin", "correct horse battery")
    with pytest.raises(Conflict, match="only admin"):
        ws.set_role("root", "annotator")
    assert ws.get_user("root")["role"] == "admin"
    ws.add_user("second", "admin", "correct horse battery")
    assert ws.set_role("root", "reviewer")["role"] == "reviewer"
    with pytest.raises(Conflict):
        ws.set_role("second", "annotator")
