"""The embedding map (issue 15 part 6): background computation through
assay.jobs.curation, the cache beside the space's shards (reused, computed
again after new items), Workspace.embedding_map / embedding_map_points and
``assay map``."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

from assay.errors import InvalidInput, NotFound
from assay.jobs.curation import Registry
from factories import item_ids, run_cli, text_dataset

META = {"model": "given", "kind": "given"}


def clustered_dataset(ws, name="pics", n=60, seed=1):
    """``n`` items in 3 clusters of given vectors (item i in cluster i % 3)."""
    ds = text_dataset(ws, name, [f"{name} item {i}" for i in range(n)])
    ids = item_ids(ws, ds["id"])
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 16)) * 5
    x = centres[np.arange(n) % 3] + 0.2 * rng.normal(size=(n, 16))
    ws.vectors.add("given", np.array(ids), x.astype(np.float32), META)
    return ds, ids


def test_map_computed_cached_and_recomputed_after_new_items(ws):
    ds, ids = clustered_dataset(ws)
    assert ws.embedding_map(ds["id"], method="pca", start=False)["state"] == "missing"
    with pytest.raises(NotFound, match="not computed"):
        ws.embedding_map_points(ds["id"], method="pca")
    st = ws.embedding_map(ds["id"], method="pca", wait=True)
    assert st["state"] == "done" and st["count"] == 60 and st["space"] == "given"
    got_ids, xy = ws.embedding_map_points(ds["id"], method="pca")
    assert got_ids.tolist() == ids and xy.shape == (60, 2) and xy.dtype == np.float32
    # clusters stay apart in 2-D
    cl = np.arange(60) % 3
    cent = np.stack([xy[cl == c].mean(axis=0) for c in range(3)])
    assert (np.linalg.norm(xy[:, None] - cent[None], axis=2).argmin(axis=1) == cl).all()
    # reused: a second request is done at once, the file is not rewritten
    mtime = os.stat(st["path"]).st_mtime_ns
    again = ws.embedding_map(ds["id"], method="pca")
    assert again["state"] == "done" and again["started"] is None
    assert os.stat(st["path"]).st_mtime_ns == mtime
    # new vectors in the space (here another dataset's: the version follows the
    # shard list) make it stale, and the next request computes it again
    more = text_dataset(ws, "more", ["x"])
    extra = item_ids(ws, more["id"])
    ws.vectors.add("given", np.array(extra), np.ones((1, 16), np.float32), META)
    assert ws.embedding_map(ds["id"], method="pca", start=False)["state"] == "missing"
    st2 = ws.embedding_map(ds["id"], method="pca", wait=True)
    assert st2["state"] == "done" and st2["version"] != st["version"] and st2["count"] == 60
    assert ws.embedding_map_points(ds["id"], method="pca")[0].tolist() == ids


def test_map_umap_and_bad_input(ws):
    ds, ids = clustered_dataset(ws)
    bare = text_dataset(ws, "bare", ["a", "b"])
    st = ws.embedding_map(ds["name"], wait=True)
    assert st["state"] == "done" and st["method"] == "umap"
    assert ws.embedding_map_points(ds["name"])[1].shape == (60, 2)
    with pytest.raises(InvalidInput, match="method"):
        ws.embedding_map(ds["id"], method="tsne")
    with pytest.raises(NotFound, match="no vectors yet"):
        ws.embedding_map(bare["id"])
    with pytest.raises(NotFound):
        ws.embedding_map(ds["id"], space="never-embedded")


def test_registry_runs_once_reports_failure_and_retries():
    reg = Registry()
    gate, calls, stored = threading.Event(), [], {}

    def compute(progress):
        calls.append(1)
        progress(0.5)
        gate.wait(5)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return 7

    def cached():
        return stored.get("v")

    def store(r):
        stored["v"] = "v1"

    key = ("map", 1, "s", "pca")
    first = reg.start(key, "v1", cached, compute, store)
    assert first["state"] in ("queued", "running")
    assert reg.start(key, "v1", cached, compute, store)["state"] in ("queued", "running")  # not twice
    gate.set()
    reg.wait(key, 5)
    st = reg.status(key, "v1", cached)
    assert st["state"] == "failed" and st["message"] == "boom" and len(calls) == 1
    reg.start(key, "v1", cached, compute, store)  # asked again after a failure: runs again
    reg.wait(key, 5)
    assert reg.status(key, "v1", cached)["state"] == "done" and stored["v"] == "v1" and len(calls) == 2
    assert reg.start(key, "v1", cached, compute, store)["state"] == "done" and len(calls) == 2


def test_cli_map(home):
    from assay.workspace import Workspace

    with Workspace(home) as w:
        clustered_dataset(w)
    r = run_cli("map", "pics", "--method", "pca")
    assert r.exit_code == 0, r.output
    assert "60 items" in r.output and "map-" in r.output
    r = run_cli("map", "pics", "--method", "pca", "--json")
    assert r.exit_code == 0 and json.loads(r.output)["state"] == "done"
    assert run_cli("map", "pics", "--method", "nope").exit_code == 1


def test_http_map_flow_colours_and_staff_only(ws):
    import time

    import httpx
    from _server import LiveServer

    from factories import answer_item, predict

    ds, ids = clustered_dataset(ws)
    _, admin = ws.add_user("boss", "admin")
    ann_user, ann = ws.add_user("ann", "annotator")
    p = ws.create_project("p", ds["id"], ["cat", "dog"])
    ws.add_member(p["id"], ann_user["id"])
    answer_item(ws, p["id"], ids[0], ann_user, "cat")
    answer_item(ws, p["id"], ids[1], ann_user, "dog")
    ws.create_slice(ds["id"], "firsts", items=ids[:5])
    with LiveServer(ws) as srv:
        base = f"{srv.base}/api/datasets/{ds['id']}/map"
        auth = {"Authorization": f"Bearer {admin}"}
        assert httpx.get(base, params={"method": "pca"}, headers=auth).json()["state"] == "missing"
        assert httpx.get(f"{base}/points", params={"method": "pca"}, headers=auth).status_code == 404
        r = httpx.post(base, params={"method": "pca"}, headers=auth)
        assert r.status_code in (200, 202) and r.json()["count"] == 60 and "path" not in r.json()
        for _ in range(100):
            if httpx.get(base, params={"method": "pca"}, headers=auth).json()["state"] == "done":
                break
            time.sleep(0.1)
        assert httpx.post(base, params={"method": "pca"}, headers=auth).status_code == 200  # cached
        r = httpx.get(f"{base}/points", params={"method": "pca", "project": p["id"]}, headers=auth)
        assert r.status_code == 200, r.text
        body = r.json()
        _, xy = ws.embedding_map_points(ds["id"], method="pca")
        assert body["ids"] == ids and np.allclose(body["x"], xy[:, 0], atol=1e-4)
        assert body["slices"] == {"firsts": [0, 1, 2, 3, 4]}
        assert [body["classes"][body["label"][i]] for i in (0, 1)] == ['"cat"', '"dog"']
        assert body["label"][2] == -1 and body["confidence"][2] is None and body["confidence"][0] > 0
        # no model predictions yet: label errors cannot be scored, so no error colour is sent
        with pytest.raises(InvalidInput, match="prediction"):
            ws.label_errors(p["id"], limit=None)
        assert "errors" not in body
        # with predictions (item 0 answered cat, the model sure of dog): flagged items are sent
        answer_item(ws, p["id"], ids[2], ann_user, "cat")
        answer_item(ws, p["id"], ids[3], ann_user, "dog")
        predict(ws, p["id"], {ids[0]: ("dog", 0.02), ids[1]: ("dog", 0.1), ids[2]: ("cat", 0.9),
                              ids[3]: ("dog", 0.15)})
        want = {ids.index(r["item_id"]) for r in ws.label_errors(p["id"], limit=None)["items"] if r["flagged"]}
        body = httpx.get(f"{base}/points", params={"method": "pca", "project": p["id"]}, headers=auth).json()
        assert set(body["errors"]) == want and 0 in want
        r = httpx.post(base, params={"method": "tsne"}, headers=auth)
        assert r.status_code == 400 and "method" in r.text
        for call in (httpx.get, httpx.post):
            assert call(base, headers={"Authorization": f"Bearer {ann}"}).status_code == 403
            assert call(base).status_code == 401
        assert httpx.get(f"{base}/points", headers={"Authorization": f"Bearer {ann}"}).status_code == 403
