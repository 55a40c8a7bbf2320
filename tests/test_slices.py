"""Slices: saved, named sets of a dataset's items (explicit, or a stored
query evaluated when used), used by the hand-out queue (prioritize), export,
the CLI and HTTP (admins write, annotators 403)."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from _server import LiveServer
from assay.engine import ledger
from assay.errors import Conflict, InvalidInput, NotFound
from assay.learn import Embedder, register_embedder
from factories import count, item_ids, project_with_annotators, run_cli, text_dataset


class Vowels(Embedder):
    """A tiny real text embedder: counts of a, e, i, o, u."""

    name, kind, dim = "vowels", "text", 5

    def embed(self, batch):
        return np.asarray([[t.count(v) + 0.01 for v in "aeiou"] for t in batch], np.float32)


TEXTS = ["aaaa", "aaa a", "eeee", "eee e", "iiii", "ooo", "uuu", "au"]
META = [{"lang": "en" if i % 2 == 0 else "fr", "n": i} for i in range(len(TEXTS))]


def vowel_dataset(ws, name="docs"):
    register_embedder("vowels", Vowels)
    ds = text_dataset(ws, name, TEXTS, meta=META)
    ws.embed(ds["id"], model="vowels", progress=False)
    return ds, item_ids(ws, ds["id"])


def test_explicit_slice_create_list_show_delete(ws):
    ds, ids = vowel_dataset(ws)
    other = text_dataset(ws, "other", ["x", "y"])
    s = ws.create_slice(ds["id"], " picked ", items=[ids[3], ids[1], ids[3]])
    assert (s["name"], s["kind"], s["item_count"]) == ("picked", "items", 2)
    assert ws.slice_items(ds["id"], "picked") == [ids[1], ids[3]]
    assert [x["name"] for x in ws.list_slices(ds["name"])] == ["picked"]
    # the same name in another dataset is another slice
    ws.create_slice(other["id"], "picked", items=item_ids(ws, other["id"])[:1])
    before = (count(ws, "slices"), count(ws, "slice_items"))
    with pytest.raises(Conflict, match="already has a slice named 'picked'"):
        ws.create_slice(ds["id"], "picked", items=[ids[0]])
    bad = [({"items": [10**9]}, "not in this dataset"), ({"items": item_ids(ws, other["id"])}, "not in this dataset"),
           ({"items": []}, "at least one"), ({"items": ["x"]}, "whole numbers"), ({"items": [True]}, "whole numbers"),
           ({}, "either items"), ({"items": [ids[0]], "query": {"meta": {"a": 1}}}, "either items")]
    for kw, msg in bad:
        with pytest.raises(InvalidInput, match=msg):
            ws.create_slice(ds["id"], "new", **kw)
    with pytest.raises(InvalidInput, match="1–200"):
        ws.create_slice(ds["id"], "  ", items=[ids[0]])
    assert (count(ws, "slices"), count(ws, "slice_items")) == before  # nothing half-written
    ws.delete_slice(ds["id"], "picked")
    with pytest.raises(NotFound, match="no slice named 'picked'"):
        ws.get_slice(ds["id"], "picked")
    assert count(ws, "slice_items") == 1  # the other dataset's slice keeps its item
    assert len(ws.audit_log(action="slice.create")[0]) == 2 and len(ws.audit_log(action="slice.delete")[0]) == 1


def test_query_slices_are_evaluated_when_used(ws):
    ds, ids = vowel_dataset(ws)
    ws.create_slice(ds["id"], "like-a", query={"similar_to": [ids[0]], "k": 2})
    assert ws.slice_items(ds["id"], "like-a") == sorted([ids[1], ids[7]])
    ws.create_slice(ds["id"], "text-e", query={"text": "eeeeee", "k": 2})
    assert ws.slice_items(ds["id"], "text-e") == [ids[2], ids[3]]
    ws.create_slice(ds["id"], "french", query={"meta": {"lang": "fr"}})
    assert ws.slice_items(ds["id"], "french") == ids[1::2]
    ws.create_slice(ds["id"], "n3", query={"meta": {"n": "3"}})  # the text form matches a number
    assert ws.slice_items(ds["id"], "n3") == [ids[3]]
    # filters first, then the k most similar among the matching items
    ws.create_slice(ds["id"], "english-e", query={"text": "eee", "k": 1, "meta": {"lang": "en"}})
    assert ws.slice_items(ds["id"], "english-e") == [ids[2]]
    ws.create_slice(ds["id"], "nobody", query={"meta": {"lang": "de"}})
    assert ws.slice_items(ds["id"], "nobody") == []
    # a new item that matches joins the query slice when it is next used
    ws.import_dataframe(ds["id"], __import__("pandas").DataFrame({"text": ["zz"], "lang": ["fr"], "n": [99]}))
    assert len(ws.slice_items(ds["id"], "french")) == len(ids[1::2]) + 1
    got = ws.get_slice(ds["id"], "like-a")
    assert got["kind"] == "query" and got["query"] == {"similar_to": [ids[0]], "k": 2}
    for query, msg in [({"similar_to": [ids[0]]}, "needs k"), ({"text": "a", "k": 0}, "needs k"),
                       ({"similar_to": [ids[0]], "text": "a", "k": 2}, "not both"),
                       ({"bogus": 1}, "unknown slice query field"), ({"meta": {"a": [1]}}, "plain value"),
                       ({"meta": {}}, "1–20"), ({"k": 3}, "k and space go with"), ("x", "must be an object"),
                       ({"similar_to": [10**9], "k": 2}, "not in this dataset"), ({"text": " ", "k": 1}, "empty")]:
        with pytest.raises(InvalidInput, match=msg):
            ws.create_slice(ds["id"], "bad", query=query)
    assert count(ws, "slices", "name = 'bad'") == 0


def _next_item(srv, pid: int, token: str) -> int:
    """tasks/next, then answer it (the next call hands out a new task): the item's id."""
    h = {"Authorization": f"Bearer {token}"}
    r = httpx.post(f"{srv.base}/api/projects/{pid}/tasks/next", headers=h)
    assert r.status_code == 200, r.text
    task = r.json()["task"]
    assert httpx.post(f"{srv.base}/api/tasks/{task['id']}/answers", json={"label": "pos"}, headers=h).status_code == 201
    return task["item"]["id"]


