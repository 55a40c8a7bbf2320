"""Tags on items: put on and taken off by staff (Python, CLI, HTTP), used as a
filter by similarity search, query slices and export; never shown to an
annotator (the hostile annotator reads every payload looking for them)."""

from __future__ import annotations

import json

import httpx
import pytest

from _server import LiveServer
from assay.errors import InvalidInput, NotFound
from factories import count, item_ids, project_with_annotators, run_cli, text_dataset
from test_slices import vowel_dataset


def test_tag_untag_list_and_validation(ws):
    ds, ids = vowel_dataset(ws)
    other = text_dataset(ws, "other", ["x", "y"])
    r = ws.tag_items(ds["id"], [ids[0], ids[2], ids[2]], " hard ")
    assert r == {"tag": "hard", "items": 2, "added": 2}
    assert ws.tag_items(ds["name"], [ids[0], ids[4]], "hard")["added"] == 1  # ids[0] had it already
    ws.tag_items(ds["id"], [ids[0]], "blurry")
    assert ws.tagged_items(ds["id"], "hard") == [ids[0], ids[2], ids[4]]
    assert ws.list_tags(ds["id"]) == [{"tag": "blurry", "items": 1}, {"tag": "hard", "items": 3}]
    assert ws.item_tags([ids[0], ids[1], ids[2]]) == {ids[0]: ["blurry", "hard"], ids[2]: ["hard"]}
    before = count(ws, "item_tags")
    for tag, msg in [("", "must not be empty"), ("   ", "must not be empty"), ("x" * 65, "at most 64"),
                     ("a\nb", "control characters"), (7, "must be text"), (None, "must be text")]:
        with pytest.raises(InvalidInput, match=msg):
            ws.tag_items(ds["id"], [ids[1]], tag)
    ws.tag_items(ds["id"], [ids[1]], "é" * 64)  # 64 characters is fine
    for items, msg in [([], "at least one"), ([10**9], "not in this dataset"),
                       (item_ids(ws, other["id"]), "not in this dataset"), (["x"], "whole numbers")]:
        with pytest.raises(InvalidInput, match=msg):
            ws.tag_items(ds["id"], items, "hard")
    assert count(ws, "item_tags") == before + 1  # nothing half-written
    assert ws.untag_items(ds["id"], [ids[2], ids[3]], "hard") == {"tag": "hard", "items": 2, "removed": 1}
    assert ws.tagged_items(ds["id"], "hard") == [ids[0], ids[4]]
    assert ws.tagged_items(ds["id"], "nothing-has-this") == []
    assert ws.tagged_items(other["id"], "hard") == []  # tags are looked up per dataset
    with pytest.raises(NotFound):
        ws.list_tags("no-such-dataset")
    assert [e["details"]["added"] for e in ws.audit_log(action="tag.add")[0]][-1] == 2


def test_tag_filters_search_slices_and_export(ws, tmp_path):
    ds, ids = vowel_dataset(ws)
    ws.tag_items(ds["id"], [ids[1], ids[4], ids[6]], "keep")
    hits = ws.similar(ds["id"], items=[ids[0]], k=5, tag="keep")
    assert sorted(h["item_id"] for h in hits) == [ids[1], ids[4], ids[6]]
    assert ws.similar(ds["id"], items=[ids[0]], k=5, tag="nobody-has-it") == []
    with pytest.raises(InvalidInput, match="must not be empty"):
        ws.similar(ds["id"], items=[ids[0]], k=5, tag=" ")
    # a query slice by tag (alone, and with metadata: META's even items are 'en')
    ws.create_slice(ds["id"], "kept", query={"tag": "keep"})
    assert ws.slice_items(ds["id"], "kept") == [ids[1], ids[4], ids[6]]
    ws.create_slice(ds["id"], "kept-en", query={"tag": "keep", "meta": {"lang": "en"}})
    assert ws.slice_items(ds["id"], "kept-en") == [ids[4], ids[6]]
    ws.create_slice(ds["id"], "kept-like-a", query={"tag": "keep", "similar_to": [ids[0]], "k": 1})
    assert ws.slice_items(ds["id"], "kept-like-a") == [ids[1]]
    ws.tag_items(ds["id"], [ids[7]], "keep")  # evaluated when used
    assert ws.slice_items(ds["id"], "kept") == [ids[1], ids[4], ids[6], ids[7]]
    with pytest.raises(InvalidInput, match="at most 64"):
        ws.create_slice(ds["id"], "bad", query={"tag": "y" * 99})
    # export --tag, in SQL, alone and with a slice
    p = ws.create_project("p", ds["id"], ["a", "b"])
    out = ws.export(p["id"], tmp_path / "t.jsonl", tag="keep")
    rows = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert out["items"] == 4 and [r["item_id"] for r in rows] == [ids[1], ids[4], ids[6], ids[7]]
    ws.create_slice(ds["id"], "firsts", items=ids[:5])
    out = ws.export(p["id"], tmp_path / "ts.csv", tag="keep", slice="firsts")
    assert out["items"] == 2
    with pytest.raises(InvalidInput, match="a tag limits"):
        ws.export(p["id"], tmp_path / "x.json", "labelstudio", tag="keep")


