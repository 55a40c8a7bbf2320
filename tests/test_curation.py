"""Curation over item embeddings (issue 15): near-duplicate groups, exact
duplicates by content hash, outlier / uniqueness / representativeness
scores — the pure algorithms (exact and HNSW search), Workspace.duplicates,
exact_duplicates, outliers and the ``assay duplicates`` / ``assay outliers``
commands, and GET /api/datasets/{id}/duplicates|outliers (staff only)."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from assay.errors import InvalidInput, NotFound
from assay.learn import curation
from assay.store.index import SpaceIndex, normalize
from assay.store.vectors import VectorStore
from factories import item_ids, run_cli, text_dataset

META = {"model": "given", "kind": "given"}


def planted(n=3000, d=32, seed=0):
    """Random unit vectors with 20 planted near-duplicate pairs (i, 100 + i),
    a group of 30 near-copies of row 300 (rows 200-229) and 5 outliers far
    from everything else (the rest sit around 10 centres)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(10, d))
    x = centres[rng.integers(10, size=n)] + 0.5 * rng.normal(size=(n, d))
    x[100:120] = x[0:20] + 0.03 * rng.normal(size=(20, d))
    x[200:230] = x[300] + 0.02 * rng.normal(size=(30, d))
    far = rng.normal(size=(5, d))
    x[-5:] = 10 * far / np.linalg.norm(far, axis=1, keepdims=True) - 3 * centres.mean(axis=0)
    return normalize(x)


def index_over(tmp_path, x, exact_below=10**9):
    vs = VectorStore(tmp_path / "vectors")
    for lo in range(0, len(x), 1000):
        vs.add("s", np.arange(lo, min(lo + 1000, len(x))) + 1, x[lo:lo + 1000], META)
    ix = SpaceIndex(vs, "s", exact_below=exact_below)
    ix.refresh()
    return ix


def truth_pairs(x, ids, threshold):
    s = x @ x.T
    a, b = np.nonzero(np.triu(s >= threshold, k=1))
    return {(int(ids[i]), int(ids[j])) for i, j in zip(a, b)}


@pytest.mark.parametrize("exact_below", [10**9, 500])  # exact search, then the HNSW graph
def test_planted_near_duplicates_found_whole(tmp_path, exact_below):
    x = planted()
    ix = index_over(tmp_path, x, exact_below)
    assert ix.mode == ("exact" if exact_below > 10**6 else "hnsw")
    ids = ix.keys
    a, b, s = curation.near_duplicate_pairs(ids, ix.vectors, ix.search, 0.95, batch=700)
    want = truth_pairs(x, ids, 0.95)
    assert len(want) >= 20 + 30 * 31 // 2  # the planted ones at least (the group: 31 items)
    got = set(zip(a.tolist(), b.tolist()))
    assert got == want  # recall 1.0, and nothing below the threshold
    assert np.all(s >= 0.95) and np.all(a < b)
    groups = curation.group_pairs(a, b, s)
    assert groups[0]["items"] == sorted([201 + i for i in range(30)] + [301])
    assert groups[0]["size"] == 31 and groups[0]["min_similarity"] >= 0.95
    pairs = [g["items"] for g in groups if g["size"] == 2]
    for i in range(20):
        assert [i + 1, i + 101] in pairs
    assert curation.near_duplicates(ids, ix.vectors, ix.search, 0.95, batch=700) == groups


def test_planted_outliers_ranked_on_top(tmp_path):
    x = planted()
    ix = index_over(tmp_path, x)
    s = curation.knn_scores(ix.keys, ix.vectors, ix.search, k=10, batch=512)
    top5 = set(s["ids"][np.argsort(-s["outlier"])[:5]].tolist())
    assert top5 == set(range(len(x) - 4, len(x) + 1))
    # the copies are not unique; representativeness averages 1 (in-degree / k)
    assert s["uniqueness"][200:230].max() < 0.05 < np.median(s["uniqueness"])
    assert abs(float(s["representativeness"].mean()) - 1.0) < 1e-6
    # one pass for both gives what the two separate passes give
    both = curation.scan(ix.keys, ix.vectors, ix.search, 0.95, 10, batch=512)
    pairs = curation.near_duplicate_pairs(ix.keys, ix.vectors, ix.search, 0.95)
    assert all(np.array_equal(u, v) for u, v in zip(both["pairs"], pairs))
    assert np.allclose(both["scores"]["outlier"], s["outlier"], atol=1e-6)
    assert np.allclose(both["scores"]["representativeness"], s["representativeness"])
    # brute-force check of the outlier score on a few rows
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    for r in (0, 7, len(x) - 1):
        want = np.mean(1 - np.sort(sim[r])[::-1][:10])
        assert abs(float(s["outlier"][r]) - want) < 1e-5


