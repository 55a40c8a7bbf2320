"""The project report (progress, agreement, label distribution, accuracy
against gold and reviews), over a whole project or restricted to a slice's
items: Python, CLI (``assay report --slice``) and HTTP (``?slice=``), on
SQLite and PostgreSQL. The expected numbers are counted here from the
answers the test gives, not read back from assay."""

from __future__ import annotations

import json

import httpx
import pytest

from _server import LiveServer
from assay.errors import NotFound
from factories import answer_item, item_ids, project_with_annotators, run_cli

# per item: the three annotators' answers; items 0-5
ANSWERS = [("pos", "pos", "pos"), ("pos", "neg", "pos"), ("neg", "neg", "neg"),
           ("neg", "pos", "pos"), ("pos", "pos", "neg"), ("neg", "neg", "pos")]
# reviews (the known truth) of items 1 and 3
TRUTH = {1: "pos", 3: "neg"}


def _pairwise(answers) -> float:
    pairs = [(a, b) for i, a in enumerate(answers) for b in answers[i + 1:]]
    return sum(a == b for a, b in pairs) / len(pairs)


def _setup(ws):
    p, people = project_with_annotators(ws, 8, 3, overlap=3)
    ids = item_ids(ws, p["dataset_id"])
    for k, answers in enumerate(ANSWERS):
        for u, label in zip(people, answers):
            answer_item(ws, p["id"], ids[k], u, label)
    rev, _ = ws.add_user("rev", "reviewer")
    ws.add_member(p["id"], rev["id"])
    for k, label in TRUTH.items():
        ws.review(p["id"], ids[k], label, rev)
    return p, people, ids


def _expected(ks, people):
    """What the report over items ``ks`` (indices) must say, counted from ANSWERS and TRUTH."""
    answered = [k for k in ks if k < len(ANSWERS)]
    pair = [_pairwise(ANSWERS[k]) for k in answered]
    per = {}
    for k in ks:
        if k in TRUTH:
            for u, label in zip(people, ANSWERS[k]):
                n, r = per.get(u["username"], (0, 0))
                per[u["username"]] = (n + 1, r + (label == TRUTH[k]))
    return {"answers": 3 * len(answered), "pairwise": sum(pair) / len(pair) if pair else None, "per": per,
            "right": sum(r for _, r in per.values()), "n": sum(n for n, _ in per.values())}


def _check(r, ks, people):
    want = _expected(ks, people)
    assert r["items"] == len(ks)
    assert r["progress"]["tasks"] == len(ks) and r["progress"]["answers"] == want["answers"]
    assert r["progress"]["done"] + r["progress"]["remaining"] == len(ks)
    assert r["progress"]["done"] >= sum(1 for k in ks if k < len(ANSWERS) and k not in TRUTH)
    assert r["agreement"]["pairwise"] == pytest.approx(want["pairwise"])
    assert r["accuracy"]["answers"] == want["n"] and r["accuracy"]["right"] == want["right"]
    got = {a["username"]: (a["answers"], a["right"]) for a in r["accuracy"]["annotators"]}
    assert got == want["per"]
    # every answered item has a final label; reviewed ones from the review, with its class
    assert r["labels"]["labeled"] == sum(1 for k in ks if k < len(ANSWERS))
    assert r["labels"]["sources"].get("review", 0) == sum(1 for k in ks if k in TRUTH)
    assert sum(r["labels"]["distribution"].values()) == r["labels"]["labeled"]


def test_report_over_project_and_slice(ws):
    p, people, ids = _setup(ws)
    whole = ws.project_report(p["id"])
    _check(whole, list(range(8)), people)
    assert whole["slice"] is None and whole["agreement"]["krippendorff_alpha"] is not None
    ks = [0, 2, 3, 7]
    ws.create_slice(p["dataset_id"], "some", items=[ids[k] for k in ks])
    part = ws.project_report(p["id"], slice="some")
    _check(part, ks, people)
    assert part["slice"] == "some" and part["progress"]["answers"] < whole["progress"]["answers"]
    # a slice with no known truth: no accuracy, not a made-up one
    ws.create_slice(p["dataset_id"], "untested", items=[ids[0], ids[2]])
    r = ws.project_report(p["id"], slice="untested")
    assert r["accuracy"]["accuracy"] is None and r["accuracy"]["annotators"] == []
    assert r["agreement"]["pairwise"] == 1.0 and r["labels"]["distribution"] == {"neg": 1, "pos": 1}
    # a query slice by tag works too
    ws.tag_items(p["dataset_id"], [ids[1], ids[3]], "reviewed")
    ws.create_slice(p["dataset_id"], "by-tag", query={"tag": "reviewed"})
    r = ws.project_report(p["id"], slice="by-tag")
    _check(r, [1, 3], people)
    assert r["accuracy"]["accuracy"] == pytest.approx(3 / 6)  # item 1: 2 of 3 right; item 3: 1 of 3
    with pytest.raises(NotFound, match="no slice named"):
        ws.project_report(p["id"], slice="nope")


def test_report_slice_over_http(ws):
    p, people, ids = _setup(ws)
    ws.create_slice(p["dataset_id"], "two", items=[ids[1], ids[4]])
    _, admin = ws.add_user("boss", "admin")
    _, atok = ws.add_user("mallory", "annotator")
    with LiveServer(ws) as srv:
        url = f"{srv.base}/api/projects/{p['id']}/report"
        r = httpx.get(url, params={"slice": "two"}, headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200, r.text
        _check(r.json(), [1, 4], people)
        r = httpx.get(url, headers={"Authorization": f"Bearer {admin}"})
        _check(r.json(), list(range(8)), people)
        assert httpx.get(url, params={"slice": "nope"},
                         headers={"Authorization": f"Bearer {admin}"}).status_code == 404
        assert httpx.get(url, headers={"Authorization": f"Bearer {atok}"}).status_code == 403


def test_report_cli(home):
    from assay.workspace import Workspace

    with Workspace(home) as w:
        p, people, ids = _setup(w)
        w.create_slice(p["dataset_id"], "two", items=[ids[1], ids[4]])
    r = run_cli("report", "p", "--slice", "two", "--json")
    assert r.exit_code == 0, r.output
    _check(json.loads(r.output), [1, 4], people)
    r = run_cli("report", "p", "--slice", "two")
    assert r.exit_code == 0 and "slice 'two': 2 items" in r.output and "accuracy vs gold/reviews: 0.667" in r.output, \
        r.output
    r = run_cli("report", "p")
    assert r.exit_code == 0 and "all items: 8 items" in r.output, r.output
    assert run_cli("report", "p", "--slice", "nope").exit_code == 1