def _h(tok: str) -> dict:
    return {"Authorization": f"Bearer {tok}"}


def test_tags_over_http_staff_only_and_never_served_to_annotators(ws):
    p, _ = project_with_annotators(ws, 6, 0, overlap=1)
    ids = item_ids(ws, p["dataset_id"])
    _, admin = ws.add_user("boss", "admin")
    rev, rtok = ws.add_user("rev", "reviewer")
    ws.add_member(p["id"], rev["id"])
    ann, atok = ws.add_user("mallory", "annotator")
    ws.add_member(p["id"], ann["id"])
    secret = "GOLD-answer-is-pos"
    with LiveServer(ws) as srv, httpx.Client(base_url=srv.base, timeout=30) as c:
        base = f"/api/datasets/{p['dataset_id']}"
        r = c.post(f"{base}/tags", json={"tag": secret, "items": ids}, headers=_h(admin))
        assert r.status_code == 200 and r.json() == {"tag": secret, "items": 6, "added": 6}, r.text
        r = c.post(f"{base}/tags", json={"tag": "hard", "items": ids[:2]}, headers=_h(rtok))  # reviewers tag too
        assert r.status_code == 200 and r.json()["added"] == 2, r.text
        assert c.post(f"{base}/tags", json={"tag": "", "items": ids[:1]}, headers=_h(admin)).status_code == 400
        assert c.post(f"{base}/tags", json={"tag": "x", "items": [10**9]}, headers=_h(admin)).status_code == 400
        r = c.get(f"{base}/tags", headers=_h(rtok))
        assert r.json()["tags"] == [{"tag": secret, "items": 6}, {"tag": "hard", "items": 2}]
        r = c.get(f"{base}/tags/items", params={"tag": "hard"}, headers=_h(admin))
        assert r.json() == {"tag": "hard", "items": ids[:2]}
        r = c.get(f"{base}/item-tags", params={"item": [ids[0], ids[5]]}, headers=_h(admin))
        assert r.json()["tags"] == {str(ids[0]): [secret, "hard"], str(ids[5]): [secret]}
        r = c.post(f"{base}/tags/remove", json={"tag": "hard", "items": [ids[1]]}, headers=_h(admin))
        assert r.json()["removed"] == 1
        # the annotator: 403 on every tag route, reading or writing
        for method, path, kw in [("get", f"{base}/tags", {}), ("get", f"{base}/tags/items", {"params": {"tag": "hard"}}),
                                 ("get", f"{base}/item-tags", {"params": {"item": ids[0]}}),
                                 ("post", f"{base}/tags", {"json": {"tag": "mine", "items": ids[:1]}}),
                                 ("post", f"{base}/tags/remove", {"json": {"tag": secret, "items": ids}})]:
            r = getattr(c, method)(path, headers=_h(atok), **kw)
            assert r.status_code == 403, (path, r.status_code, r.text)
        # ... and nothing they are served carries a tag: every task, item and its content
        seen = []
        for _ in range(len(ids)):
            r = c.post(f"/api/projects/{p['id']}/tasks/next", headers=_h(atok))
            assert r.status_code == 200, r.text
            task = r.json()["task"]
            seen.append(r.text)
            item = task["item"]["id"]
            seen.append(c.get(f"/api/items/{item}/content", headers=_h(atok)).text)
            seen.append(c.get(f"/api/items/{item}", headers=_h(atok)).text)
            r = c.post(f"/api/tasks/{task['id']}/answers", json={"label": "pos"}, headers=_h(atok))
            assert r.status_code == 201, r.text
            seen.append(r.text)
        assert len(seen) == 4 * len(ids)
        for body in seen:
            assert secret.lower() not in body.lower() and '"tags"' not in body and "hard" not in body
        assert ws.tagged_items(p["dataset_id"], secret) == ids  # the annotator changed nothing
        # a reviewer of no project over this dataset: it does not exist for them
        _, otok = ws.add_user("outsider", "reviewer")
        assert c.get(f"{base}/tags", headers=_h(otok)).status_code == 404
        r = c.post(f"{base}/tags", json={"tag": "mine", "items": ids[:1]}, headers=_h(otok))
        assert r.status_code == 404 and ws.tagged_items(p["dataset_id"], "mine") == []
        # export by tag over HTTP (staff)
        r = c.get(f"/api/projects/{p['id']}/export", params={"format": "jsonl", "tag": "hard"}, headers=_h(admin))
        assert r.status_code == 200 and [json.loads(x)["item_id"] for x in r.text.splitlines()] == [ids[0]]


