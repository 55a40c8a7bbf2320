"""Scheduled background re-fits: which projects are due, and the server's
re-fitter running them without a request (SQLite and PostgreSQL)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from assay.server import create_app
from factories import count, project_with_annotators


def _answer_all(ws, p, people, n=None):
    done = 0
    for u in people:
        while (t := ws.next_task(p["id"], u)) is not None:
            ws.submit(t["id"], u, "pos" if t["item"]["id"] % 3 else "neg")
            done += 1
            if n is not None and done >= n:
                return done
    return done


def test_refits_due_follows_answer_growth(ws):
    p, people = project_with_annotators(ws, 120, 3, overlap=2, target_confidence=0.99, max_answers=3)
    fixed, fixed_people = project_with_annotators(ws, 50, 2, overlap=2, name="fixed")
    multi, multi_people = project_with_annotators(ws, 50, 2, overlap=2, name="multi", kind="multi")
    for u in multi_people:
        while (t := ws.next_task(multi["id"], u)) is not None:
            ws.submit(t["id"], u, ["pos"])
    _answer_all(ws, fixed, fixed_people)
    # fixed overlap is fitted too (its export is the aggregation); multi-label never
    assert ws.refits_due(min_new=50) == [fixed["id"]]
    ws.refit_quality(fixed["id"])
    assert ws.refits_due(min_new=50) == []
    _answer_all(ws, p, people, n=49)
    assert ws.refits_due(min_new=50) == []  # not enough new answers yet
    _answer_all(ws, p, people, n=1)
    assert ws.refits_due(min_new=50) == [p["id"]]
    ws.refit_quality(p["id"])
    assert ws.refits_due(min_new=50) == []  # just fitted
    # growth is relative: 25 % of the 50 fitted answers, but at least min_new
    _answer_all(ws, p, people, n=20)
    assert ws.refits_due(min_new=10) == [p["id"]]
    assert ws.refits_due(min_new=30) == []


def test_a_fixed_overlap_project_without_anything_to_learn_from_is_not_refitted(ws):
    # one answer per item and nothing known: no skill can be learned, the answers are the labels
    single, people = project_with_annotators(ws, 300, 3, overlap=1, name="single")
    assert _answer_all(ws, single, people) == 300
    assert ws.refits_due(min_new=50) == []
    # a known label gives the fit something to learn from
    ws.import_gold(single["id"], [{"item_id": t, "label": "pos"} for t in range(1, 4)])
    assert ws.refits_due(min_new=50) == [single["id"]]
    ws.refit_quality(single["id"])
    assert count(ws, "quality_models", "project_id = :p", p=single["id"]) == 1


def test_fixed_overlap_projects_are_refitted_when_their_answers_doubled(ws):
    fixed, people = project_with_annotators(ws, 200, 2, overlap=2, name="fixed")
    _answer_all(ws, fixed, people, n=100)
    ws.refit_quality(fixed["id"])
    _answer_all(ws, fixed, people, n=50)  # +50 % : an adaptive project would be due
    assert ws.refits_due(min_new=10) == []
    assert ws.refits_due(min_new=10, growth=0.25) == []  # the fixed-overlap share is its own
    _answer_all(ws, fixed, people, n=50)  # doubled
    assert ws.refits_due(min_new=10) == [fixed["id"]]


def test_server_refits_in_the_background(ws):
    p, people = project_with_annotators(ws, 100, 3, overlap=2, target_confidence=0.99, max_answers=3)
    _answer_all(ws, p, people, n=250)
    assert count(ws, "quality_models") == 0
    with TestClient(create_app(ws, reclaim_interval=0, refit_interval=0.2)):
        deadline = time.monotonic() + 30
        while count(ws, "quality_models") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
    assert count(ws, "quality_models", "project_id = :p AND answers = 250", p=p["id"]) == 1
    assert count(ws, "annotator_skills", "project_id = :p", p=p["id"]) == 3
