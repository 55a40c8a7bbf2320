"""The project quality report: Workspace.quality_report and
GET /api/projects/{id}/quality (SQLite and PostgreSQL)."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from assay.errors import InvalidInput, NotFound
from assay.quality.agreement import krippendorff_alpha
from assay.server import create_app
from factories import project_with_annotators


def _label_all(ws, p, people, truth, bad=()):
    """Every annotator answers every item: the truth, or a fixed wrong class if ``bad``."""
    classes = [c["name"] for c in p["schema"]["classes"]]
    for u in people:
        while (t := ws.next_task(p["id"], u)) is not None:
            right = truth[t["item"]["id"]]
            label = classes[(classes.index(right) + 1) % len(classes)] if u["id"] in bad and t["item"]["id"] % 2 else right
            ws.submit(t["id"], u, label)


def _setup(ws, n_items=24, **kw):
    p, people = project_with_annotators(ws, n_items, 3, overlap=3, classes=("cat", "dog", "fox"), **kw)
    tasks = ws.progress(p["id"])
    assert tasks["tasks"] == n_items
    with ws.db.read() as conn:
        ids = sorted(conn.execute(text("SELECT item_id FROM tasks WHERE project_id = :p"), {"p": p["id"]}).scalars())
    truth = {i: ("cat", "dog", "fox")[j % 3] for j, i in enumerate(ids)}
    return p, people, truth


def test_report_without_answers(ws):
    p, _ = project_with_annotators(ws, 3, 2)
    r = ws.quality_report(p["id"])
    assert r["answers"] == 0 and r["annotators"] == []
    assert r["source"] is None and r["agreement"]["krippendorff_alpha"] is None
    assert r["confidence_histogram"]["counts"] == [0] * 10
    assert len(r["confidence_histogram"]["edges"]) == 11
    assert r["status_counts"] == {"open": 0, "resolved": 0, "review": 0}


def test_report_fit_on_the_fly_then_refit(ws):
    p, people, truth = _setup(ws)
    sloppy = people[2]
    _label_all(ws, p, people, truth, bad={sloppy["id"]})
    r = ws.quality_report(p["id"], page_size=7)  # several keyset pages
    assert r["source"] == "fit" and r["method"] == "ds"
    assert r["answers"] == 72 and r["items"] == 24
    assert [a["user_id"] for a in r["annotators"]] == [u["id"] for u in people]
    by = {a["user_id"]: a for a in r["annotators"]}
    assert all(a["answers"] == 24 for a in r["annotators"])
    assert by[people[0]["id"]]["accuracy"] > 0.9 and by[people[1]["id"]]["accuracy"] > 0.9
    assert by[sloppy["id"]]["accuracy"] < by[people[0]["id"]]["accuracy"] - 0.2
    for a in r["annotators"]:
        conf = np.array(a["confusion"])
        assert conf.shape == (3, 3)
        np.testing.assert_allclose(conf.sum(axis=1), 1.0)
    assert by[people[0]["id"]]["confusion"][0][0] > 0.6
    # alpha equals the function over the same answers
    rows, _ = ws.list_answers(p["id"], limit=1000)
    codes = {"cat": 0, "dog": 1, "fox": 2}
    alpha = krippendorff_alpha([x["item_id"] for x in rows], [x["annotator_id"] for x in rows],
                               [codes[x["label"]] for x in rows], n_classes=3)
    assert r["agreement"]["krippendorff_alpha"] == pytest.approx(alpha)
    assert 0.3 < alpha < 1.0
    h = r["confidence_histogram"]
    assert h["source"] == "fit" and sum(h["counts"]) == 24
    assert sum(h["counts"][:3]) == 0  # 3 classes: confidence is never below 1/3
    # the same page size and a tiny one give the same report
    assert ws.quality_report(p["id"], page_size=1) == r

    ws.refit_quality(p["id"])
    r2 = ws.quality_report(p["id"])
    assert r2["source"] == "refit" and r2["fitted_at"] is not None and r2["fitted_answers"] == 72
    assert r2["confidence_histogram"]["source"] == "item_consensus"
    assert sum(r2["confidence_histogram"]["counts"]) == 24
    assert sum(r2["status_counts"].values()) == 24
    by2 = {a["user_id"]: a for a in r2["annotators"]}
    assert by2[sloppy["id"]]["accuracy"] < by2[people[0]["id"]]["accuracy"]


def test_adaptive_project_uses_item_consensus(ws):
    p, people, truth = _setup(ws, n_items=6, target_confidence=0.9, max_answers=3)
    _label_all(ws, p, people, truth)
    r = ws.quality_report(p["id"])
    assert r["source"] == "fit"  # no re-fit stored yet
    assert r["confidence_histogram"]["source"] == "item_consensus"
    n = sum(r["status_counts"].values())
    assert n == 6 and sum(r["confidence_histogram"]["counts"]) == n


def test_multi_label_and_missing_project(ws):
    p, _ = project_with_annotators(ws, 2, 1, kind="multi")
    with pytest.raises(InvalidInput, match="single-label"):
        ws.quality_report(p["id"])
    with pytest.raises(NotFound):
        ws.quality_report(9999)


def test_undefined_alpha_is_null(ws):
    p, people = project_with_annotators(ws, 3, 1)
    while (t := ws.next_task(p["id"], people[0])) is not None:
        ws.submit(t["id"], people[0], "pos")
    r = ws.quality_report(p["id"])
    assert r["answers"] == 3 and r["agreement"]["krippendorff_alpha"] is None
    # a lone annotator: nothing to compare against, so no verdict on them
    lone = r["annotators"][0]
    assert lone["basis"] == {"gold": 0, "shared": 0, "model": False}
    assert lone["accuracy"] is None and lone["confusion"] is None and lone["accuracy_interval"] is None


def test_accuracy_comes_with_an_interval_that_narrows_with_evidence(ws):
    small, people_s, truth_s = _setup(ws, n_items=6, name="small")
    big, people_b, truth_b = _setup(ws, n_items=60, name="big")
    _label_all(ws, small, people_s, truth_s, bad={people_s[2]["id"]})
    _label_all(ws, big, people_b, truth_b, bad={people_b[2]["id"]})
    rs, rb = ws.quality_report(small["id"]), ws.quality_report(big["id"])
    for r in (rs, rb):
        for a in r["annotators"]:
            lo, hi = a["accuracy_interval"]
            assert lo <= a["accuracy"] <= hi and a["basis"]["shared"] > 0
    width = lambda r: max(a["accuracy_interval"][1] - a["accuracy_interval"][0] for a in r["annotators"])  # noqa: E731
    assert width(rb) < width(rs)


def test_api_quality_permissions(ws):
    p, people, truth = _setup(ws, n_items=6)
    _label_all(ws, p, people, truth)
    multi, _ = project_with_annotators(ws, 2, 0, kind="multi", name="m")
    _, admin_tok = ws.add_user("root", "admin")
    rev, rev_tok = ws.add_user("rev", "reviewer")
    outsider, out_tok = ws.add_user("rev2", "reviewer")
    ann_tok = ws.create_token(people[0]["id"])
    ws.add_member(p["id"], rev["id"])
    ws.add_member(multi["id"], rev["id"])

    def h(tok):
        return {"Authorization": f"Bearer {tok}"}

    url = f"/api/projects/{p['id']}/quality"
    with TestClient(create_app(ws, reclaim_interval=0)) as c:
        assert c.get(url).status_code == 401
        assert c.get(url, headers=h(ann_tok)).status_code == 403
        assert c.get(url, headers=h(out_tok)).status_code == 404  # not a member: hidden
        r = c.get(url, headers=h(admin_tok))
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["answers"] == 18 and len(body["annotators"]) == 3
        assert body["agreement"]["krippendorff_alpha"] == pytest.approx(1.0)
        assert c.get(url, headers=h(rev_tok)).json() == body
        bad = c.get(f"/api/projects/{multi['id']}/quality", headers=h(rev_tok))
        assert bad.status_code in (400, 422) and "single-label" in bad.text
        assert c.get("/api/projects/9999/quality", headers=h(admin_tok)).status_code == 404
        # the page is served to anyone (it fetches with the token)
        page = c.get(f"/quality/{p['id']}")
        assert page.status_code == 200 and "quality.js" in page.text
