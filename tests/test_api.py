"""The HTTP API (docs/api.md) through FastAPI's TestClient over a real
workspace, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass

import pandas as pd
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from assay.server import create_app
from factories import count, item_ids, snapshot, text_dataset, zip_bytes


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def assert_error(r, status: int, code: str | None = None) -> dict:
    """Every error has the one documented shape."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"code", "message", "details"}, err
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["details"], dict)
    if code is not None:
        assert err["code"] == code, err
    return err


@dataclass
class Env:
    ws: object
    client: TestClient
    admin: dict
    reviewer: dict
    ann: dict
    ann2: dict
    outsider: dict
    dataset: dict
    project: dict
    other: dict


TEXTS = [f"review number {i}" for i in range(6)]
META = [{"lang": "en" if i % 2 else "de", "secret": f"s3cr3t-{i}", "gold": "pos"} for i in range(6)]


def _user(ws, name, role):
    u, tok = ws.add_user(name, role)
    return {**u, "token": tok, "h": bearer(tok)}


@pytest.fixture
def env(ws):
    ds = text_dataset(ws, "reviews", TEXTS, meta=META, source="crawl")
    project = ws.create_project("sentiment", ds["id"], ["pos", "neg"], overlap=2, show_fields=["lang"])
    other = ws.create_project("hidden", ds["id"], ["yes", "no"])
    e = Env(ws, None, _user(ws, "root", "admin"), _user(ws, "rev", "reviewer"), _user(ws, "ann", "annotator"),
            _user(ws, "ann2", "annotator"), _user(ws, "outsider", "annotator"), ds, project, other)
    for u in (e.reviewer, e.ann, e.ann2):
        ws.add_member(project["id"], u["id"])
    with TestClient(create_app(ws, reclaim_interval=0)) as client:
        e.client = client
        yield e


# ---------------------------------------------------------------- auth


def test_auth_required_everywhere(env):
    c = env.client
    pid = env.project["id"]
    calls = [("get", "/api/me"), ("get", "/api/projects"), ("get", f"/api/projects/{pid}"),
             ("post", f"/api/projects/{pid}/tasks/next"), ("post", "/api/tasks/1/answers"),
             ("get", f"/api/projects/{pid}/export"), ("get", "/api/datasets"), ("delete", "/api/answers/1")]
    for method, url in calls:
        assert_error(getattr(c, method)(url), 401, "unauthorized")
        for h in ({"Authorization": "Bearer nope"}, {"Authorization": env.ann["token"]},
                  {"Authorization": f"Basic {env.ann['token']}"}):
            assert_error(getattr(c, method)(url, headers=h), 401, "unauthorized")
    r = c.get("/api/me", headers=env.ann["h"])
    assert r.status_code == 200
    assert r.json() == {"id": env.ann["id"], "username": "ann", "role": "annotator"}
    assert c.get("/api/me", headers={"authorization": f"bearer {env.ann['token']}"}).status_code == 200


def test_login(env):
    env.ws.set_password("ann", "s3cret-pass")
    c = env.client
    r = c.post("/api/auth/login", json={"username": "ann", "password": "s3cret-pass"})
    assert r.status_code == 200
    body = r.json()
    assert body["user"] == {"id": env.ann["id"], "username": "ann", "role": "annotator"}
    assert c.get("/api/me", headers=bearer(body["token"])).json()["username"] == "ann"
    n = count(env.ws, "tokens")
    assert_error(c.post("/api/auth/login", json={"username": "ann", "password": "wrong"}), 401, "unauthorized")
    assert_error(c.post("/api/auth/login", json={"username": "ghost", "password": "x"}), 401, "unauthorized")
    assert_error(c.post("/api/auth/login", json={"username": "ann"}), 422, "validation_error")
    assert count(env.ws, "tokens") == n


# ---------------------------------------------------------------- admin over HTTP


