"""The audit log (issue 11, item 17): every change worth answering for leaves
one record — who, what, when, to what — written in the change's own
transaction; admins read it over HTTP and the CLI; it is append-only, down
to the database. SQLite and PostgreSQL; HTTP over a real server."""

from __future__ import annotations

import getpass
import json
import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import exc, text
from typer.testing import CliRunner

from _server import LiveServer
from assay import Workspace
from assay.cli import app
from assay.errors import InvalidInput, NotFound
from factories import item_ids, text_dataset

SRC = Path(__file__).resolve().parents[1] / "src" / "assay"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def records(ws, **where) -> list[dict]:
    rows, _ = ws.audit_log(limit=1000, **where)
    return rows


def test_changes_over_http_are_recorded_with_actor_and_address(ws):
    ds = text_dataset(ws, "d", ["one", "two", "three"])
    p = ws.create_project("p", ds["id"], ["x", "y"])
    first, second = item_ids(ws, ds["id"])[:2]
    _, admin_tok = ws.add_user("root", "admin")
    h = bearer(admin_tok)
    with LiveServer(ws) as srv, httpx.Client(base_url=srv.base, timeout=30, headers=h) as c:
        r = c.post("/api/users", json={"username": "ann", "password": "long enough"})
        assert r.status_code == 201
        ann = r.json()["user"]
        assert c.put(f"/api/users/{ann['id']}/role", json={"role": "reviewer"}).status_code == 200
        assert c.put(f"/api/users/{ann['id']}/role", json={"role": "annotator"}).status_code == 200
        assert c.post(f"/api/projects/{p['id']}/members", json={"username": "ann"}).status_code == 201
        assert c.patch(f"/api/projects/{p['id']}/settings", json={"gold_rate": 0.2}).status_code == 200
        assert c.post(f"/api/projects/{p['id']}/gold",
                      json={"items": [{"item_id": first, "label": "x"}]}).status_code == 201
        assert c.delete(f"/api/projects/{p['id']}/gold/{first}").status_code == 204
        assert c.post(f"/api/projects/{p['id']}/items/{second}/review", json={"label": "y"}).status_code == 200
        with ws.db.write() as conn:
            conn.execute(text("INSERT INTO gold_stats (project_id, annotator_id, answers, correct, window_answers,"
                              " window_correct, paused, paused_at) VALUES (:p, :u, 5, 0, 5, 0, true, 0)"),
                         {"p": p["id"], "u": ann["id"]})
        assert c.post(f"/api/projects/{p['id']}/annotators/{ann['id']}/unpause").status_code == 200
        assert c.get(f"/api/projects/{p['id']}/export", params={"format": "csv"}).status_code == 200
        r = c.post(f"/api/datasets/{ds['id']}/import", files={"file": ("more.csv", b"text\nfour\n", "text/csv")})
        assert r.status_code == 200, r.text
        r = c.post("/api/tokens", json={"user_id": ann["id"], "name": "ci"})
        assert r.status_code == 201
        tid = [t["id"] for t in ws.list_tokens("ann") if t["name"] == "ci"][0]
        assert c.delete(f"/api/tokens/{tid}").status_code == 200
        assert c.delete(f"/api/projects/{p['id']}/members/{ann['id']}").status_code == 204
        r = c.post("/api/projects", json={"name": "q", "dataset_id": ds["id"],
                                          "schema": {"kind": "single", "classes": ["a", "b"]}})
        assert r.status_code == 201, r.text
        got = c.get("/api/audit", params={"limit": 1000}).json()["records"]
    by_root = [r for r in got if r["actor"] == "root"]
    assert [r["action"] for r in reversed(by_root)] == [
        "user.create", "token.create", "user.role", "user.role", "member.add", "project.update", "gold.import",
        "gold.remove", "review.decide", "pause.lift", "export", "dataset.import", "token.create",
        "token.revoke", "member.remove", "project.create",
    ]
    assert {r["actor_id"] for r in by_root} == {ws.get_user("root")["id"]}
    assert {r["address"] for r in by_root} == {"127.0.0.1"}
    role = [r for r in by_root if r["action"] == "user.role"][-1]  # the first change (newest first)
    assert (role["target_kind"], role["target_id"], role["details"]) == (
        "user", ann["id"], {"from": "annotator", "to": "reviewer"})
    lifted = [r for r in by_root if r["action"] == "pause.lift"][0]
    assert (lifted["target_id"], lifted["details"]["username"]) == (p["id"], "ann")
    assert [r["details"]["added"] for r in by_root if r["action"] == "dataset.import"] == [1]
    assert [r["details"]["format"] for r in by_root if r["action"] == "export"] == ["csv"]
    # What the test itself did through the Python API is recorded as "local".
    local = {r["action"] for r in got if r["actor"] == "local"}
    assert {"dataset.import", "project.create", "user.create", "token.create"} <= local
    assert all(r["created_at"] > 0 for r in got)


