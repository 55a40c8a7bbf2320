"""The cached curation pass (issue 15): Workspace.curation_scan runs one
kNN pass in the background (assay.jobs.curation) and caches pairs and
scores beside the shards; duplicates()/outliers() read a fresh one (same
threshold, resp. same k) and compute again when the items changed; over
HTTP a dataset above INLINE_LIMIT answers 202 with the pass's status
instead of scanning in the request."""

from __future__ import annotations

import os
import threading
import time

import httpx
import numpy as np
import pytest

from assay.errors import InvalidInput
from assay.learn import curation as _learn
from factories import item_ids, text_dataset
from test_curation import META, vectors_dataset


def _no_inline(monkeypatch):
    """Make computing in the call fail: only a cached pass can answer."""
    def boom(*a, **kw):
        raise AssertionError("computed instead of read from the cache")
    monkeypatch.setattr(_learn, "scan", boom)


def test_scan_cached_used_when_fresh_and_by_variant(ws, monkeypatch):
    ds, ids = vectors_dataset(ws)
    inline_groups = ws.duplicates(ds["id"], threshold=0.98)
    inline_out = ws.outliers(ds["id"], k=5, top=None)
    assert ws.curation_scan(ds["id"], k=5, threshold=0.98, start=False)["state"] == "missing"
    assert ws.curation_cached(ds["id"]) is None
    st = ws.curation_scan(ds["id"], k=5, threshold=0.98, wait=True)
    assert (st["state"], st["count"], st["k"], st["threshold"], st["progress"]) == ("done", 60, 5, 0.98, 1.0)
    assert os.path.basename(st["path"]) == f"curation-{ds['id']}-k5-t0.98.npz"
    mtime = os.stat(st["path"]).st_mtime_ns
    again = ws.curation_scan(ds["id"], k=5, threshold=0.98)
    assert again["state"] == "done" and again["started"] is None  # nothing ran
    assert os.stat(st["path"]).st_mtime_ns == mtime
    with monkeypatch.context() as m:
        _no_inline(m)
        assert ws.duplicates(ds["id"], threshold=0.98) == inline_groups
        assert ws.outliers(ds["id"], k=5, top=None) == inline_out
        # another threshold or k is not served from this pass
        with pytest.raises(AssertionError, match="cache"):
            ws.duplicates(ds["id"], threshold=0.9)
        with pytest.raises(AssertionError, match="cache"):
            ws.outliers(ds["id"], k=6)
    # a second variant: each is found by its own key
    st2 = ws.curation_scan(ds["id"], k=6, threshold=0.9, wait=True)
    assert st2["state"] == "done" and st2["path"] != st["path"]
    assert ws.curation_cached(ds["id"], k=6)["threshold"] == 0.9
    assert ws.curation_cached(ds["id"], threshold=0.98)["k"] == 5
    assert ws.curation_cached(ds["id"], k=7) is None
    g = ws.duplicates(ds["id"], threshold=0.98)[0]
    assert g["items"] == ids[2:5] and len(g["similarities"]) == 3 and min(g["similarities"]) >= 0.98
    with pytest.raises(InvalidInput, match="threshold must be"):
        ws.curation_scan(ds["id"], threshold=2)
    with pytest.raises(InvalidInput, match="k must be"):
        ws.curation_scan(ds["id"], k=0)
    # one item with a vector: no pass to start, but its status can be asked for
    one = text_dataset(ws, "one", ["alone"])
    ws.vectors.add("given", np.array(item_ids(ws, one["id"])), np.ones((1, 16), np.float32), META)
    assert ws.curation_scan(one["id"], start=False)["state"] == "missing"
    with pytest.raises(InvalidInput, match="at least 2"):
        ws.curation_scan(one["id"])
    assert ws.duplicates(one["id"]) == []


def test_scan_recomputed_after_new_items_and_stale_never_served(ws, monkeypatch):
    ds, ids = vectors_dataset(ws)
    st = ws.curation_scan(ds["id"], wait=True)
    assert st["state"] == "done"
    # a new item of the dataset, with a vector that copies item 0: the cache is stale
    import pandas as pd

    ws.import_dataframe(ds["id"], pd.DataFrame({"text": ["pics copy of item 0"]}))
    new_id = max(item_ids(ws, ds["id"]))
    assert new_id not in ids
    v = ws.space_index("given").vectors(np.array([ids[0]]))
    ws.vectors.add("given", np.array([new_id]), v, META)
    assert ws.curation_scan(ds["id"], start=False)["state"] == "missing"
    assert ws.curation_cached(ds["id"]) is None
    # a stale file is never served: computing in the call is the only way
    with monkeypatch.context() as m:
        _no_inline(m)
        with pytest.raises(AssertionError, match="cache"):
            ws.duplicates(ds["id"])
    st2 = ws.curation_scan(ds["id"], wait=True)
    assert st2["state"] == "done" and st2["version"] != st["version"] and st2["path"] == st["path"]
    assert st2["count"] == 61
    assert [ids[0], ids[1], new_id] in [g["items"] for g in ws.duplicates(ds["id"], threshold=0.98)]


