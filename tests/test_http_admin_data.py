"""HTTP routes behind the browser's data page (issue 16 part 2), on SQLite
and PostgreSQL: the items' keyset pages with a text filter (``q``) and
metadata filters (``meta.KEY=VALUE``), and a dataset's imports with their
provenance. Annotators get 403; a bad upload changes nothing."""

from __future__ import annotations

import pandas as pd
from fastapi.testclient import TestClient

from assay.server import create_app
from factories import item_ids, snapshot, zip_bytes
from test_api import assert_error, bearer


def _walk(c, path: str, params: dict, h: dict) -> list[dict]:
    """Every page of a keyset listing, following next_after."""
    seen, after = [], None
    for _ in range(100):
        r = c.get(path, params=params | ({"after": after} if after is not None else {}), headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) <= params["limit"]
        seen += body["items"]
        after = body["next_after"]
        if after is None:
            return seen
        assert after == seen[-1]["id"]
    raise AssertionError("paging did not end")


def test_items_filter_by_text_and_metadata(ws):
    ds = ws.create_dataset("mixed")
    texts = [f"Review {i}: {'great' if i % 3 == 0 else 'poor'} 100% value_{i}" for i in range(40)]
    df = pd.DataFrame({"text": texts, "lang": ["en" if i % 2 else "de" for i in range(40)],
                       "stars": [i % 5 for i in range(40)]})
    ws.import_dataframe(ds["id"], df, source="crawl")
    ids = item_ids(ws, ds["id"])
    _, tok = ws.add_user("root", "admin")
    _, rtok = ws.add_user("rev", "reviewer")
    _, atok = ws.add_user("ann", "annotator")
    path = f"/api/datasets/{ds['id']}/items"
    with TestClient(create_app(ws, reclaim_interval=0)) as c:
        h = bearer(tok)
        got = _walk(c, path, {"limit": 4, "q": "GREAT"}, h)
        assert [i["id"] for i in got] == [ids[i] for i in range(40) if i % 3 == 0]
        got = _walk(c, path, {"limit": 3, "meta.lang": "en", "q": "poor"}, h)
        assert [i["id"] for i in got] == [ids[i] for i in range(40) if i % 2 and i % 3]
        got = _walk(c, path, {"limit": 7, "meta.stars": "4"}, h)  # a number, compared as text
        assert [i["id"] for i in got] == [ids[i] for i in range(40) if i % 5 == 4]
        # LIKE wildcards in q are literal characters
        assert [i["id"] for i in _walk(c, path, {"limit": 50, "q": "100%"}, h)] == ids
        assert [i["id"] for i in _walk(c, path, {"limit": 50, "q": "value_1"}, h)] == \
            [ids[i] for i in range(40) if str(i).startswith("1")]
        assert _walk(c, path, {"limit": 50, "q": "value%1"}, h) == []
        assert _walk(c, path, {"limit": 50, "meta.nope": "x"}, h) == []
        assert_error(c.get(path, params={"meta.bad'key": "x"}, headers=h), 400)
        assert_error(c.get(path, params={f"meta.k{i}": "x" for i in range(6)}, headers=h), 400)
        assert_error(c.get(path, params={"q": "x" * 201}, headers=h), 422)
        assert_error(c.get(path, params={"q": "x"}, headers=bearer(atok)), 403)
        # a reviewer sees only datasets of their projects
        assert_error(c.get(path, params={"q": "x"}, headers=bearer(rtok)), 404)


def test_imports_list_provenance_and_kind(ws):
    ds = ws.create_dataset("prov")
    _, tok = ws.add_user("root", "admin")
    _, atok = ws.add_user("ann", "annotator")
    png = _png()
    with TestClient(create_app(ws, reclaim_interval=0)) as c:
        h = bearer(tok)
        r = c.post(f"/api/datasets/{ds['id']}/import", headers=h,
                   files={"file": ("rows.csv", b"text,lang\nhello,en\nworld,de\n", "text/csv")},
                   data={"source": "survey 2024", "license": "CC-BY-4.0", "consent": "opt-in"})
        assert r.status_code == 200 and r.json()["added"] == 2, r.text
        r = c.post(f"/api/datasets/{ds['id']}/import", headers=h,
                   files={"file": ("pics.zip", zip_bytes({"a/one.png": png}), "application/zip")})
        assert r.status_code == 200 and r.json()["added"] == 1, r.text
        before = snapshot(ws)
        bad = c.post(f"/api/datasets/{ds['id']}/import", headers=h,
                     files={"file": ("bad.csv", b"title,lang\nx,en\n", "text/csv")})
        err = assert_error(bad, 400)
        assert "text" in err["message"]
        assert snapshot(ws) == before  # nothing added, no import recorded
        r = c.get(f"/api/datasets/{ds['id']}/imports", headers=h)
        assert r.status_code == 200
        imps = r.json()["imports"]
        assert [(i["kind"], i["added"], i["source"], i["license"], i["consent"]) for i in imps] == [
            ("image", 1, "upload:pics.zip", None, None),
            ("text", 2, "survey 2024", "CC-BY-4.0", "opt-in")]
        assert imps[1]["source_uri"] == "upload:rows.csv"
        assert_error(c.get(f"/api/datasets/{ds['id']}/imports", headers=bearer(atok)), 403)
        assert_error(c.get("/api/datasets/999/imports", headers=h), 404)


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def test_big_import_refreshes_postgres_statistics(ws):
    """After an import of ANALYZE_AFTER items or more, PostgreSQL has fresh
    statistics for items (else it plans keyset pages as whole-dataset scans)."""
    from sqlalchemy import text

    from assay.formats.ingest import ANALYZE_AFTER

    ds = ws.create_dataset("big")
    ws.import_dataframe(ds["id"], pd.DataFrame({"text": [f"t{i}" for i in range(ANALYZE_AFTER)]}))
    if ws.db.is_sqlite:
        return  # SQLite plans the (dataset_id, id) index walk without statistics
    with ws.db.read() as conn:
        rows = conn.execute(text("SELECT reltuples FROM pg_class WHERE relname = 'items'")).scalar_one()
    assert rows >= ANALYZE_AFTER  # the planner's row estimate was refreshed (-1/0 before any ANALYZE)