def test_search_results_carry_tags_and_filter_over_http(ws):
    ds, ids = vowel_dataset(ws)
    ws.tag_items(ds["id"], [ids[1], ids[7]], "pick")
    _, admin = ws.add_user("boss", "admin")
    with LiveServer(ws) as srv:
        r = httpx.post(f"{srv.base}/api/datasets/{ds['id']}/similar", json={"items": [ids[0]], "k": 5, "tag": "pick"},
                       headers=_h(admin))
        assert r.status_code == 200, r.text
        res = r.json()["results"]
        assert sorted(x["item_id"] for x in res) == [ids[1], ids[7]] and all(x["tags"] == ["pick"] for x in res)
        r = httpx.post(f"{srv.base}/api/datasets/{ds['id']}/similar", json={"items": [ids[0]], "k": 7},
                       headers=_h(admin))
        tags = {x["item_id"]: x["tags"] for x in r.json()["results"]}
        assert tags[ids[1]] == ["pick"] and tags[ids[2]] == []


def test_cli_tags(home, tmp_path):
    from assay.workspace import Workspace

    with Workspace(home) as w:
        p, _ = project_with_annotators(w, 5, 1, overlap=1)
        ids = item_ids(w, p["dataset_id"])
        w.create_slice(p["dataset_id"], "two", items=ids[3:])
    ds = "p-data"
    r = run_cli("tag", "add", ds, "hard", "--item", str(ids[0]), "--item", str(ids[1]))
    assert r.exit_code == 0 and "tagged 2 new of 2 items 'hard'" in r.output, r.output
    r = run_cli("tag", "add", ds, "later", "--slice", "two")
    assert r.exit_code == 0 and "tagged 2 new" in r.output, r.output
    assert run_cli("tag", "add", ds, "x").exit_code == 2  # neither --item nor --slice
    r = run_cli("tag", "add", ds, "x" * 65, "--item", str(ids[0]))
    assert r.exit_code == 1 and "at most 64" in r.output
    r = run_cli("tag", "list", ds)
    assert r.exit_code == 0 and "hard  2 items" in r.output and "later  2 items" in r.output, r.output
    r = run_cli("tag", "list", ds, "later", "--json")
    assert json.loads(r.output) == {"tag": "later", "items": ids[3:]}
    r = run_cli("tag", "list", ds, "--item", str(ids[0]), "--item", str(ids[2]))
    assert f"item {ids[0]}: hard" in r.output and f"item {ids[2]}: (no tags)" in r.output, r.output
    r = run_cli("tag", "remove", ds, "hard", "--item", str(ids[0]))
    assert r.exit_code == 0 and "from 1 items" in r.output
    r = run_cli("export", "p", str(tmp_path / "l.jsonl"), "--tag", "later")
    assert r.exit_code == 0 and "wrote 2 items" in r.output, r.output
    r = run_cli("slice", "create", ds, "by-tag", "--tag", "hard")
    assert r.exit_code == 0
    assert json.loads(run_cli("slice", "show", ds, "by-tag").output)["items"] == [ids[1]]