def test_exact_groups_and_bad_input():
    groups = curation.exact_groups([5, 6, 7, 8, 9], ["h1", "h2", "h1", "h3", "h1"])
    assert groups == [{"content_hash": "h1", "items": [5, 7, 9]}]
    with pytest.raises(InvalidInput, match="one hash per item"):
        curation.exact_groups([1, 2], ["a"])
    for t in (0, -0.1, 1.01, True, "0.9", None):
        with pytest.raises(InvalidInput, match="threshold must be"):
            curation.check_threshold(t)
    assert curation.check_threshold(1) == 1.0
    for k in (0, 1000, True, 2.5):
        with pytest.raises(InvalidInput, match="k must be"):
            curation.check_k(k)
    with pytest.raises(InvalidInput, match="unique"):
        curation.knn_scores([1, 1, 2], lambda i: np.eye(3)[: len(i)], lambda q, k: (None, None))


def vectors_dataset(ws, name="pics", n=60, seed=1):
    """A dataset of ``n`` items with given vectors: items 0/1 and 2/3/4 are
    near-copies, the last item lies far from the rest."""
    ds = text_dataset(ws, name, [f"{name} item {i}" for i in range(n)])
    ids = item_ids(ws, ds["id"])
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 16)) + 4 * np.eye(16)[0]
    x[1] = x[0] + 0.01 * rng.normal(size=16)
    x[3], x[4] = x[2] + 0.01 * rng.normal(size=16), x[2] + 0.01 * rng.normal(size=16)
    x[-1] = -20 * np.eye(16)[0]
    ws.vectors.add("given", np.array(ids), x.astype(np.float32), META)
    return ds, ids


def test_workspace_duplicates_outliers_and_exact(ws):
    ds, ids = vectors_dataset(ws)
    other, oids = vectors_dataset(ws, "other", n=10, seed=2)  # the same space: never mixed in
    groups = ws.duplicates(ds["id"], threshold=0.98)
    assert [g["items"] for g in groups] == [ids[2:5], ids[0:2]]
    assert groups[0]["size"] == 3 and 0.98 <= groups[0]["min_similarity"] <= groups[0]["max_similarity"] <= 1
    assert ws.duplicates(ds["id"], threshold=0.98, top=1) == groups[:1]
    assert all(set(g["items"]) <= set(oids) for g in ws.duplicates(other["id"], threshold=0.9))
    top = ws.outliers(ds["name"], k=5, top=3)
    assert top[0]["item_id"] == ids[-1] and len(top) == 3
    assert top[0]["outlier"] >= top[1]["outlier"] >= top[2]["outlier"]
    assert len(ws.outliers(ds["id"], k=5, top=None)) == len(ids)
    # exact duplicates: the same content in another dataset
    assert ws.exact_duplicates(ds["id"]) == []
    copy = text_dataset(ws, "copy", ["pics item 3", "something new"])
    cid = item_ids(ws, copy["id"])[0]
    got = ws.exact_duplicates(ds["id"])
    assert [[(x["item_id"], x["dataset_id"]) for x in g["items"]] for g in got] == \
        [[(ids[3], ds["id"]), (cid, copy["id"])]]
    assert len(got[0]["content_hash"]) == 64


