"""What keeps the admin pages fast at a million tasks (issue 16), over HTTP
and on the workspace: several items in one request with the single item
route's access rules, the quality report and label errors kept between
requests (and recomputed when the project moves on), the dataset's item
count from its imports."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from assay.engine import reports as engine_reports
from assay.server import create_app
from factories import item_ids, text_dataset


def _user(ws, name, role):
    u, tok = ws.add_user(name, role)
    return {**u, "token": tok, "h": {"Authorization": f"Bearer {tok}"}}


@pytest.fixture
def two(ws):
    """Two datasets, each under a project; the reviewer is a member of the first only."""
    mine = text_dataset(ws, "mine", [f"mine {i}" for i in range(5)])
    theirs = text_dataset(ws, "theirs", [f"theirs {i}" for i in range(5)])
    p = ws.create_project("mine", mine["id"], ["pos", "neg"])
    ws.create_project("theirs", theirs["id"], ["pos", "neg"])
    rev, ann, admin = _user(ws, "rev", "reviewer"), _user(ws, "ann", "annotator"), _user(ws, "boss", "admin")
    ws.add_member(p["id"], rev["id"])
    ws.add_member(p["id"], ann["id"])
    with TestClient(create_app(ws, reclaim_interval=0)) as c:
        yield c, ws, item_ids(ws, mine["id"]), item_ids(ws, theirs["id"]), rev, ann, admin, p


def test_batch_items_sees_what_the_single_route_sees(two):
    c, ws, mine, theirs, rev, ann, admin, _ = two
    asked = [theirs[0], mine[2], mine[0], 999_999, mine[2]]
    r = c.get("/api/items?ids=" + ",".join(map(str, asked)), headers=rev["h"])
    assert r.status_code == 200, r.text
    body = r.json()
    # in the order asked, duplicates once; another project's item and a missing one look the same
    assert [it["id"] for it in body["items"]] == [mine[2], mine[0]]
    assert body["missing"] == [theirs[0], 999_999]
    assert body["items"][0] == c.get(f"/api/items/{mine[2]}", headers=rev["h"]).json()
    for i in body["missing"]:
        assert c.get(f"/api/items/{i}", headers=rev["h"]).status_code == 404
    # an annotator reads no item through either route, a member or not
    assert c.get(f"/api/items?ids={mine[0]}", headers=ann["h"]).status_code == 403
    assert c.get(f"/api/items/{mine[0]}", headers=ann["h"]).status_code == 403
    assert c.get(f"/api/items?ids={mine[0]}").status_code == 401
    # the admin reads every one
    r = c.get(f"/api/items?ids={theirs[0]},{mine[1]}", headers=admin["h"]).json()
    assert [it["id"] for it in r["items"]] == [theirs[0], mine[1]] and r["missing"] == []


def test_batch_items_refuses_bad_and_too_many_ids(two):
    c, ws, mine, *_, admin, _ = two
    for q in ("ids=", "ids=1,x", "ids=0", "ids=-3", "ids=" + ",".join(str(i) for i in range(1, 102))):
        r = c.get("/api/items?" + q, headers=admin["h"])
        assert r.status_code == 400, (q, r.text)
        assert r.json()["error"]["message"]
    assert c.get("/api/items", headers=admin["h"]).status_code in (400, 422)
    # 100 distinct ids is the cap, not over it
    r = c.get("/api/items?ids=" + ",".join(str(i) for i in range(1, 101)), headers=admin["h"])
    assert r.status_code == 200 and len(r.json()["items"]) + len(r.json()["missing"]) == 100


def _answer(ws, pid, users, label):
    for u in users:
        t = ws.next_task(pid, u)
        if t is not None:
            ws.submit(t["id"], u, label)


def test_quality_report_is_kept_until_the_project_moves_on(ws, monkeypatch):
    ds = text_dataset(ws, "d", [f"t {i}" for i in range(20)])
    p = ws.create_project("q", ds["id"], ["pos", "neg"], overlap=2)
    users = [ws.add_user(f"a{i}", "annotator")[0] for i in range(3)]
    for u in users:
        ws.add_member(p["id"], u["id"])
    _answer(ws, p["id"], users, "pos")
    calls = []
    real = engine_reports.quality_report
    monkeypatch.setattr(engine_reports, "quality_report", lambda *a, **k: calls.append(1) or real(*a, **k))
    first = ws.quality_report(p["id"])
    again = ws.quality_report(p["id"])
    assert len(calls) == 1 and again == first and first["answers"] == 3 and first["stale"] is False
    _answer(ws, p["id"], users, "neg")  # new answers: a new key, computed again
    after = ws.quality_report(p["id"])
    assert len(calls) == 2 and after["answers"] == 6
    assert after["computed_at"] >= first["computed_at"]
    ws.review(p["id"], item_ids(ws, ds["id"])[0], "neg", ws.add_user("r", "reviewer")[0])  # a review moves it too
    ws.quality_report(p["id"])
    assert len(calls) == 3


def test_a_slow_report_is_served_stale_while_a_fresh_one_is_computed(ws):
    ds = text_dataset(ws, "d", [f"t {i}" for i in range(20)])
    p = ws.create_project("q", ds["id"], ["pos", "neg"], overlap=2)
    users = [ws.add_user(f"a{i}", "annotator")[0] for i in range(3)]
    admin = _user(ws, "boss", "admin")
    for u in users:
        ws.add_member(p["id"], u["id"])
    _answer(ws, p["id"], users, "pos")
    ws.quality_inline_seconds = 0.0  # every report counts as slow
    with TestClient(create_app(ws, reclaim_interval=0)) as c:
        url = f"/api/projects/{p['id']}/quality"
        first = c.get(url, headers=admin["h"]).json()
        assert first["answers"] == 3 and first["stale"] is False  # nothing kept yet: computed now
        _answer(ws, p["id"], users, "neg")
        stale = c.get(url, headers=admin["h"]).json()
        assert stale["stale"] is True and stale["answers"] == 3 and stale["computed_at"] == first["computed_at"]
        deadline = time.time() + 20
        while (r := c.get(url, headers=admin["h"]).json())["stale"] and time.time() < deadline:
            time.sleep(0.05)
        assert r["stale"] is False and r["answers"] == 6
        # the workspace's own callers always get the current report
        assert ws.quality_report(p["id"])["answers"] == 6


def test_item_count_comes_from_the_imports(ws):
    ds = text_dataset(ws, "d", ["a", "b", "c"])
    assert ds["item_count"] == 3
    ws.import_dataframe(ds["id"], pd.DataFrame({"text": ["c", "d", "e", "e"]}))  # c and the second e skipped
    got = ws.get_dataset(ds["id"])
    assert got["item_count"] == 5 == len(item_ids(ws, ds["id"]))
    assert [d["item_count"] for d in ws.list_datasets()] == [5]
    assert ws.get_dataset(ws.create_dataset("empty")["id"])["item_count"] == 0


def test_a_sparse_filter_looks_at_a_bounded_window_per_request(two, monkeypatch):
    from assay.engine import datasets as engine_datasets

    c, ws, *_, admin, _ = two
    ds = text_dataset(ws, "sparse", [f"hay {i}" for i in range(7)] + ["the needle"] + [f"hay {i}" for i in range(7, 10)])
    ids = item_ids(ws, ds["id"])
    monkeypatch.setattr(engine_datasets, "SCAN_ROWS", 3)
    url = f"/api/datasets/{ds['id']}/items?q=needle&limit=5"
    pages, after = [], None
    while True:
        body = c.get(url + (f"&after={after}" if after else ""), headers=admin["h"]).json()
        pages.append(([it["id"] for it in body["items"]], body["next_after"], body["scanned_to"]))
        after = body["next_after"]
        if after is None:
            break
    # three items looked at per request: the needle (the 8th) turns up on the third, the end on the fourth
    assert pages == [([], ids[2], ids[2]), ([], ids[5], ids[5]), ([ids[7]], ids[8], ids[8]), ([], None, None)]
    assert body["scan_rows"] == 3
    # unfiltered pages are not bounded that way
    body = c.get(f"/api/datasets/{ds['id']}/items?limit=5", headers=admin["h"]).json()
    assert [it["id"] for it in body["items"]] == ids[:5] and body["next_after"] == ids[4] and body["scanned_to"] is None
    # nor is a filter whose page fills inside the window
    body = c.get(f"/api/datasets/{ds['id']}/items?q=hay&limit=2", headers=admin["h"]).json()
    assert [it["id"] for it in body["items"]] == ids[:2] and body["scanned_to"] is None


def test_expired_progress_counts_are_answered_while_a_recount_runs(ws, monkeypatch):
    ds = text_dataset(ws, "d", ["a", "b", "c"])
    p = ws.create_project("pp", ds["id"], ["x", "y"])
    u, _ = ws.add_user("pp-ann")
    ws.add_member(p["id"], u["id"])
    real = ws._count_progress
    monkeypatch.setattr(ws, "_count_progress", lambda proj: time.sleep(0.06) or real(proj))  # a "huge" project
    monkeypatch.setattr(ws, "progress_cache_min_tasks", 0)
    assert ws.progress(p["id"])["answers"] == 0  # counted in the request, kept
    _answer(ws, p["id"], [u], "x")
    expires, kept = ws._progress_cache[p["id"]]
    ws._progress_cache[p["id"]] = (time.monotonic() - 1, kept)  # its time is up
    assert ws.progress(p["id"])["answers"] == 0  # the kept counts, at once
    deadline = time.time() + 10
    while ws._progress_cache[p["id"]][1]["answers"] == 0 and time.time() < deadline:
        time.sleep(0.02)
    assert ws.progress(p["id"])["answers"] == 1  # the recount landed
    # long past its time (progress_stale_seconds), the count is made in the request again
    _answer(ws, p["id"], [u], "y")
    ws._progress_cache[p["id"]] = (time.monotonic() - ws.progress_stale_seconds - 1, ws._progress_cache[p["id"]][1])
    assert ws.progress(p["id"])["answers"] == 2


def test_final_label_summary_reads_only_items_that_can_have_a_label(ws):
    from assay.engine import resolver

    ds = text_dataset(ws, "d", [f"t {i}" for i in range(12)])
    p = ws.create_project("s", ds["id"], ["pos", "neg"])
    users = [ws.add_user(f"a{i}", "annotator")[0] for i in range(2)]
    for u in users:
        ws.add_member(p["id"], u["id"])
    _answer(ws, p["id"], users, "pos")
    ids = item_ids(ws, ds["id"])
    ws.import_gold(p["id"], [{"item_id": ids[-1], "label": "neg"}])
    p = ws.get_project(p["id"])
    every = [f for f in resolver.iter_final(ws.db, p)]
    some = list(resolver.iter_labelled(ws.db, p))
    assert len(every) == 12 and len(some) == 3  # two answered, one gold
    assert {f.item_id: f for f in every if f.label is not None} == {f.item_id: f for f in some}
    assert resolver.summary(ws.db, p) == {"items": 12, "labeled": 3, "sources": {"gold": 1, "majority": 2}}