def test_prioritize_changes_hand_out_order_over_http(ws):
    p, _ = project_with_annotators(ws, 12, 0, overlap=1)
    ids = item_ids(ws, p["dataset_id"])
    want = ids[-3:]
    _, admin = ws.add_user("boss", "admin")
    worker, tok = ws.add_user("worker", "annotator")
    ws.add_member(p["id"], worker["id"])
    with LiveServer(ws) as srv:
        auth = {"Authorization": f"Bearer {admin}"}
        base = f"{srv.base}/api/datasets/{p['dataset_id']}/slices"
        r = httpx.post(base, json={"name": "urgent", "items": want}, headers=auth)
        assert r.status_code == 201, r.text
        assert httpx.post(base, json={"name": "urgent", "items": want}, headers=auth).status_code == 409
        r = httpx.get(base, headers=auth)
        assert [s["name"] for s in r.json()["slices"]] == ["urgent"]
        r = httpx.get(f"{base}/urgent", headers=auth)
        assert r.json()["items"] == want
        annh = {"Authorization": f"Bearer {tok}"}
        pr = f"{srv.base}/api/projects/{p['id']}/prioritize"
        assert httpx.post(pr, json={"slice": "urgent"}, headers=annh).status_code == 403
        assert httpx.post(base, json={"name": "mine", "items": want}, headers=annh).status_code == 403
        assert httpx.delete(f"{base}/urgent", headers=annh).status_code == 403
        assert httpx.post(pr, json={"slice": "urgent", "items": want}, headers=auth).status_code == 400
        assert httpx.post(pr, json={"slice": "nope"}, headers=auth).status_code == 404
        r = httpx.post(pr, json={"slice": "urgent", "priority": 5}, headers=auth)
        assert r.status_code == 200 and r.json() == {"items": 3, "tasks": 3, "priority": 5.0}, r.text
        first = [_next_item(srv, p["id"], tok) for _ in range(3)]
        assert sorted(first) == want  # the slice's items come out first
        assert _next_item(srv, p["id"], tok) not in want
        assert ledger.check(ws.db, p["id"]) == []  # the counters still add up
        assert httpx.delete(f"{base}/urgent", headers=auth).status_code == 200
        assert httpx.get(f"{base}/urgent", headers=auth).status_code == 404


def test_prioritize_items_in_python_and_back(ws):
    p, people = project_with_annotators(ws, 10, 1, overlap=1)
    ids = item_ids(ws, p["dataset_id"])
    r = ws.prioritize(p["id"], [ids[4], ids[7]], priority=3)
    assert (r["items"], r["tasks"]) == (2, 2)
    got = set()
    for _ in range(2):
        t = ws.next_task(p["id"], people[0])
        got.add(t["item"]["id"])
        ws.submit(t["id"], people[0], "pos")
    assert got == {ids[4], ids[7]}
    other = text_dataset(ws, "other", ["x"])
    with pytest.raises(InvalidInput, match="not in this dataset"):
        ws.prioritize(p["id"], item_ids(ws, other["id"]))
    for bad in (float("nan"), True, "high", 1e9):
        with pytest.raises(InvalidInput, match="priority must be"):
            ws.prioritize(p["id"], [ids[0]], priority=bad)
    assert ws.prioritize(p["id"], [ids[4], ids[7]], priority=0)["tasks"] == 2  # back to normal