def test_a_change_that_fails_leaves_no_record(ws):
    ds = text_dataset(ws, "d", ["one", "two"])
    p = ws.create_project("p", ds["id"], ["x", "y"])
    ws.add_user("root", "admin")
    n = len(records(ws))
    with pytest.raises(NotFound):
        ws.add_user("dave", projects=[p["id"], "nope"])
    with pytest.raises(InvalidInput):
        ws.review(p["id"], item_ids(ws, ds["id"])[0], "not a class", "root")
    with pytest.raises(InvalidInput):
        ws.import_gold(p["id"], [{"item_id": item_ids(ws, ds["id"])[0], "label": "zzz"}])
    with pytest.raises(InvalidInput):
        ws.update_project(p["id"], gold_rate=7)
    assert len(records(ws)) == n
    # And a user made with projects is one transaction: user, token and memberships, recorded together.
    ws.add_user("dave", projects=["p"])
    assert [r["action"] for r in records(ws)[:3]] == ["member.add", "token.create", "user.create"]


def test_the_log_is_append_only_in_the_database(ws):
    ws.add_user("root", "admin")
    before = records(ws)
    assert before
    statements = ["UPDATE audit SET action = 'nothing'", "DELETE FROM audit",
                  f"DELETE FROM audit WHERE id = {before[0]['id']}"]
    if not ws.db.is_sqlite:
        statements.append("TRUNCATE audit")
    for sql in statements:
        with pytest.raises(exc.DBAPIError, match="append-only"):
            with ws.db.write() as conn:
                conn.execute(text(sql))
    assert records(ws) == before


def test_no_code_path_updates_or_deletes_records():
    pattern = re.compile(r"(UPDATE\s+audit\b|DELETE\s+FROM\s+audit\b|TRUNCATE\s+audit\b|"
                         r"\baudit\s*\.\s*(update|delete)\s*\()", re.I)
    hits = [f"{p.relative_to(SRC)}: {m.group(0)}" for p in SRC.rglob("*.py") if "migrations" not in p.parts
            for m in pattern.finditer(p.read_text())]
    assert hits == []


def test_audit_api_is_for_admins_with_keyset_pages_and_filters(ws):
    _, admin_tok = ws.add_user("root", "admin")
    ann, ann_tok = ws.add_user("ann")
    for i in range(4):
        ws.create_token("ann", f"t{i}")
    everything = records(ws)
    with LiveServer(ws) as srv, httpx.Client(base_url=srv.base, timeout=30) as c:
        assert c.get("/api/audit").status_code == 401
        assert c.get("/api/audit", headers=bearer(ann_tok)).status_code == 403
        seen, before = [], None
        while True:
            params = {"limit": 2, **({"before": before} if before else {})}
            page = c.get("/api/audit", params=params, headers=bearer(admin_tok)).json()
            assert len(page["records"]) <= 2
            seen += page["records"]
            before = page["next_before"]
            if before is None:
                break
        assert [r["id"] for r in seen] == [r["id"] for r in everything]
        assert [r["id"] for r in seen] == sorted((r["id"] for r in seen), reverse=True)
        tokens = c.get("/api/audit", params={"action": "token."}, headers=bearer(admin_tok)).json()["records"]
        assert len(tokens) == 6 and {r["action"] for r in tokens} == {"token.create"}
        exact = c.get("/api/audit", params={"action": "user.create"}, headers=bearer(admin_tok)).json()["records"]
        assert [r["target"] for r in exact] == ["ann", "root"]
        about_ann = c.get("/api/audit", params={"target_kind": "user", "target_id": ann["id"]},
                          headers=bearer(admin_tok)).json()["records"]
        assert [r["action"] for r in about_ann] == ["user.create"]
        for bad in ({"limit": 0}, {"limit": 5000}, {"before": "x"}, {"before": 2**70}):
            assert c.get("/api/audit", params=bad, headers=bearer(admin_tok)).status_code in (400, 422)


runner = CliRunner()


def test_cli_records_its_user_and_reads_the_log(tmp_path, db_url, monkeypatch):
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("ASSAY_DATABASE_URL", db_url)
    data = tmp_path / "d.csv"
    data.write_text("text\ngood\nbad\n")
    for args in (["import", "d", str(data)], ["project", "create", "p", "--dataset", "d", "--classes", "a,b"],
                 ["user", "add", "dave", "--project", "p"], ["export", "p", str(tmp_path / "out.jsonl")]):
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
    me = f"cli:{getpass.getuser()}"
    r = runner.invoke(app, ["audit", "--json"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.output.splitlines()]
    assert [x["action"] for x in reversed(rows)] == ["dataset.import", "project.create", "user.create",
                                                      "token.create", "member.add", "export"]
    assert {x["actor"] for x in rows} == {me}
    r = runner.invoke(app, ["audit", "--action", "export"])
    assert r.exit_code == 0 and "export" in r.output and me in r.output and "out.jsonl" in r.output
    r = runner.invoke(app, ["audit", "--actor", me, "--limit", "2"])
    assert r.exit_code == 0 and len(r.stdout.strip().splitlines()) == 2
    with Workspace(tmp_path / "ws", database_url=db_url) as ws:
        assert len(records(ws, actor=me)) == 6