def test_admin_sets_up_a_project_over_http(env, tmp_path):
    c, h = env.client, env.admin["h"]
    r = c.post("/api/users", json={"username": "newbie", "role": "annotator"}, headers=h)
    assert r.status_code == 201
    newbie, tok = r.json()["user"], r.json()["token"]
    assert newbie["username"] == "newbie"
    assert_error(c.post("/api/users", json={"username": "newbie"}, headers=h), 409, "conflict")
    assert_error(c.post("/api/users", json={"username": "x", "role": "king"}, headers=h), 422)
    assert "newbie" in [u["username"] for u in c.get("/api/users", headers=h).json()["users"]]

    r = c.post("/api/datasets", json={"name": "tweets"}, headers=h)
    assert r.status_code == 201
    ds = r.json()
    assert ds["name"] == "tweets" and ds["item_count"] == 0
    assert_error(c.post("/api/datasets", json={"name": "tweets"}, headers=h), 409, "conflict")
    csv_bytes = b"id,tweet\n1,hello world\n2,good morning\n3,hello world\n"
    r = c.post(f"/api/datasets/{ds['id']}/import", headers=h,
               files={"file": ("tweets.csv", csv_bytes, "text/csv")},
               data={"text_column": "tweet", "license": "CC-BY", "consent": "yes"})
    assert r.status_code == 200, r.text
    assert (r.json()["added"], r.json()["skipped"]) == (2, 1)
    assert c.get(f"/api/datasets/{ds['id']}", headers=h).json()["item_count"] == 2
    items = c.get(f"/api/datasets/{ds['id']}/items", headers=h).json()["items"]
    assert [(i["text"], i["license"], i["source"]) for i in items] == [
        ("hello world", "CC-BY", "upload:tweets.csv"), ("good morning", "CC-BY", "upload:tweets.csv")]

    body = {"name": "tweet-sentiment", "dataset_id": ds["id"], "overlap": 1,
            "schema": {"kind": "single", "classes": [{"name": "pos"}, "neg"]}}
    r = c.post("/api/projects", json=body, headers=h)
    assert r.status_code == 201, r.text
    proj = r.json()
    assert [x["name"] for x in proj["schema"]["classes"]] == ["pos", "neg"]
    before = snapshot(env.ws)
    assert_error(c.post("/api/projects", json=body, headers=h), 409, "conflict")
    assert_error(c.post("/api/projects", json={**body, "name": "b",
                        "schema": {"classes": ["pos", "pos"]}}, headers=h), 400, "bad_request")
    assert_error(c.post("/api/projects", json={**body, "name": "c", "overlap": 0}, headers=h), 422)
    assert_error(c.post("/api/projects", json={**body, "name": "d",
                        "schema": {"kind": "cuboids", "classes": ["a"]}}, headers=h), 422)
    assert_error(c.post("/api/projects", json={**body, "name": "e", "schema": {"classes": []}}, headers=h), 422)
    assert_error(c.post("/api/projects", json={**body, "name": "f", "dataset_id": 999}, headers=h), 404)
    assert snapshot(env.ws) == before

    r = c.post(f"/api/projects/{proj['id']}/members", json={"username": "newbie"}, headers=h)
    assert r.status_code == 201 and [m["username"] for m in r.json()["members"]] == ["newbie"]
    nh = bearer(tok)
    assert [p["name"] for p in c.get("/api/projects", headers=nh).json()["projects"]] == ["tweet-sentiment"]
    task = c.post(f"/api/projects/{proj['id']}/tasks/next", headers=nh).json()["task"]
    assert task["item"]["text"] in ("hello world", "good morning")
    assert c.delete(f"/api/projects/{proj['id']}/members/{newbie['id']}", headers=h).status_code == 204
    assert c.get("/api/projects", headers=nh).json()["projects"] == []
    assert_error(c.get(f"/api/projects/{proj['id']}", headers=nh), 404, "not_found")
    # Admin endpoints are refused to everybody else.
    for who in (env.ann, env.reviewer):
        assert_error(c.post("/api/datasets", json={"name": "z"}, headers=who["h"]), 403, "forbidden")
        assert_error(c.post("/api/users", json={"username": "z"}, headers=who["h"]), 403, "forbidden")
        assert_error(c.post("/api/projects", json={**body, "name": "z"}, headers=who["h"]), 403, "forbidden")
        assert_error(c.get("/api/users", headers=who["h"]), 403, "forbidden")


# ---------------------------------------------------------------- who sees what