def test_scan_file_of_another_version_is_not_served(ws, monkeypatch):
    ds, _ids = vectors_dataset(ws)
    st = ws.curation_scan(ds["id"], wait=True)
    with np.load(st["path"]) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["version"] = np.array("0" * 32)
    with open(st["path"], "wb") as f:
        np.savez(f, **arrays)
    assert ws.curation_scan(ds["id"], start=False)["state"] == "missing"
    assert ws.curation_cached(ds["id"]) is None


def _wait_done(url, params, auth):
    for _ in range(200):
        body = httpx.get(url, params=params, headers=auth).json()
        if body["state"] in ("done", "failed"):
            return body
        time.sleep(0.05)
    raise AssertionError("the scan did not end")


def test_http_over_the_limit_answers_202_then_the_result(ws, monkeypatch):
    from _server import LiveServer

    from assay.server.routers import search as search_router

    ds, ids = vectors_dataset(ws)
    _, admin = ws.add_user("boss", "admin")
    _, ann = ws.add_user("ann", "annotator")
    monkeypatch.setattr(search_router, "INLINE_LIMIT", 10)
    go = threading.Event()  # the background pass waits for it: the 202 is seen for sure
    real_scan = _learn.scan

    def held_scan(*args, **kw):
        go.wait(30)
        return real_scan(*args, **kw)

    monkeypatch.setattr(_learn, "scan", held_scan)
    with LiveServer(ws) as srv:
        base = f"{srv.base}/api/datasets/{ds['id']}"
        auth = {"Authorization": f"Bearer {admin}"}
        params = {"threshold": 0.98, "k": 5}
        r = httpx.get(f"{base}/curation-scan", params=params, headers=auth)
        assert r.status_code == 200 and r.json()["state"] == "missing" and "path" not in r.json()
        r = httpx.get(f"{base}/duplicates", params=params, headers=auth)
        assert r.status_code == 202, r.text
        body = r.json()
        assert body["state"] in ("queued", "running", "done") and body["count"] == 60
        assert {"progress", "message", "k", "threshold"} <= body.keys() and "groups" not in body
        r = httpx.get(f"{base}/outliers", params=params, headers=auth)  # the same pass, still running
        assert r.status_code == 202 and r.json()["version"] == body["version"]
        go.set()
        done = _wait_done(f"{base}/curation-scan", params, auth)
        assert done["state"] == "done" and done["progress"] == 1.0
        r = httpx.get(f"{base}/duplicates", params={**params, "describe": "true"}, headers=auth)
        assert r.status_code == 200, r.text
        groups = r.json()["groups"]
        assert [g["items"] for g in groups] == [ids[2:5], ids[0:2]]
        m = groups[0]["members"][0]
        assert m["item_id"] == ids[2] and m["snippet"] == "pics item 2" and m["similarity"] >= 0.98
        assert m["tags"] == [] and m["content_url"].endswith(f"/{ids[2]}/content")
        r = httpx.get(f"{base}/outliers", params={**params, "top": 1}, headers=auth)
        assert r.status_code == 200 and r.json()["results"][0]["item_id"] == ids[-1]
        # another k: not cached, over the limit → 202 again; POST starts, then 200
        go.clear()
        assert httpx.get(f"{base}/outliers", params={"k": 3}, headers=auth).status_code == 202
        go.set()
        _wait_done(f"{base}/curation-scan", {"k": 3}, auth)
        assert httpx.post(f"{base}/curation-scan", params={"k": 3}, headers=auth).status_code == 200
        r = httpx.post(f"{base}/curation-scan", params={"threshold": 1.5}, headers=auth)
        assert r.status_code == 400 and "threshold must be" in r.text
        # under the limit the request answers itself, as before
        monkeypatch.setattr(search_router, "INLINE_LIMIT", 1000)
        r = httpx.get(f"{base}/duplicates", params={"threshold": 0.97, "k": 4}, headers=auth)
        assert r.status_code == 200 and r.json()["groups"][0]["items"] == ids[2:5]
        for call, path in ((httpx.get, "duplicates"), (httpx.get, "outliers"),
                           (httpx.get, "curation-scan"), (httpx.post, "curation-scan")):
            assert call(f"{base}/{path}", headers={"Authorization": f"Bearer {ann}"}).status_code == 403
            assert call(f"{base}/{path}").status_code == 401
