"""HTTP routes behind the browser's project wizard (issue 16 part 3), on
SQLite and PostgreSQL: the settings schema is derived from ProjectSettings
(every field, with its default and whether it may change); annotators get 403."""

from __future__ import annotations

from fastapi.testclient import TestClient

from assay.engine.settings import CHANGEABLE, CREATE_FIELDS, ProjectSettings
from assay.server import create_app
from test_api import bearer


def test_settings_schema_lists_every_setting(ws):
    _, tok = ws.add_user("root", "admin")
    _, atok = ws.add_user("ann", "annotator")
    with TestClient(create_app(ws, reclaim_interval=0)) as c:
        assert c.get("/api/settings/schema", headers=bearer(atok)).status_code == 403
        r = c.get("/api/settings/schema", headers=bearer(tok))
        assert r.status_code == 200, r.text
        rows = {row["name"]: row for row in r.json()}
    assert list(rows) == list(ProjectSettings.model_fields)
    for name, f in ProjectSettings.model_fields.items():
        assert rows[name]["default"] == (list(f.default) if isinstance(f.default, tuple) else f.default)
        assert rows[name]["description"] == f.description
        assert rows[name]["changeable"] == (name in CHANGEABLE)
        assert rows[name]["at_create"] == (name in CREATE_FIELDS)
    assert rows["overlap"]["schema"].get("minimum") is not None or rows["overlap"]["schema"].get("exclusiveMinimum") is not None


def test_kinds_lists_the_registry(ws):
    from assay import kinds
    _, tok = ws.add_user("root", "admin")
    _, atok = ws.add_user("ann", "annotator")
    with TestClient(create_app(ws, reclaim_interval=0)) as c:
        assert c.get("/api/kinds", headers=bearer(atok)).status_code == 403
        r = c.get("/api/kinds", headers=bearer(tok))
        assert r.status_code == 200, r.text
    rows = r.json()
    assert [k["name"] for k in rows] == kinds.names()
    for row in rows:
        assert row["description"] and row["title"] == kinds.get(row["name"]).title