def test_annotator_sees_only_own_projects(env):
    c, h = env.client, env.ann["h"]
    assert [p["name"] for p in c.get("/api/projects", headers=h).json()["projects"]] == ["sentiment"]
    hidden = env.other["id"]
    for method, url in (("get", f"/api/projects/{hidden}"), ("get", f"/api/projects/{hidden}/progress"),
                        ("post", f"/api/projects/{hidden}/tasks/next"), ("get", "/api/projects/9999"),
                        ("post", "/api/projects/9999/tasks/next")):
        assert_error(getattr(c, method)(url, headers=h), 404, "not_found")
    assert c.get("/api/projects", headers=env.outsider["h"]).json()["projects"] == []
    names = [p["name"] for p in c.get("/api/projects", headers=env.admin["h"]).json()["projects"]]
    assert names == ["sentiment", "hidden"]
    assert count(env.ws, "leases") == 0


def test_annotator_cannot_read_answers_exports_or_items(env):
    c, ws, pid = env.client, env.ws, env.project["id"]
    t = ws.next_task(pid, env.ann2)
    ws.submit(t["id"], env.ann2, "pos")
    item = item_ids(ws, env.dataset["id"])[0]
    for url in (f"/api/projects/{pid}/answers", f"/api/projects/{pid}/export",
                f"/api/projects/{pid}/export?format=csv", f"/api/datasets/{env.dataset['id']}/items",
                f"/api/datasets/{env.dataset['id']}", "/api/datasets", f"/api/items/{item}"):
        err = assert_error(c.get(url, headers=env.ann["h"]), 403, "forbidden")
        assert "s3cr3t" not in json.dumps(err)
    # The reviewer of the project can; a reviewer of no project gets "not found".
    r = c.get(f"/api/projects/{pid}/answers", headers=env.reviewer["h"])
    assert r.status_code == 200 and [a["annotator_id"] for a in r.json()["answers"]] == [env.ann2["id"]]
    lonely = _user(ws, "lonely-reviewer", "reviewer")
    assert_error(c.get(f"/api/projects/{pid}/answers", headers=lonely["h"]), 404, "not_found")
    assert_error(c.get(f"/api/projects/{pid}/export", headers=lonely["h"]), 404, "not_found")
    # Progress: an annotator sees only their own counts (project totals that
    # move with their answers would tell gold apart); staff see everything.
    prog = c.get(f"/api/projects/{pid}/progress", headers=env.ann["h"]).json()
    assert set(prog) == {"project_id", "me", "annotators"}
    assert [a["user_id"] for a in prog["annotators"]] == [env.ann["id"]]
    assert prog["me"]["answers"] == 0
    staff = c.get(f"/api/projects/{pid}/progress", headers=env.reviewer["h"]).json()
    assert staff["answers"] == 1 and staff["tasks"] == len(TEXTS)
    assert {a["user_id"] for a in staff["annotators"]} >= {env.ann["id"], env.ann2["id"]}


def test_task_shows_only_show_fields_and_member_content(env):
    c, h = env.client, env.ann["h"]
    r = c.post(f"/api/projects/{env.project['id']}/tasks/next", headers=h)
    assert r.status_code == 200
    task = r.json()["task"]
    idx = TEXTS.index(task["item"]["text"])
    assert task["item"]["fields"] == {"lang": META[idx]["lang"]}
    assert "s3cr3t" not in r.text and "gold" not in r.text
    assert set(task) == {"id", "project_id", "lease_expires_at", "item", "suggestion"}
    assert task["suggestion"] is None  # no model prediction for this item
    r = c.get(f"/api/items/{task['item']['id']}/content", headers=h)
    assert r.status_code == 200 and r.text == TEXTS[idx] and r.headers["content-type"].startswith("text/plain")
    assert_error(c.get(f"/api/items/{task['item']['id']}/content", headers=env.outsider["h"]), 404)
    assert_error(c.get("/api/items/99999/content", headers=env.admin["h"]), 404)


# ---------------------------------------------------------------- answering