def test_workspace_bad_input_is_clear(ws):
    ds, ids = vectors_dataset(ws)
    bare = text_dataset(ws, "bare", ["no vectors here", "nor here"])
    for t in (0, 1.5, -1):
        with pytest.raises(InvalidInput, match="threshold must be"):
            ws.duplicates(ds["id"], threshold=t)
    with pytest.raises(InvalidInput, match="top must be"):
        ws.duplicates(ds["id"], top=0)
    with pytest.raises(InvalidInput, match="k must be"):
        ws.outliers(ds["id"], k=0)
    with pytest.raises(NotFound, match="no vectors yet"):
        ws.duplicates(bare["id"])
    with pytest.raises(NotFound, match="no vectors yet"):
        ws.outliers(bare["id"])
    with pytest.raises(NotFound):
        ws.duplicates(ds["id"], space="never-embedded")
    with pytest.raises(NotFound):
        ws.outliers("no-such-dataset")


def test_cli_duplicates_and_outliers(home):
    from assay.workspace import Workspace

    with Workspace(home) as w:
        ds, ids = vectors_dataset(w)
        text_dataset(w, "copy", ["pics item 0"])
    r = run_cli("duplicates", "pics", "--threshold", "0.98", "--json")
    assert r.exit_code == 0, r.output
    assert [g["items"] for g in json.loads(r.output)] == [ids[2:5], ids[0:2]]
    r = run_cli("duplicates", "pics", "--threshold", "0.98")
    assert r.exit_code == 0 and "2 group(s)" in r.output and "   3 items" in r.output
    r = run_cli("duplicates", "pics", "--exact", "--json")
    assert r.exit_code == 0 and json.loads(r.output)[0]["items"][0]["item_id"] == ids[0]
    r = run_cli("outliers", "pics", "--top", "2", "-k", "5", "--json")
    rows = json.loads(r.output)
    assert r.exit_code == 0 and rows[0]["item_id"] == ids[-1] and rows[0]["snippet"] == "pics item 59"
    r = run_cli("outliers", "pics", "--top", "1")
    assert r.exit_code == 0 and f"item {ids[-1]}" in r.output
    r = run_cli("duplicates", "pics", "--threshold", "1.5")
    assert r.exit_code == 1 and "threshold must be" in r.output
    assert run_cli("outliers", "nope").exit_code == 1


def test_http_duplicates_and_outliers_staff_only(ws):
    from _server import LiveServer

    ds, ids = vectors_dataset(ws)
    text_dataset(ws, "copy", ["pics item 4"])
    _, admin = ws.add_user("boss", "admin")
    _, ann = ws.add_user("ann", "annotator")
    _, rev = ws.add_user("rev", "reviewer")
    with LiveServer(ws) as srv:
        base = f"{srv.base}/api/datasets/{ds['id']}"
        auth = {"Authorization": f"Bearer {admin}"}
        r = httpx.get(f"{base}/duplicates", params={"threshold": 0.98}, headers=auth)
        assert r.status_code == 200, r.text
        assert [g["items"] for g in r.json()["groups"]] == [ids[2:5], ids[0:2]]
        r = httpx.get(f"{base}/duplicates", params={"exact": "true"}, headers=auth)
        assert r.json()["groups"][0]["items"][0]["item_id"] == ids[4]
        r = httpx.get(f"{base}/outliers", params={"top": 2, "k": 5}, headers=auth)
        res = r.json()["results"]
        assert r.status_code == 200 and res[0]["item_id"] == ids[-1] and len(res) == 2
        assert res[0]["snippet"] == "pics item 59" and res[0]["content_url"].endswith(f"/{ids[-1]}/content")
        for path, params, msg in [("duplicates", {"threshold": 1.5}, "threshold must be"),
                                  ("duplicates", {"top": 0}, "top must be"),
                                  ("outliers", {"k": 0}, "k must be")]:
            r = httpx.get(f"{base}/{path}", params=params, headers=auth)
            assert (r.status_code, msg in r.text) == (400, True), r.text
        for path in ("duplicates", "outliers"):
            assert httpx.get(f"{base}/{path}", headers={"Authorization": f"Bearer {ann}"}).status_code == 403
            assert httpx.get(f"{base}/{path}").status_code == 401
            # a reviewer outside the dataset's projects does not see it
            assert httpx.get(f"{base}/{path}", headers={"Authorization": f"Bearer {rev}"}).status_code == 404
