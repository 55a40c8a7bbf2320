"""Users, tokens, logins, datasets, projects and members, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text

from assay.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from factories import count, snapshot, task_rows, text_dataset


def _token_rows(ws):
    with ws.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(text("SELECT * FROM tokens ORDER BY id"))]


# ---------------------------------------------------------------- users and tokens


def test_tokens_authenticate_and_are_stored_hashed(ws):
    alice, tok_a = ws.add_user("alice", "annotator")
    bob, tok_b = ws.add_user("bob", "reviewer")
    assert alice == {"id": alice["id"], "username": "alice", "role": "annotator"}
    assert tok_a != tok_b and len(tok_a) >= 32
    assert ws.authenticate(tok_a) == {"id": alice["id"], "username": "alice", "role": "annotator"}
    assert ws.authenticate(tok_b)["username"] == "bob"

    extra = ws.create_token("alice", "laptop")
    assert extra not in (tok_a, tok_b)
    assert ws.authenticate(extra, cache_seconds=0)["id"] == alice["id"]

    rows = _token_rows(ws)
    assert len(rows) == 3
    stored = [str(v) for r in rows for v in r.values()]
    for raw in (tok_a, tok_b, extra):
        assert not any(raw in v for v in stored)  # the raw token is never stored
        assert hashlib.sha256(raw.encode()).hexdigest() in {r["token_hash"] for r in rows}
    assert {r["user_id"] for r in rows} == {alice["id"], bob["id"]}


def test_bad_tokens_are_unauthorized(ws):
    _, tok = ws.add_user("alice")
    for bad in (None, "", "asy_nope", tok + "x", tok[:-1], hashlib.sha256(tok.encode()).hexdigest()):
        with pytest.raises(Unauthorized):
            ws.authenticate(bad, cache_seconds=0)


def test_user_validation_and_duplicates(ws):
    ws.add_user("alice")
    before = snapshot(ws)
    with pytest.raises(Conflict, match="alice"):
        ws.add_user("alice", "admin")
    with pytest.raises(Conflict):
        ws.add_user("  alice  ")  # names are trimmed before the uniqueness check
    with pytest.raises(InvalidInput, match="role"):
        ws.add_user("carol", "superuser")
    for bad in ("", "   ", "x" * 201, None):
        with pytest.raises(InvalidInput):
            ws.add_user(bad)
    assert snapshot(ws) == before
    with pytest.raises(NotFound):
        ws.get_user("nobody")
    with pytest.raises(NotFound):
        ws.get_user(10_000)
    assert [u["username"] for u in ws.list_users()] == ["alice"]


def test_login_with_password(ws):
    u, _ = ws.add_user("alice", "admin", password="correct horse")
    user, tok = ws.login("alice", "correct horse")
    assert user == {"id": u["id"], "username": "alice", "role": "admin"}
    assert ws.authenticate(tok)["id"] == u["id"]
    with ws.db.read() as conn:
        stored = conn.execute(text("SELECT password_hash FROM users WHERE id = :i"), {"i": u["id"]}).scalar_one()
    assert "correct horse" not in stored and stored.startswith("scrypt$")

    n_tokens = count(ws, "tokens")
    for name, pw in (("alice", "wrong"), ("alice", ""), ("alice", "correct horse "), ("nobody", "x")):
        with pytest.raises(Unauthorized):
            ws.login(name, pw)
    assert count(ws, "tokens") == n_tokens  # failed logins issue nothing

    ws.add_user("nopass")  # a token-only user cannot log in with any password
    with pytest.raises(Unauthorized):
        ws.login("nopass", "")

    with pytest.raises(InvalidInput):
        ws.set_password("alice", "abc")
    ws.set_password("alice", "new secret")
    with pytest.raises(Unauthorized):
        ws.login("alice", "correct horse")
    assert ws.login("alice", "new secret")[0]["id"] == u["id"]


# ---------------------------------------------------------------- datasets


def test_datasets(ws):
    d = ws.create_dataset("  reviews ")
    assert d["name"] == "reviews" and d["item_count"] == 0
    assert ws.get_dataset("reviews")["id"] == d["id"]
    with pytest.raises(Conflict):
        ws.create_dataset("reviews")
    for bad in ("", " ", "x" * 201):
        with pytest.raises(InvalidInput):
            ws.create_dataset(bad)
    with pytest.raises(NotFound):
        ws.get_dataset(d["id"] + 1)
    assert ws.dataset("new", create=True)["name"] == "new"
    assert [x["name"] for x in ws.list_datasets()] == ["reviews", "new"]


# ---------------------------------------------------------------- projects


def test_project_gets_one_task_per_item(ws):
    ds = text_dataset(ws, "d", ["a", "b", "c"])
    p = ws.create_project("sentiment", ds["id"], ["pos", {"name": "neg", "description": "negative"}],
                          overlap=2, lease_seconds=60, show_fields=["lang"], instructions="Be quick")
    assert p["schema"] == {
        "kind": "single",
        "classes": [{"name": "pos", "description": ""}, {"name": "neg", "description": "negative"}],
        "instructions": "Be quick",
    }
    assert (p["overlap"], p["lease_seconds"], p["show_fields"]) == (2, 60, ["lang"])
    rows = task_rows(ws, p["id"])
    assert len(rows) == 3
    assert all((r.needed, r.answer_count, r.open_slots) == (2, 0, 2) for r in rows)
    assert ws.get_project("sentiment") == ws.get_project(p["id"])
    prog = ws.progress(p["id"])
    assert (prog["tasks"], prog["done"], prog["remaining"], prog["answers"]) == (3, 0, 3, 0)


def test_project_schema_and_bounds_are_checked(ws):
    ds = text_dataset(ws, "d", ["a", "b"])
    ws.create_project("taken", ds["id"], ["a", "b"])
    before = snapshot(ws)
    bad_calls = [
        dict(classes=[]),
        dict(classes=["a", "a"]),
        dict(classes=["a", " a "]),
        dict(classes=["a", {"name": "a", "description": "again"}]),
        dict(classes=["a", ""]),
        dict(classes=["a", {"description": "no name"}]),
        dict(classes=["a", 3]),
        dict(kind="cuboids"),
        dict(kind=""),
        dict(overlap=0),
        dict(overlap=101),
        dict(overlap=-1),
        dict(overlap=1.5),
        dict(overlap=True),
        dict(overlap="2"),
        dict(lease_seconds=4),
        dict(lease_seconds=7 * 86400 + 1),
        dict(name=""),
        dict(name="x" * 201),
    ]
    for kw in bad_calls:
        args = {"name": "new", "classes": ["a", "b"], **kw}
        name, classes = args.pop("name"), args.pop("classes")
        with pytest.raises(InvalidInput):
            ws.create_project(name, ds["id"], classes, **args)
        assert snapshot(ws) == before, kw
    with pytest.raises(Conflict, match="taken"):
        ws.create_project("taken", ds["id"], ["x", "y"])
    with pytest.raises(NotFound):
        ws.create_project("new", ds["id"] + 100, ["a", "b"])
    assert snapshot(ws) == before
    # The bounds themselves are fine.
    assert ws.create_project("one", ds["id"], ["a"], overlap=1)["overlap"] == 1
    assert ws.create_project("hundred", ds["id"], ["a"], overlap=100, kind="multi")["overlap"] == 100
    with pytest.raises(NotFound):
        ws.get_project("missing")


# ---------------------------------------------------------------- members


def test_members_and_project_visibility(ws):
    ds = text_dataset(ws, "d", ["a"])
    p1 = ws.create_project("one", ds["id"], ["a", "b"])
    p2 = ws.create_project("two", ds["id"], ["a", "b"])
    p3 = ws.create_project("three", ds["id"], ["a", "b"])
    admin, _ = ws.add_user("root", "admin")
    ann, _ = ws.add_user("ann")
    rev, _ = ws.add_user("rev", "reviewer")
    other, _ = ws.add_user("other")

    ws.add_member(p1["id"], ann["id"])
    ws.add_member(p3["id"], "ann")  # by name works too
    ws.add_member(p1["id"], ann["id"])  # twice is harmless
    ws.add_member(p2["id"], rev["id"])
    assert [m["username"] for m in ws.list_members(p1["id"])] == ["ann"]
    assert ws.list_members(p1["id"])[0] == {"user_id": ann["id"], "username": "ann", "role": "annotator"}

    assert [p["name"] for p in ws.list_projects(ann)] == ["one", "three"]
    assert [p["name"] for p in ws.list_projects(rev)] == ["two"]
    assert ws.list_projects(other) == []
    assert [p["name"] for p in ws.list_projects(admin)] == ["one", "two", "three"]

    assert ws.require_access(p1["id"], ann)["id"] == p1["id"]
    with pytest.raises(NotFound):
        ws.require_access(p2["id"], ann)  # not a member: reported as missing
    with pytest.raises(Forbidden):
        ws.require_access(p1["id"], ann, roles=("admin", "reviewer"))
    assert ws.require_access(p2["id"], rev, roles=("admin", "reviewer"))["id"] == p2["id"]
    assert ws.require_access(p2["id"], admin, roles=("admin",))["id"] == p2["id"]
    with pytest.raises(NotFound):
        ws.require_access(p2["id"] + 100, admin)

    assert ws.is_member(p1["id"], ann["id"])
    ws.remove_member(p1["id"], ann["id"])
    assert not ws.is_member(p1["id"], ann["id"])  # no stale cache after removal
    assert [p["name"] for p in ws.list_projects(ann)] == ["three"]
    with pytest.raises(NotFound):
        ws.require_access(p1["id"], ann)
    with pytest.raises(NotFound):
        ws.add_member(p1["id"], "ghost")
    with pytest.raises(NotFound):
        ws.add_member(p1["id"] + 100, ann["id"])