def test_full_flow_next_answer_skip_undo(env):
    c, h, pid = env.client, env.ann["h"], env.project["id"]
    t1 = c.post(f"/api/projects/{pid}/tasks/next", headers=h).json()["task"]
    assert c.post(f"/api/projects/{pid}/tasks/next", headers=h).json()["task"]["id"] == t1["id"]
    t2 = c.post(f"/api/projects/{pid}/tasks/next", json={"exclude": [t1["id"]]}, headers=h).json()["task"]
    assert t2["id"] != t1["id"]

    r = c.post(f"/api/tasks/{t1['id']}/answers", json={"label": "pos"}, headers=h)
    assert r.status_code == 201, r.text
    ans = r.json()["answer"]
    assert {k: ans[k] for k in ("task_id", "item_id", "project_id", "annotator_id", "label")} == {
        "task_id": t1["id"], "item_id": t1["item"]["id"], "project_id": pid,
        "annotator_id": env.ann["id"], "label": "pos"}
    assert_error(c.post(f"/api/tasks/{t1['id']}/answers", json={"label": "neg"}, headers=h), 409, "conflict")

    r = c.post(f"/api/tasks/{t2['id']}/skip", headers=h)
    assert r.status_code == 200 and r.json() == {"ok": True}
    assert_error(c.post(f"/api/tasks/{t2['id']}/skip", headers=h), 409, "conflict")

    assert_error(c.delete(f"/api/answers/{ans['id']}", headers=env.ann2["h"]), 404, "not_found")
    r = c.delete(f"/api/answers/{ans['id']}", headers=h)
    assert r.status_code == 200
    assert r.json()["task"]["id"] == t1["id"]
    assert_error(c.delete(f"/api/answers/{ans['id']}", headers=h), 404, "not_found")
    assert c.get(f"/api/projects/{pid}/answers", headers=env.admin["h"]).json()["answers"] == []
    # The undone task is leased back: next hands it out again, and it can be relabeled.
    assert c.post(f"/api/projects/{pid}/tasks/next", headers=h).json()["task"]["id"] == t1["id"]
    r = c.post(f"/api/tasks/{t1['id']}/answers", json={"label": "neg"}, headers=h)
    assert r.status_code == 201
    answers = c.get(f"/api/projects/{pid}/answers", headers=env.admin["h"]).json()["answers"]
    assert [(a["task_id"], a["label"], a["annotator_id"]) for a in answers] == [(t1["id"], "neg", env.ann["id"])]
    me = c.get(f"/api/projects/{pid}/progress", headers=h).json()["me"]
    assert (me["answers"], me["skips"]) == (1, 1)
    # The skipped task never comes back to ann; the rest do, then nothing.
    seen = []
    while (t := c.post(f"/api/projects/{pid}/tasks/next", headers=h).json()["task"]) is not None:
        seen.append(t["id"])
        assert c.post(f"/api/tasks/{t['id']}/answers", json={"label": "pos"}, headers=h).status_code == 201
    assert t2["id"] not in seen and t1["id"] not in seen and len(seen) == len(TEXTS) - 2


def test_bad_answers_change_nothing(env):
    c, h, pid = env.client, env.ann["h"], env.project["id"]
    t = c.post(f"/api/projects/{pid}/tasks/next", headers=h).json()["task"]
    before = snapshot(env.ws)
    url = f"/api/tasks/{t['id']}/answers"
    err = assert_error(c.post(url, json={"label": "maybe"}, headers=h), 400, "bad_request")
    assert "maybe" in err["message"]
    assert_error(c.post(url, json={"label": ["pos", "neg"]}, headers=h), 400, "bad_request")
    assert_error(c.post(url, json={"label": 3}, headers=h), 422, "validation_error")
    assert_error(c.post(url, json={}, headers=h), 422, "validation_error")
    for raw in (b'{"label": "pos"', b"not json", b'{"label": }'):
        assert_error(c.post(url, content=raw, headers={**h, "Content-Type": "application/json"}), 400, "bad_request")
    assert_error(c.post(url, content=b'["pos"]', headers={**h, "Content-Type": "application/json"}), 400)
    nxt = f"/api/projects/{pid}/tasks/next"
    assert_error(c.post(nxt, content=b"{oops", headers=h), 400, "bad_request")
    assert_error(c.post(nxt, content=b"[1, 2]", headers=h), 400, "bad_request")
    assert_error(c.post(nxt, json={"exclude": "all"}, headers=h), 400, "bad_request")
    assert_error(c.post(nxt, json={"exclude": ["1"]}, headers=h), 400, "bad_request")
    # Wrong ids: 404, for tasks, answers and projects alike.
    assert_error(c.post("/api/tasks/99999/answers", json={"label": "pos"}, headers=h), 404, "not_found")
    assert_error(c.post("/api/tasks/99999/skip", headers=h), 404, "not_found")
    assert_error(c.delete("/api/answers/99999", headers=h), 404, "not_found")
    assert_error(c.post("/api/projects/99999/tasks/next", headers=h), 404, "not_found")
    # A task of a project ann is not in: not found, and nothing stored.
    hidden_task = env.ws.next_task(env.other["id"], env.admin)
    assert_error(c.post(f"/api/tasks/{hidden_task['id']}/answers", json={"label": "yes"}, headers=h), 404)
    assert_error(c.post(f"/api/tasks/{hidden_task['id']}/skip", headers=h), 404)
    after = snapshot(env.ws)
    assert after == {**before, "leases": before["leases"] + 1}  # only the admin's lease above
    assert count(env.ws, "answers") == 0
    # Unknown routes and methods use the same error shape.
    assert_error(c.get("/api/nothing-here", headers=h), 404, "not_found")
    assert_error(c.put("/api/me", headers=h), 405)