def test_export_limited_to_slice(ws, tmp_path):
    p, _ = project_with_annotators(ws, 8, 1, overlap=1)
    ids = item_ids(ws, p["dataset_id"])
    ws.create_slice(p["dataset_id"], "few", items=[ids[1], ids[5]])
    out = ws.export(p["id"], tmp_path / "few.jsonl", slice="few")
    rows = [json.loads(line) for line in (tmp_path / "few.jsonl").read_text().splitlines()]
    assert out["items"] == 2 and [r["item_id"] for r in rows] == [ids[1], ids[5]]
    assert ws.export(p["id"], tmp_path / "all.csv")["items"] == 8
    with pytest.raises(NotFound, match="no slice named"):
        ws.export(p["id"], tmp_path / "x.jsonl", slice="nope")
    assert not (tmp_path / "x.jsonl").exists()
    with pytest.raises(InvalidInput, match="a slice limits"):
        ws.export(p["id"], tmp_path / "x.json", "labelstudio", slice="few")
    _, admin = ws.add_user("boss", "admin")
    with LiveServer(ws) as srv:
        r = httpx.get(f"{srv.base}/api/projects/{p['id']}/export", params={"format": "jsonl", "slice": "few"},
                      headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200, r.text
        assert [json.loads(line)["item_id"] for line in r.text.splitlines()] == [ids[1], ids[5]]


def test_cli_slices_prioritize_and_export(home, tmp_path):
    from assay.workspace import Workspace

    with Workspace(home) as w:
        p, _ = project_with_annotators(w, 6, 1, overlap=1)
        ids = item_ids(w, p["dataset_id"])
    ds = "p-data"
    r = run_cli("slice", "create", ds, "two", "--item", str(ids[0]), "--item", str(ids[2]))
    assert r.exit_code == 0 and "created" in r.output, r.output
    assert run_cli("slice", "create", ds, "two", "--item", str(ids[0])).exit_code == 1
    assert run_cli("slice", "create", ds, "q", "--meta", "lang=fr").exit_code == 0
    assert run_cli("slice", "create", ds, "bad").exit_code == 2
    assert run_cli("slice", "create", ds, "bad", "--meta", "novalue").exit_code == 2
    r = run_cli("slice", "list", ds)
    assert r.exit_code == 0 and "two" in r.output and "2 items" in r.output and '"lang": "fr"' in r.output
    r = run_cli("slice", "show", ds, "two")
    assert r.exit_code == 0 and json.loads(r.output)["items"] == [ids[0], ids[2]]
    r = run_cli("project", "prioritize", "p", "--slice", "two", "--priority", "4")
    assert r.exit_code == 0 and "2 tasks of 2 items" in r.output, r.output
    assert run_cli("project", "prioritize", "p").exit_code == 2
    r = run_cli("export", "p", str(tmp_path / "two.jsonl"), "--slice", "two")
    assert r.exit_code == 0 and "wrote 2 items" in r.output, r.output
    r = run_cli("slice", "delete", ds, "two")
    assert r.exit_code == 0 and run_cli("slice", "show", ds, "two").exit_code == 1


def test_a_persons_priority_survives_the_models_priorities(ws):
    """The ML step rewrites every task's priority (ledger.set_priorities);
    a person's (Workspace.prioritize) is pinned: the model's never put those
    tasks lower, a higher model priority still wins, and 0 unpins them."""
    from sqlalchemy import text

    p, _ = project_with_annotators(ws, 6, 1, overlap=1)
    ids = item_ids(ws, p["dataset_id"])

    def priorities():
        with ws.db.read() as conn:
            return dict(conn.execute(text("SELECT item_id, priority FROM tasks WHERE project_id = :p"),
                                     {"p": p["id"]}).all())

    with ws.db.read() as conn:
        task = dict(conn.execute(text("SELECT item_id, id FROM tasks WHERE project_id = :p"), {"p": p["id"]}).all())
    ws.prioritize(p["id"], [ids[0], ids[1]], priority=5)
    with ws.db.write() as conn:  # the model ranks item 1 above the pin, item 2 somewhat
        ledger.set_priorities(conn, p["id"], {task[ids[1]]: 9.0, task[ids[2]]: 2.0})
    got = priorities()
    assert (got[ids[0]], got[ids[1]], got[ids[2]], got[ids[3]]) == (5.0, 9.0, 2.0, 0.0)
    with ws.db.write() as conn:  # the next step forgets item 1: back to the person's pin, not 0
        ledger.set_priorities(conn, p["id"], {task[ids[2]]: 1.0})
    got = priorities()
    assert (got[ids[0]], got[ids[1]], got[ids[2]]) == (5.0, 5.0, 1.0)
    ws.prioritize(p["id"], [ids[0], ids[1]], priority=0)  # unpinned: the model decides again
    with ws.db.write() as conn:
        ledger.set_priorities(conn, p["id"], {})
    assert set(priorities().values()) == {0.0}
