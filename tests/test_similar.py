"""Similarity search: the index layer (exact vs usearch HNSW, incremental,
rebuilt from the stored vectors), Workspace.similar with its filters, the
``assay similar`` command and ``/api/datasets/{id}/similar`` (staff only)."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import numpy as np
import pytest

from _server import LiveServer
from assay.errors import InvalidInput, NotFound
from assay.learn import Embedder, register_embedder
from assay.store.index import INDEX_FILE, SpaceIndex, exact_topk, normalize
from assay.store.vectors import VectorStore
from factories import answer_item, item_ids, project_with_annotators, run_cli, text_dataset

META = {"model": "given", "kind": "given"}


def clustered(n: int, d: int, seed: int = 0, centers: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, d))
    return (c[rng.integers(centers, size=n)] + 0.4 * rng.normal(size=(n, d))).astype(np.float32)


def recall(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / len(y) for x, y in zip(a, b)]))


def store_with(tmp_path, x: np.ndarray, shard: int = 5000, first_id: int = 1) -> VectorStore:
    vs = VectorStore(tmp_path / "vectors")
    for lo in range(0, len(x), shard):
        vs.add("s", np.arange(lo, min(lo + shard, len(x))) + first_id, x[lo:lo + shard], META)
    return vs


def test_exact_and_hnsw_agree_on_20k(tmp_path):
    x = clustered(20_000, 64)
    vs = store_with(tmp_path, x)
    exact, graph = SpaceIndex(vs, "s"), SpaceIndex(vs, "s", exact_below=1000)
    q = clustered(300, 64, seed=1)
    ke, se = exact.search(q, 10)
    kh, sh = graph.search(q, 10)
    assert (exact.mode, graph.mode) == ("exact", "hnsw")
    assert recall(kh, ke) >= 0.95
    # the exact side is the brute force truth, scores are cosine similarities
    truth = np.argsort(-(normalize(q) @ normalize(x).T), axis=1)[:, :10] + 1
    assert np.array_equal(ke, truth)
    assert np.allclose(se[:, 0], (normalize(q) @ normalize(x).T).max(axis=1), atol=1e-5)
    assert np.all(np.diff(sh, axis=1) <= 1e-6)  # best first


def test_incremental_add_latest_vector_and_rebuild(tmp_path):
    x = clustered(3000, 16)
    vs = store_with(tmp_path, x, shard=1000)
    idx = SpaceIndex(vs, "s", exact_below=100)
    assert idx.refresh()["rebuilt"] is True and len(idx) == 3000
    # vectors written after the build are found at once (added to the graph)
    rng = np.random.default_rng(5)
    new = rng.normal(size=(2, 16)).astype(np.float32) * 10
    vs.add("s", np.array([50_000, 7]), new, META)  # item 7 embedded again: its latest vector wins
    keys, scores = idx.search(new, 1)
    assert keys[:, 0].tolist() == [50_000, 7] and idx.last_refresh["added"] == 2
    assert np.allclose(scores[:, 0], 1.0, atol=2e-3)
    assert len(idx) == 3001
    assert 7 not in idx.search(normalize(x[6:7]), 5)[0][0]  # the old vector of item 7 is gone
    # a fresh process reuses the saved graph and adds the shard written since its save
    # (too small a tail to save it again); after deleting it, it is rebuilt from the shards
    again = SpaceIndex(vs, "s", exact_below=100)
    assert again.refresh() == {"mode": "hnsw", "count": 3001, "changed": True, "rebuilt": False, "added": 2}
    assert np.array_equal(again.search(new, 1)[0], keys)
    vs.add("s", np.arange(60_000, 60_000 + 40_000), clustered(40_000, 16, seed=9), META)  # a big tail: saved
    assert again.refresh()["added"] == 40_000
    assert SpaceIndex(vs, "s", exact_below=100).refresh()["added"] == 0
    (tmp_path / "vectors" / "s" / INDEX_FILE).unlink()
    third = SpaceIndex(vs, "s", exact_below=100)
    assert third.refresh()["rebuilt"] is True
    assert np.array_equal(third.search(new, 1)[0], keys)
    # a corrupt cache file is rebuilt, not trusted
    (tmp_path / "vectors" / "s" / INDEX_FILE).write_bytes(b"not an index")
    fourth = SpaceIndex(vs, "s", exact_below=100)
    assert fourth.refresh()["rebuilt"] is True and len(fourth) == 43_001


@pytest.mark.parametrize("every", [2, 50])  # a large set (over-fetch and filter), a small one (exact)
def test_filtered_search_keeps_recall(tmp_path, every):
    x = clustered(20_000, 32)
    vs = store_with(tmp_path, x)
    idx = SpaceIndex(vs, "s", exact_below=1000, filter_exact_below=1000)
    allowed = np.arange(1, 20_001, every)
    q = clustered(100, 32, seed=2)
    kh, _ = idx.search(q, 10, allowed=allowed)
    sub = normalize(x[allowed - 1])
    truth, _ = exact_topk(normalize(q), [(allowed, sub)], 10)
    assert np.isin(kh, allowed).all()
    assert recall(kh, truth) >= 0.95
    ex = idx.search(q[:3], 10, allowed=allowed, exclude=truth[:, 0])[0]
    assert not np.isin(truth[:3, 0], ex).any()


def test_import_assay_does_not_import_usearch():
    out = subprocess.run([sys.executable, "-c", "import sys, assay, assay.workspace, assay.server, assay.cli;"
                          "print('usearch' in sys.modules)"], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


class Letters(Embedder):
    """A tiny real text embedder: letter counts (a-z)."""

    name, kind, dim = "letters", "text", 26

    def embed(self, batch):
        out = np.zeros((len(batch), 26), np.float32)
        for i, t in enumerate(batch):
            for ch in t.lower():
                if "a" <= ch <= "z":
                    out[i, ord(ch) - 97] += 1
        return out


TEXTS = ["aaaa aaa", "aaa aab", "zzzz zzz", "zzz zzy", "mmm nnn", "mmmm nnm", "abc xyz", "hello world"]


def letters_dataset(ws, name="docs"):
    register_embedder("letters", Letters)
    ds = text_dataset(ws, name, TEXTS)
    ws.embed(ds["id"], model="letters", progress=False)
    return ds, item_ids(ws, ds["id"])


def test_workspace_similar_items_text_and_filters(ws):
    ds, ids = letters_dataset(ws)
    got = ws.similar(ds["id"], items=[ids[0]], k=3)
    assert [g["item_id"] for g in got][0] == ids[1] and ids[0] not in [g["item_id"] for g in got]
    assert got[0]["score"] >= got[1]["score"] >= got[2]["score"]
    # several items: the mean of their unit vectors, both left out
    v = normalize(Letters().embed(TEXTS))
    mean = v[[2, 4]].mean(axis=0)
    want = [ids[i] for i in np.argsort(-(v @ mean)) if i not in (2, 4)][:3]
    assert [g["item_id"] for g in ws.similar(ds["id"], items=[ids[2], ids[4]], k=3)] == want
    # a text query is embedded with the space's model
    assert ws.similar(ds["id"], text="zzzzz", k=2)[0]["item_id"] == ids[2]
    # filters: a set of ids; items of another dataset in the same space never show
    inside = [g["item_id"] for g in ws.similar(ds["id"], text="zzzz", within=ids[4:], k=2)]
    assert inside[0] == ids[6] and set(inside) <= set(ids[4:])  # "abc xyz": the only one with a z
    # items added to the dataset later are found (the kept id list follows the dataset)
    ws.import_dataframe(ds["id"], __import__("pandas").DataFrame({"text": ["qqqq qqq"]}))
    ws.embed(ds["id"], model="letters", progress=False)
    ids = item_ids(ws, ds["id"])
    assert ws.similar(ds["id"], text="qq", k=1)[0]["item_id"] == ids[-1]
    other = text_dataset(ws, "other", ["zzzz zzzz"])
    ws.embed(other["id"], model="letters", progress=False)
    assert all(g["item_id"] in ids for g in ws.similar(ds["id"], text="zzzz", k=8))
    assert len(ws.similar(ds["id"], text="zzzz", k=50)) == len(ids)


def test_similar_by_project_and_label(ws):
    p, people = project_with_annotators(ws, 6, 1, overlap=1)
    ids = item_ids(ws, p["dataset_id"])
    rng = np.random.default_rng(0)
    ws.vectors.add("given", np.array(ids), rng.normal(size=(6, 8)).astype(np.float32), META)
    for i, lab in zip(ids, ["pos", "neg", "pos", "neg", "pos", "neg"]):
        answer_item(ws, p["id"], i, people[0], lab)
    pos = {g["item_id"] for g in ws.similar(p["dataset_id"], items=[ids[1]], project=p["id"], label="pos")}
    assert pos == {ids[0], ids[2], ids[4]}
    assert len(ws.similar(p["dataset_id"], items=[ids[1]], project=p["id"])) == 5
    with pytest.raises(InvalidInput, match="label or confidence filter needs"):
        ws.similar(p["dataset_id"], items=[ids[1]], label="pos")


def test_similar_within_a_slice_and_the_unsure_items(ws):
    """``slice``: only a slice's items; ``max_confidence`` (with the project):
    only items whose final label is unsure — here the ones two people disagreed on."""
    p, people = project_with_annotators(ws, 8, 2, overlap=2)
    ids = item_ids(ws, p["dataset_id"])
    rng = np.random.default_rng(1)
    ws.vectors.add("given", np.array(ids), rng.normal(size=(8, 8)).astype(np.float32), META)
    for n, i in enumerate(ids):
        answer_item(ws, p["id"], i, people[0], "pos")
        answer_item(ws, p["id"], i, people[1], "pos" if n < 4 else "neg")  # items 4-7: disagreement
    ws.create_slice(p["dataset_id"], "firsts", items=ids[:3])
    got = {g["item_id"] for g in ws.similar(p["dataset_id"], items=[ids[7]], slice="firsts")}
    assert got == set(ids[:3])
    unsure = {g["item_id"] for g in ws.similar(p["dataset_id"], items=[ids[0]], project=p["id"], max_confidence=0.9)}
    assert unsure == set(ids[4:])
    sure = {g["item_id"] for g in ws.similar(p["dataset_id"], items=[ids[7]], project=p["id"], min_confidence=0.9)}
    assert sure == set(ids[:4])
    for bad in ({"min_confidence": 1.5}, {"max_confidence": -0.1}, {"min_confidence": 0.8, "max_confidence": 0.2}):
        with pytest.raises(InvalidInput, match="confidence"):
            ws.similar(p["dataset_id"], items=[ids[0]], project=p["id"], **bad)
    with pytest.raises(NotFound):
        ws.similar(p["dataset_id"], items=[ids[0]], slice="never-made")


def test_bad_input_is_clear(ws):
    ds, ids = letters_dataset(ws)
    bare = text_dataset(ws, "bare", ["no vectors here"])
    with pytest.raises(NotFound, match="not in this dataset"):
        ws.similar(ds["id"], items=[10**9])
    with pytest.raises(NotFound, match="no vectors yet"):
        ws.similar(bare["id"], text="x")
    for k in (0, 1001, True):
        with pytest.raises(InvalidInput, match="k must be"):
            ws.similar(ds["id"], items=[ids[0]], k=k)
    with pytest.raises(InvalidInput, match="either items"):
        ws.similar(ds["id"], items=[ids[0]], text="a")
    with pytest.raises(InvalidInput, match="either items"):
        ws.similar(ds["id"])
    with pytest.raises(NotFound):
        ws.similar(ds["id"], items=[ids[0]], space="never-embedded")
    g = ws.create_dataset("given")
    ws.import_dataframe(g["id"], __import__("pandas").DataFrame({"text": ["a", "b"]}))
    gi = item_ids(ws, g["id"])
    ws.vectors.add("given", np.array(gi), np.eye(2, dtype=np.float32), META)
    with pytest.raises(InvalidInput, match="embeds no text"):
        ws.similar(g["id"], text="a")


def test_cli_similar(home):
    from assay.workspace import Workspace

    with Workspace(home) as w:
        ds, ids = letters_dataset(w)
    r = run_cli("similar", "docs", "--item", str(ids[2]), "-k", "2", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert rows[0]["item_id"] == ids[3] and rows[0]["snippet"] == TEXTS[3] and len(rows) == 2
    r = run_cli("similar", "docs", "--text", "mmmm")
    assert r.exit_code == 0 and "mmm" in r.output.splitlines()[0]
    r = run_cli("similar", "docs", "--item", "999999")
    assert r.exit_code == 1 and "not in this dataset" in r.output
    assert run_cli("similar", "docs").exit_code == 2
    assert run_cli("similar", "docs", "--item", str(ids[0]), "-k", "0").exit_code == 1
    with Workspace(home) as w:
        w.create_slice("docs", "zs", items=[ids[2], ids[3], ids[6]])
    r = run_cli("similar", "docs", "--item", str(ids[0]), "--slice", "zs", "--json")
    assert r.exit_code == 0 and {x["item_id"] for x in json.loads(r.output)} == {ids[2], ids[3], ids[6]}, r.output


def test_http_similar_staff_only(ws):
    ds, ids = letters_dataset(ws)
    _, admin = ws.add_user("boss", "admin")
    _, ann = ws.add_user("ann", "annotator")
    _, rev = ws.add_user("rev", "reviewer")
    bare = text_dataset(ws, "bare", ["no vectors"])
    with LiveServer(ws) as srv:
        url = f"{srv.base}/api/datasets/{ds['id']}/similar"
        auth = {"Authorization": f"Bearer {admin}"}
        r = httpx.get(url, params={"item": ids[0], "k": 2}, headers=auth)
        assert r.status_code == 200, r.text
        res = r.json()["results"]
        assert res[0]["item_id"] == ids[1] and res[0]["snippet"] == TEXTS[1]
        assert res[0]["content_url"] == f"/api/items/{ids[1]}/content"
        r = httpx.post(url, json={"text": "zzz", "k": 3, "within": ids[2:4]}, headers=auth)
        assert [x["item_id"] for x in r.json()["results"]] == [ids[2], ids[3]]
        r = httpx.post(url, json={"items": [ids[2], ids[4]], "k": 1}, headers=auth)
        assert r.status_code == 200 and r.json()["results"][0]["item_id"] not in (ids[2], ids[4])
        assert httpx.get(url, params={"item": ids[0]}, headers={"Authorization": f"Bearer {ann}"}).status_code == 403
        assert httpx.get(url, params={"item": ids[0]}).status_code == 401
        # a reviewer outside the dataset's projects does not see it
        assert httpx.get(url, params={"item": ids[0]}, headers={"Authorization": f"Bearer {rev}"}).status_code == 404
        for params, status, msg in [({"item": 10**9}, 404, "not in this dataset"),
                                    ({"item": ids[0], "k": 0}, 400, "k must be"),
                                    ({"item": ids[0], "k": 5000}, 400, "k must be"),
                                    ({}, 400, "either items")]:
            r = httpx.get(url, params=params, headers=auth)
            assert (r.status_code, msg in r.text) == (status, True), r.text
        r = httpx.get(f"{srv.base}/api/datasets/{bare['id']}/similar", params={"text": "x"}, headers=auth)
        assert r.status_code == 404 and "embed" in r.text


def test_searches_while_vectors_arrive(tmp_path):
    """Searches from several threads while shards are written: no error, and
    every result row is a stored id with its best score first."""
    import threading

    vs = store_with(tmp_path, clustered(2000, 8), shard=500)
    idx = SpaceIndex(vs, "s")
    errors, q = [], clustered(5, 8, seed=3)

    def search():
        try:
            for _ in range(40):
                keys, scores = idx.search(q, 5)
                assert (keys > 0).all() and np.all(np.diff(scores, axis=1) <= 1e-6)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=search) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(10):
        vs.add("s", np.arange(10_000 + i * 50, 10_000 + (i + 1) * 50), clustered(50, 8, seed=10 + i), META)
    for t in threads:
        t.join()
    assert errors == [] and len(idx.search(q, 1)[0]) == 5 and idx.refresh()["count"] == 2500


def test_search_width_per_call_and_unsorted_filters(tmp_path):
    """``expansion`` sets the graph's search width for one call (a curation
    pass asks narrower than an interactive search); a filter given unsorted
    and with repeats means the same set."""
    x = clustered(5000, 16)
    idx = SpaceIndex(store_with(tmp_path, x), "s", exact_below=100)
    q = clustered(50, 16, seed=3)
    default = idx.search(q, 10)[0]
    assert np.array_equal(idx.search(q, 10, expansion=idx.expansion_search)[0], default)
    truth, _ = exact_topk(normalize(q), [(np.arange(1, 5001), normalize(x))], 10)
    assert recall(idx.search(q, 10, expansion=24)[0], truth) >= 0.9
    assert idx._graph.expansion_search == idx.expansion_search  # put back after the call
    for bad in (0, -1, 2.5, True, "24"):
        with pytest.raises(InvalidInput, match="expansion"):
            idx.search(q, 10, expansion=bad)
    allowed = np.arange(1, 5001, 3)
    shuffled = np.random.default_rng(4).permutation(np.concatenate([allowed, allowed[:100]]))
    assert np.array_equal(idx.search(q, 10, allowed=shuffled)[0], idx.search(q, 10, allowed=allowed)[0])


def test_slice_filter_follows_a_slice_saved_again(ws):
    """An explicit slice's ids are kept between searches; deleting it and
    saving another under the same name is seen at once."""
    ds = text_dataset(ws, "pool", [f"text {i}" for i in range(8)])
    ids = item_ids(ws, ds["id"])
    ws.vectors.add("given", np.array(ids), np.random.default_rng(2).normal(size=(8, 8)).astype(np.float32), META)
    ws.create_slice(ds["id"], "some", items=ids[:3])
    assert {g["item_id"] for g in ws.similar(ds["id"], items=[ids[7]], slice="some")} == set(ids[:3])
    ws.delete_slice(ds["id"], "some")
    ws.create_slice(ds["id"], "some", items=ids[3:6])
    assert {g["item_id"] for g in ws.similar(ds["id"], items=[ids[7]], slice="some")} == set(ids[3:6])
    ws.delete_slice(ds["id"], "some")
    with pytest.raises(NotFound):
        ws.similar(ds["id"], items=[ids[7]], slice="some")
    # items added to the dataset are searched (the kept id list follows its largest id)
    more = ws.import_dataframe(ds["id"], __import__("pandas").DataFrame({"text": ["late"]}))
    new = [i for i in item_ids(ws, ds["id"]) if i not in ids]
    assert more and len(new) == 1
    ws.vectors.add("given", np.array(new), np.ones((1, 8), np.float32), META)
    assert ws.similar(ds["id"], items=[ids[0]], k=9)[-1]["item_id"] in ids + new
    assert new[0] in {g["item_id"] for g in ws.similar(ds["id"], items=[ids[0]], k=8)}


def test_small_filters_over_the_graph_keep_recall(tmp_path):
    """A filter of 1 % of the items searched through the graph (exact search
    switched off) still finds the exact filtered top 10; the choice between
    the two follows their cost: exact for a few items, the graph for many."""
    x = clustered(20_000, 32)
    idx = SpaceIndex(store_with(tmp_path, x), "s", exact_below=1000, filter_exact_below=0)
    allowed = np.arange(1, 20_001, 100)
    q = clustered(100, 32, seed=5)
    kh, _ = idx.search(q, 10, allowed=allowed)
    truth, _ = exact_topk(normalize(q), [(allowed, normalize(x[allowed - 1]))], 10)
    assert np.isin(kh, allowed).all() and recall(kh, truth) >= 0.95
    idx.filter_exact_below = 50_000
    assert idx._filter_exact(200, 10) and idx._filter_exact(600, 10)  # 600² <= 2 * 10 * 20k
    assert not idx._filter_exact(700, 10) and idx._filter_exact(1400, 50)
    assert not idx._filter_exact(10_000, 10)


def test_dataset_lookup_without_the_count(ws):
    """The search path looks a dataset up without counting its items (tens of
    ms at a million); the count is still there by default."""
    ds = text_dataset(ws, "counted", ["a", "b", "c"])
    assert ws.get_dataset(ds["id"])["item_count"] == 3
    light = ws.get_dataset("counted", count=False)
    assert "item_count" not in light and light["id"] == ds["id"] and light["created_at"] == ds["created_at"]
    with pytest.raises(NotFound):
        ws.get_dataset(ds["id"] + 1000, count=False)