# ---------------------------------------------------------------- uploads


def test_upload_errors_change_nothing(ws, tmp_path):
    admin, tok = ws.add_user("root", "admin")
    h = bearer(tok)
    ds = text_dataset(ws, "d", ["existing"])
    with TestClient(create_app(ws, reclaim_interval=0, max_upload_mb=0.01)) as c:
        url = f"/api/datasets/{ds['id']}/import"
        before = snapshot(ws)

        def post(name, data, **form):
            return c.post(url, headers=h, files={"file": (name, data, "application/octet-stream")}, data=form)

        big = b"text\n" + b"".join(b"a line of text number %d\n" % i for i in range(1000))
        assert len(big) > 0.01 * (1 << 20)
        assert_error(post("big.csv", big), 413, "too_large")
        for name in ("../evil.csv", "..", "a/b.csv", "..\\evil.csv", ".hidden.csv", "x/../../y.csv"):
            assert_error(post(name, b"text\nhello\n"), 400, "bad_request")
        assert_error(post("notes.txt", b"text\nhello\n"), 415, "unsupported")
        err = assert_error(post("data.csv", b"body,lang\nhello,en\n"), 400, "bad_request")
        assert "'text'" in err["message"] and "'body'" in err["message"] and "'lang'" in err["message"]
        err = assert_error(post("data.csv", b"body,lang\nhello,en\n", text_column="review"), 400)
        assert "'review'" in err["message"]
        assert_error(post("data.csv", b"text,lang\nhello,en\n,de\n"), 400, "bad_request")  # empty text
        png = _png()
        err = assert_error(post("imgs.zip", zip_bytes({"a.png": png, "readme.md": b"# hi"})), 400, "bad_request")
        assert "readme.md" in err["message"]
        err = assert_error(post("imgs.zip", zip_bytes({"a.png": png, "../evil.png": png})), 400, "bad_request")
        assert "evil.png" in err["message"]
        assert_error(post("imgs.zip", b"not a zip"), 400, "bad_request")
        assert_error(c.post("/api/datasets/9999/import", headers=h,
                            files={"file": ("ok.csv", b"text\nhi\n", "text/csv")}), 404, "not_found")
        assert_error(c.post(url, headers=h, data={"text_column": "text"}), 422, "validation_error")
        assert snapshot(ws) == before
        assert not ws.blobs.root.exists() or not any(p.is_file() for p in ws.blobs.root.rglob("*"))

        # A good upload of each kind still works with the same app.
        r = post("imgs.zip", zip_bytes({"a.png": png}))
        assert r.status_code == 200 and r.json()["added"] == 1, r.text
        r = post("more.jsonl", b'{"text": "new one", "k": 1}\n')
        assert r.status_code == 200 and r.json()["added"] == 1, r.text
        assert ws.get_dataset(ds["id"])["item_count"] == 3

        # The image is handed out with a content URL that serves its bytes to members only.
        proj = ws.create_project("imgs", ds["id"], ["a", "b"])
        ann, ann_tok = ws.add_user("ann")
        ws.add_member(proj["id"], ann["id"])
        _, out_tok = ws.add_user("outsider")
        kinds = {}
        while (t := c.post(f"/api/projects/{proj['id']}/tasks/next", headers=bearer(ann_tok)).json()["task"]):
            kinds[t["item"]["kind"]] = t["item"]
            c.post(f"/api/tasks/{t['id']}/answers", json={"label": "a"}, headers=bearer(ann_tok))
        img = kinds["image"]
        assert img["text"] is None and img["content_url"] == f"/api/items/{img['id']}/content"
        r = c.get(img["content_url"], headers=bearer(ann_tok))
        assert r.status_code == 200 and r.content == png and r.headers["content-type"] == "image/png"
        assert_error(c.get(img["content_url"], headers=bearer(out_tok)), 404, "not_found")
        assert_error(c.get(img["content_url"]), 401, "unauthorized")


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (4, 4), 128).save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------- items, docs, export


