"""The skill map is computed once per state of its inputs (the workspace's
``_skill_cache``, keyed by :func:`assay.engine.skillmap.inputs`): asking
again costs a read of counts, and any new answer, undo, gold row, gold
change, review or re-fit — through this workspace or another process's —
makes the next request recompute: from the new answers alone when only
answers were added (and then equal to a computation from scratch), from
everything otherwise. Annotators come in pages (``after``, ``limit``;
``?after=&limit=`` over HTTP). SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from assay import Workspace
from assay.engine import reports as engine_reports
from assay.engine import skillmap
from assay.errors import InvalidInput
from factories import answer_item, item_ids, project_with_annotators

CLASSES = ("cat", "dog", "fox")


@pytest.fixture
def crowd(ws, monkeypatch):
    """90 items answered by three annotators (one takes every dog for a fox),
    60 of them gold; a fourth annotator who has answered nothing yet; a
    counter of skill map computations."""
    p, people = project_with_annotators(ws, 90, 4, overlap=4, classes=CLASSES)
    ids = item_ids(ws, p["dataset_id"])
    truth = {i: CLASSES[j % 3] for j, i in enumerate(ids)}
    good, dog_fox, other, late = people
    for i in ids:
        answer_item(ws, p["id"], i, good, truth[i])
        answer_item(ws, p["id"], i, dog_fox, "fox" if truth[i] == "dog" else truth[i])
        answer_item(ws, p["id"], i, other, truth[i] if i % 5 else CLASSES[(CLASSES.index(truth[i]) + 1) % 3])
    ws.import_gold(p["id"], [{"item_id": i, "label": truth[i]} for i in ids[:60]])
    runs = []
    real = engine_reports.skill_map

    def counting(*a, **kw):
        runs.append(1)
        return real(*a, **kw)

    reads = []
    real_read = skillmap.read

    def counting_read(*a, **kw):
        reads.append(1)
        return real_read(*a, **kw)

    monkeypatch.setattr(engine_reports, "skill_map", counting)
    monkeypatch.setattr(skillmap, "read", counting_read)
    return {"p": p, "ids": ids, "truth": truth, "good": good, "dog_fox": dog_fox, "other": other, "late": late,
            "runs": runs, "reads": reads, "scratch": lambda: real(ws.db, ws.get_project(p["id"]), data=real_read(ws.db, ws.get_project(p["id"])))}


def _row(m, user):
    return next((a for a in m["annotators"] if a["user_id"] == user["id"]), None)


def _dog(m, user):
    return {c["class"]: c for c in _row(m, user)["classes"]}["dog"]


def test_asking_again_is_served_from_the_cache(ws, crowd):
    p = crowd["p"]
    first = ws.skill_map(p["id"])
    assert len(crowd["runs"]) == 1
    again = ws.skill_map(p["id"])
    assert again == first and len(crowd["runs"]) == 1
    again["annotators"][0]["accuracy"] = -1.0  # a caller's change never reaches the cache
    assert ws.skill_map(p["id"]) == first and len(crowd["runs"]) == 1
    ws.skill_map(p["id"], min_confidence=0.6)  # another threshold: its own entry
    assert len(crowd["runs"]) == 2
    ws.skill_map(p["id"], min_confidence=0.6)
    assert len(crowd["runs"]) == 2
    # the backstop: an entry older than skill_cache_seconds is recomputed
    ws.skill_cache_seconds = 0.0
    assert ws.skill_map(p["id"]) == first and len(crowd["runs"]) == 3


def test_a_new_answer_and_an_undo_invalidate(ws, crowd):
    p, late = crowd["p"], crowd["late"]
    assert _row(ws.skill_map(p["id"]), late) is None  # no answer on an item with a known label yet
    item = next(i for i in crowd["ids"][60:] if crowd["truth"][i] == "cat" and i % 5)  # unanimous: a consensus truth
    got = answer_item(ws, p["id"], item, late, "cat")
    m = ws.skill_map(p["id"])
    assert len(crowd["runs"]) == 2
    assert _row(m, late)["answers_scored"] == 1
    ws.undo(got["id"], late)
    assert _row(ws.skill_map(p["id"]), late) is None and len(crowd["runs"]) == 3


def test_new_answers_are_added_to_the_kept_inputs(ws, crowd):
    """After answers only, the map is brought up to date from the new answers
    and equals one computed from scratch; an undo (a count that does not add
    up) reads everything again."""
    p, late = crowd["p"], crowd["late"]
    first = ws.skill_map(p["id"])
    assert crowd["reads"] == [1]
    got = []
    for n, item in enumerate(crowd["ids"][60:72]):
        truth = crowd["truth"][item]
        # late is right on most, and takes a fox for a cat twice
        label = "cat" if truth == "fox" and n < 8 else truth
        got.append(answer_item(ws, p["id"], item, late, label))
    m = ws.skill_map(p["id"])
    assert crowd["reads"] == [1] and len(crowd["runs"]) == 2  # recomputed, without reading everything again
    assert m == {**crowd["scratch"](), "annotators_total": m["annotators_total"], "next_after": None}
    assert m != first and _row(m, late)["answers_scored"] > 0
    ws.undo(got[-1]["id"], late)
    answer_item(ws, p["id"], crowd["ids"][80], late, crowd["truth"][crowd["ids"][80]])  # as many answers as before
    m = ws.skill_map(p["id"])
    assert crowd["reads"] == [1, 1]
    assert m == {**crowd["scratch"](), "annotators_total": m["annotators_total"], "next_after": None}


def test_a_gold_row_a_gold_change_and_a_review_invalidate(ws, crowd):
    p, dog_fox, good = crowd["p"], crowd["dog_fox"], crowd["good"]
    before = ws.skill_map(p["id"])
    dogs = [i for i in crowd["ids"][60:] if crowd["truth"][i] == "dog"]  # not gold; dog_fox said fox: no consensus
    ws.import_gold(p["id"], [{"item_id": dogs[0], "label": "dog"}])
    m = ws.skill_map(p["id"])
    assert len(crowd["runs"]) == 2
    assert m["truth_basis"]["gold"] == before["truth_basis"]["gold"] + 1
    assert _dog(m, dog_fox)["answers"] == _dog(before, dog_fox)["answers"] + 1
    assert _dog(m, dog_fox)["skill"] < _dog(before, dog_fox)["skill"]  # one more dog taken for a fox
    # the same gold item changes its label (same number of gold rows): dog_fox was right after all
    ws.import_gold(p["id"], [{"item_id": dogs[0], "label": "fox"}])
    changed = ws.skill_map(p["id"])
    assert len(crowd["runs"]) == 3
    assert changed["truth_basis"] == m["truth_basis"]
    assert _dog(changed, dog_fox)["answers"] == _dog(before, dog_fox)["answers"]
    assert _dog(changed, good)["answers"] == _dog(before, good)["answers"]  # good's "dog" now scored as wrong on fox
    # a reviewer's decision on another disputed item
    reviewer, _ = ws.add_user("rev", "reviewer")
    ws.add_member(p["id"], reviewer["id"])
    ws.review(p["id"], dogs[1], "dog", reviewer)
    r = ws.skill_map(p["id"])
    assert len(crowd["runs"]) == 4
    assert r["truth_basis"]["review"] == changed["truth_basis"]["review"] + 1
    assert _dog(r, dog_fox)["answers"] == _dog(changed, dog_fox)["answers"] + 1


def test_a_change_by_another_process_invalidates(ws, crowd, tmp_path):
    p, late = crowd["p"], crowd["late"]
    ws.skill_map(p["id"])
    item = next(i for i in crowd["ids"][60:] if crowd["truth"][i] == "fox" and i % 5)
    with Workspace(tmp_path / "other", database_url=ws.db.url.render_as_string(hide_password=False)) as other:
        answer_item(other, p["id"], item, late, "fox")
    assert _row(ws.skill_map(p["id"]), late)["answers_scored"] == 1
    assert len(crowd["runs"]) == 2


def test_a_refit_invalidates(ws, crowd):
    p = crowd["p"]
    before = ws.skill_map(p["id"])
    ws.refit_quality(p["id"])
    m = ws.skill_map(p["id"])
    assert len(crowd["runs"]) == 2
    # after a re-fit the consensus is the fitted model's: confident on items two of three agree on
    assert m["truth_basis"]["consensus"] > before["truth_basis"]["consensus"]


def test_annotators_in_pages(ws, crowd):
    p = crowd["p"]
    ws.import_gold(p["id"], [{"item_id": crowd["ids"][0], "label": "cat", "nuance": "tabby"}])
    full = ws.skill_map(p["id"])
    assert full["annotators_total"] == 3 and full["next_after"] is None
    seen, after = [], None
    while True:
        page = ws.skill_map(p["id"], after=after, limit=2)
        assert len(page["annotators"]) <= 2 and page["annotators_total"] == 3
        ids = {a["user_id"] for a in page["annotators"]}
        # each nuance lists the page's annotators only
        assert {r["user_id"] for r in page["nuances"][0]["annotators"]} == ids
        seen += page["annotators"]
        after = page["next_after"]
        if after is None:
            break
        assert after == page["annotators"][-1]["user_id"]
    assert seen == full["annotators"]
    assert len(crowd["runs"]) == 1  # every page from the one computation
    assert ws.skill_map(p["id"], after=seen[-1]["user_id"])["annotators"] == []
    for bad in (0, -1, True, 1.5):
        with pytest.raises(InvalidInput):
            ws.skill_map(p["id"], limit=bad)


def test_pages_over_http(ws, crowd):
    from fastapi.testclient import TestClient

    from assay.server import create_app

    p = crowd["p"]
    _, tok = ws.add_user("boss", "admin")
    h = {"Authorization": f"Bearer {tok}"}
    full = ws.skill_map(p["id"])
    with TestClient(create_app(ws, reclaim_interval=0, refit_interval=0)) as c:
        r = c.get(f"/api/projects/{p['id']}/skills", headers=h, params={"limit": 2})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["annotators"] == full["annotators"][:2] and body["annotators_total"] == 3
        r = c.get(f"/api/projects/{p['id']}/skills", headers=h, params={"after": body["next_after"]})
        assert r.json()["annotators"] == full["annotators"][2:] and r.json()["next_after"] is None
        for bad in ({"limit": 0}, {"limit": 1001}, {"after": -1}):
            assert c.get(f"/api/projects/{p['id']}/skills", headers=h, params=bad).status_code == 422
