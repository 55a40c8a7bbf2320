"""Project instructions rendered from Markdown safely (assay.engine.instructions)
and classes' own keyboard keys (assay.kinds.base.class_list), issue 16 part 3:
unit checks, then over HTTP on SQLite and PostgreSQL (the preview route, the
project view annotators read, a bad key refused with nothing created)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from assay.engine.instructions import to_html
from assay.errors import InvalidInput
from assay.kinds.base import RESERVED_KEYS, class_list
from assay.server import create_app
from factories import count, text_dataset
from test_api import bearer

XSS = ("<script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n"
       "[click](javascript:alert(3)) [v](vbscript:msgbox(4)) [d](data:text/html;base64,PHNjcmlwdD4=) "
       "[mixed](JaVaScRiPt:alert(5)) <javascript:alert(6)>")


def test_markdown_renders_formatting():
    html = to_html("# Rules\n\n**Bold** and *it*, a [link](https://example.org/x).\n\n- one\n- two")
    assert "<h1>Rules</h1>" in html and "<strong>Bold</strong>" in html and "<em>it</em>" in html
    assert '<a href="https://example.org/x" rel="noopener noreferrer nofollow">link</a>' in html
    assert "<li>one</li>" in html
    assert to_html("") == "" and to_html("   \n") == ""


def test_markdown_leaves_html_and_script_links_inert():
    html = to_html(XSS)
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html
    assert "href" not in html  # none of the script/data links became a link
    lowered = html.lower()
    for bad in ('href="javascript', 'href="vbscript', 'href="data'):
        assert bad not in lowered


def test_class_keys_kept_and_checked():
    out = class_list({"classes": [{"name": "cat", "description": "a cat", "key": "c"},
                                  {"name": "dog", "key": ""}, "bird", {"name": "x", "key": "7"}]})
    assert out == [{"name": "cat", "description": "a cat", "key": "c"}, {"name": "dog", "description": ""},
                   {"name": "bird", "description": ""}, {"name": "x", "description": "", "key": "7"}]
    cases = [
        ([{"name": "cat", "key": "c"}, {"name": "cow", "key": "C"}], "'cow': key 'C' is already the key of class 'cat'"),
        ([{"name": "cat", "key": "ab"}], "'cat': its key must be one printable character"),
        ([{"name": "cat", "key": "\n"}], "'cat': its key must be one printable character"),
        ([{"name": "cat", "key": 5}], "'cat': its key must be one printable character"),
        ([{"name": "skip me", "key": "S"}], "'skip me': key 'S' is kept by the labeling screen"),
    ]
    for classes, msg in cases:
        with pytest.raises(InvalidInput, match=msg):
            class_list({"classes": classes})
    for k in RESERVED_KEYS:
        with pytest.raises(InvalidInput, match="kept by the labeling screen|one printable character"):
            class_list({"classes": [{"name": "c", "key": k}]})


def test_instructions_and_keys_over_http(ws):
    ds = text_dataset(ws, "d", ["one", "two"])
    _, tok = ws.add_user("root", "admin")
    ann, atok = ws.add_user("ann", "annotator")
    with TestClient(create_app(ws, reclaim_interval=0)) as c:
        r = c.post("/api/instructions/preview", json={"text": XSS}, headers=bearer(tok))
        assert r.status_code == 200, r.text
        assert r.json()["html"] == to_html(XSS) and "<script" not in r.json()["html"]
        assert c.post("/api/instructions/preview", json={"text": "x"}, headers=bearer(atok)).status_code == 403

        before = count(ws, "projects")
        bad = {"name": "p", "dataset_id": ds["id"], "schema": {"kind": "single", "classes": [
            {"name": "pos", "key": "p"}, {"name": "neg", "key": "P"}]}}
        r = c.post("/api/projects", json=bad, headers=bearer(tok))
        assert r.status_code == 400 and "'neg': key 'P' is already the key of class 'pos'" in r.json()["error"]["message"]
        assert count(ws, "projects") == before

        good = {"name": "p", "dataset_id": ds["id"], "schema": {"kind": "single", "instructions": XSS, "classes": [
            {"name": "pos", "description": "good", "key": "p"}, {"name": "neg"}]}}
        r = c.post("/api/projects", json=good, headers=bearer(tok))
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        ws.add_member(pid, ann["id"])
        view = c.get(f"/api/projects/{pid}", headers=bearer(atok)).json()
    assert view["schema"]["classes"] == [{"name": "pos", "description": "good", "key": "p"},
                                         {"name": "neg", "description": ""}]
    assert view["instructions_html"] == to_html(XSS) and "href" not in view["instructions_html"]


def test_kinds_describe_their_own_options():
    from assay import kinds
    opts = {k["name"]: k["options"] for k in kinds.describe()}
    assert opts["spans"]["overlap"]["type"] == "boolean" and opts["spans"]["overlap"]["default"] is False
    assert opts["single"] == {} and opts["multi"] == {}
    # what the wizard would send for an option is what the kind takes
    assert kinds.get("spans").normalize_schema({"classes": ["PER"], "overlap": True})["overlap"] is True