def test_items_keyset_pagination_walks_everything_once(ws):
    admin, tok = ws.add_user("root", "admin")
    ds = text_dataset(ws, "many", [f"t{i}" for i in range(23)])
    text_dataset(ws, "other", [f"o{i}" for i in range(5)])  # must not show up
    want = item_ids(ws, ds["id"])
    with TestClient(create_app(ws, reclaim_interval=0)) as c:
        for limit in (1, 5, 23, 100):
            seen, after, pages = [], None, 0
            while True:
                params = {"limit": limit} | ({"after": after} if after is not None else {})
                r = c.get(f"/api/datasets/{ds['id']}/items", params=params, headers=bearer(tok))
                assert r.status_code == 200
                body = r.json()
                assert len(body["items"]) <= limit
                seen += [i["id"] for i in body["items"]]
                pages += 1
                after = body["next_after"]
                if after is None:
                    break
                assert after == seen[-1]
                assert pages <= 30
            assert seen == want, limit
        assert_error(c.get(f"/api/datasets/{ds['id']}/items?limit=0", headers=bearer(tok)), 422)
        assert_error(c.get(f"/api/datasets/{ds['id']}/items?limit=5000", headers=bearer(tok)), 422)
        assert_error(c.get("/api/datasets/999/items", headers=bearer(tok)), 404)


def test_docs_and_openapi(env):
    c = env.client
    r = c.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for p in ("/api/projects/{project_id}/tasks/next", "/api/tasks/{task_id}/answers",
              "/api/datasets/{dataset_id}/import", "/api/projects/{project_id}/export", "/api/answers/{answer_id}"):
        assert p in paths
    r = c.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()


def test_export_streams_all_formats(env):
    c, ws, pid = env.client, env.ws, env.project["id"]
    t = ws.next_task(pid, env.ann)
    ws.submit(t["id"], env.ann, "neg")
    ws.next_task(pid, env.ann2)
    ws.submit(t["id"], env.ann2, "pos")  # tie: the first answer (neg) wins
    for who in (env.admin, env.reviewer):
        r = c.get(f"/api/projects/{pid}/export", headers=who["h"])
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        assert "sentiment-labels.jsonl" in r.headers["content-disposition"]
        recs = [json.loads(x) for x in r.text.splitlines()]
        assert len(recs) == len(TEXTS)
        (rec,) = [x for x in recs if x["item_id"] == t["item"]["id"]]
        assert rec["label"] == "neg" and [a["annotator_id"] for a in rec["answers"]] == [env.ann["id"], env.ann2["id"]]
        assert rec["meta"] == META[TEXTS.index(rec["text"])]  # staff exports include metadata

    r = c.get(f"/api/projects/{pid}/export?format=csv&labeled_only=true", headers=env.admin["h"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    df = pd.read_csv(io.BytesIO(r.content))
    assert list(df["item_id"]) == [t["item"]["id"]] and list(df["label"]) == ["neg"]

    r = c.get(f"/api/projects/{pid}/export?format=parquet", headers=env.admin["h"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(r.content))
    assert table.num_rows == len(TEXTS)
    labels = dict(zip(table.column("item_id").to_pylist(), table.column("label").to_pylist()))
    assert labels[t["item"]["id"]] == "neg" and sum(v is not None for v in labels.values()) == 1

    assert_error(c.get(f"/api/projects/{pid}/export?format=xml", headers=env.admin["h"]), 422, "validation_error")
    assert_error(c.get("/api/projects/9999/export", headers=env.admin["h"]), 404, "not_found")
