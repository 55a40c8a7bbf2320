"""One resolver of an item's final label (assay.engine.resolver): gold >
reviewer decision > consensus of the project's aggregation > auto-label >
majority vote, with the source and confidence, read by export, the API and
the simulations alike. SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import JSON, bindparam, text

from factories import answer_item, embedded_dataset, item_ids, project_with_annotators


def _records(ws, pid, **kw) -> dict:
    return {r["item_id"]: r for r in ws.export_records(pid, **kw)}


def _insert_auto(ws, pid, item_id, label, confidence):
    """Test set-up: an auto-label as the ML loop stores it (assay.learn.step)."""
    with ws.db.write() as conn:
        conn.execute(text(
            "INSERT INTO auto_labels (project_id, item_id, label, confidence, model_version, audit, created_at) "
            "VALUES (:p, :i, :label, :c, 1, false, :now)").bindparams(bindparam("label", type_=JSON)),
            {"p": pid, "i": item_id, "label": label, "c": confidence, "now": time.time()})


def test_auto_labeled_items_export_with_their_auto_label(ws):
    """Bug 1 of issue 12: an item the ML loop labeled exported with label None
    and labeled_only dropped it."""
    pytest.importorskip("sklearn")
    from assay.learn.step import ml_step

    n = 120
    ds, ids, y = embedded_dataset(ws, n, seed=3)
    p = ws.create_project("p", ds["id"], ["a", "b"], overlap=1, target_confidence=0.95, max_answers=3)
    ws.update_project(p["id"], ml_space="f", auto_label_target=0.9, audit_rate=0.0)
    ml_step(ws, p["id"], batch=10)
    ws.import_gold(p["id"], [{"item_id": ids[i], "label": "ab"[y[i]]} for i in range(80)])
    step = ml_step(ws, p["id"])
    assert step["auto_labeled"] > 10
    with ws.db.read() as conn:
        autos = {r.item_id: (r.label, r.confidence) for r in conn.execute(text(
            "SELECT item_id, label, confidence FROM auto_labels WHERE project_id = :p").columns(label=JSON),
            {"p": p["id"]})}
        model_only = set(conn.execute(text(
            "SELECT item_id FROM item_consensus WHERE project_id = :p AND answers = 0"), {"p": p["id"]}).scalars())
    recs = _records(ws, p["id"])
    for item, (label, conf) in autos.items():
        r = recs[item]
        assert (r["label"], r["label_method"], r["n_answers"]) == (label, "auto", 0)
        assert r["confidence"] == pytest.approx(conf)
    only = _records(ws, p["id"], labeled_only=True)
    assert set(autos) <= set(only)
    # gold stays gold; a model's guess that nobody certified (a model-only
    # consensus row: no answers, no auto-label) is no label
    assert all(recs[ids[i]]["label_method"] == "gold" for i in range(80))
    guesses = model_only - set(autos) - set(ids[:80])
    assert guesses, "the set-up should leave model-only consensus rows"
    for item in guesses:
        assert recs[item]["label"] is None and recs[item]["label_method"] is None
        assert item not in only
    # every exported label is what the resolver says
    from assay.engine.resolver import final_labels

    fin = final_labels(ws.db, ws.get_project(p["id"]), list(recs))
    assert {i: (f.label, f.source) for i, f in fin.items()} == {
        i: (r["label"], r["label_method"]) for i, r in recs.items()}


def _fixed_crowd(ws, n_before=40):
    """A fixed-overlap project: a reliable annotator and two that are wrong
    on half of the items each, on one in ten together (majority vote is wrong there)."""
    p, (good, bad1, bad2) = project_with_annotators(ws, n_before + 10, 3, overlap=3, classes=("a", "b"))
    ids = item_ids(ws, p["dataset_id"])
    truth = {i: "ab"[j % 2] for j, i in enumerate(ids)}
    flip = {"a": "b", "b": "a"}

    def answer(j, wrong1, wrong2):
        i = ids[j]
        answer_item(ws, p["id"], i, good, truth[i])
        answer_item(ws, p["id"], i, bad1, flip[truth[i]] if wrong1 else truth[i])
        answer_item(ws, p["id"], i, bad2, flip[truth[i]] if wrong2 else truth[i])

    for j in range(n_before):
        answer(j, j % 10 in (0, 1, 2, 3, 4), j % 10 in (0, 5, 6, 7, 8))
    # gold on some items where one of them was wrong alone: the fit learns who is reliable
    ws.import_gold(p["id"], [{"item_id": ids[j], "label": truth[ids[j]]}
                             for j in range(n_before) if j % 10 in (1, 2, 5, 6)])
    return p, ids, truth, answer


def test_fixed_overlap_projects_export_their_aggregation_not_a_plain_vote(ws):
    p, ids, truth, answer = _fixed_crowd(ws)
    # the background re-fitter covers fixed-overlap projects too
    assert p["id"] in ws.refits_due(min_new=50)
    ws.refit_quality(p["id"])
    # answers that come after the re-fit: the two unreliable annotators agree, wrongly
    for j in range(40, 45):
        answer(j, True, True)
    for j in range(45, 50):
        answer(j, False, False)
    recs = _records(ws, p["id"])
    colluded = [ids[j] for j in list(range(0, 40, 10)) + list(range(40, 45))]
    for i in colluded:
        assert recs[i]["label"] == truth[i], recs[i]
        assert recs[i]["label_method"] == "ds"
        assert 0.5 < recs[i]["confidence"] <= 1.0
    assert all(recs[ids[j]]["label"] == truth[ids[j]] for j in range(50))
    assert {recs[ids[j]]["label_method"] for j in range(40) if j % 10 in (1, 2, 5, 6)} == {"gold"}
    # the API's page of final labels says the same
    from assay.engine.resolver import iter_final

    fin = list(iter_final(ws.db, ws.get_project(p["id"])))
    assert [f.item_id for f in fin] == list(recs)
    assert {f.source for f in fin} == {"consensus:ds", "gold"}


def test_precedence_gold_review_consensus_auto_majority(ws):
    from assay.engine.resolver import final_labels, iter_final

    # adaptive: every answered item has a running consensus (method "online" before a re-fit)
    p, (u0, u1) = project_with_annotators(ws, 6, 2, overlap=2, classes=("a", "b"), name="ad",
                                          target_confidence=0.9, max_answers=2)
    ids = item_ids(ws, p["dataset_id"])
    admin, _ = ws.add_user("boss", "admin")
    for i in ids[:4]:
        answer_item(ws, p["id"], i, u0, "a")
        answer_item(ws, p["id"], i, u1, "a")
    ws.import_gold(p["id"], [{"item_id": ids[0], "label": "b"}])   # gold beats everything
    ws.review(p["id"], ids[1], "b", admin)                         # a reviewer's decision
    _insert_auto(ws, p["id"], ids[0], "a", 0.99)                   # never beats gold
    _insert_auto(ws, p["id"], ids[2], "b", 0.99)                   # people answered: consensus wins
    _insert_auto(ws, p["id"], ids[4], "b", 0.97)                   # nobody answered: the auto-label
    fin = final_labels(ws.db, ws.get_project(p["id"]), ids)
    got = {k: (fin[ids[k]].label, fin[ids[k]].source) for k in range(6)}
    assert got == {0: ("b", "gold"), 1: ("b", "review"), 2: ("a", "consensus:online"),
                   3: ("a", "consensus:online"), 4: ("b", "auto"), 5: (None, None)}
    assert fin[ids[0]].confidence == fin[ids[1]].confidence == 1.0
    assert fin[ids[4]].confidence == pytest.approx(0.97)
    assert fin[ids[5]].confidence is None
    recs = _records(ws, p["id"])
    assert {i: (r["label"], r["label_method"]) for i, r in recs.items()} == {
        ids[0]: ("b", "gold"), ids[1]: ("b", "review"), ids[2]: ("a", "online"), ids[3]: ("a", "online"),
        ids[4]: ("b", "auto"), ids[5]: (None, None)}
    assert [r["label_source"] for r in recs.values()] == [
        "gold", "review", "consensus:online", "consensus:online", "auto", None]

    # fixed overlap, never fitted: the auto-label beats a plain vote
    q, (v0, v1, v2) = project_with_annotators(ws, 3, 3, overlap=3, classes=("a", "b"), name="fx")
    qi = item_ids(ws, q["dataset_id"])
    for i in qi:
        answer_item(ws, q["id"], i, v0, "a")
        answer_item(ws, q["id"], i, v1, "a")
        answer_item(ws, q["id"], i, v2, "b")
    _insert_auto(ws, q["id"], qi[0], "b", 0.96)
    ws.import_gold(q["id"], [{"item_id": qi[1], "label": "b"}])
    fin = {f.item_id: f for f in iter_final(ws.db, ws.get_project(q["id"]))}
    assert (fin[qi[0]].label, fin[qi[0]].source) == ("b", "auto")
    assert (fin[qi[1]].label, fin[qi[1]].source) == ("b", "gold")
    assert (fin[qi[2]].label, fin[qi[2]].source, fin[qi[2]].confidence) == ("a", "majority", pytest.approx(2 / 3))
    # and it only reads
    from factories import snapshot

    before = snapshot(ws)
    list(iter_final(ws.db, ws.get_project(q["id"]), page=1))
    assert snapshot(ws) == before


def test_labels_page_over_http(ws):
    from fastapi.testclient import TestClient

    from assay.server import create_app

    p, (u0, u1) = project_with_annotators(ws, 5, 2, overlap=2, classes=("a", "b"))
    ids = item_ids(ws, p["dataset_id"])
    for i in ids[:3]:
        answer_item(ws, p["id"], i, u0, "a")
        answer_item(ws, p["id"], i, u1, "a")
    _, atok = ws.add_user("root", "admin")
    _, ntok = ws.add_user("ann", "annotator")
    with TestClient(create_app(ws, reclaim_interval=0, refit_interval=0)) as c:
        h = {"Authorization": f"Bearer {atok}"}
        url = f"/api/projects/{p['id']}/labels"
        r = c.get(url, params={"limit": 2}, headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert [x["item_id"] for x in body["labels"]] == ids[:2]
        assert body["labels"][0] == {"item_id": ids[0], "label": "a", "source": "majority", "confidence": 1.0}
        got = body["labels"]
        while body["next_after"] is not None:
            body = c.get(url, params={"limit": 2, "after": body["next_after"]}, headers=h).json()
            got += body["labels"]
        assert [x["item_id"] for x in got] == ids
        assert [x["label"] for x in got] == ["a", "a", "a", None, None]
        assert c.get(url, headers={"Authorization": f"Bearer {ntok}"}).status_code in (403, 404)
        assert c.get(url, params={"limit": 0}, headers=h).status_code == 422
        assert c.get("/api/projects/999/labels", headers=h).status_code == 404


def test_quality_report_says_what_an_export_holds(ws):
    p, (u0, u1) = project_with_annotators(ws, 4, 2, overlap=2, classes=("a", "b"))
    ids = item_ids(ws, p["dataset_id"])
    for i in ids[:3]:
        answer_item(ws, p["id"], i, u0, "a")
        answer_item(ws, p["id"], i, u1, "b" if i == ids[2] else "a")
    _insert_auto(ws, p["id"], ids[3], "b", 0.99)
    ws.import_gold(p["id"], [{"item_id": ids[0], "label": "a"}])
    fl = ws.quality_report(p["id"])["final_labels"]
    assert fl == {"items": 4, "labeled": 4, "sources": {"auto": 1, "gold": 1, "majority": 2}}


def test_answers_after_the_fit_use_the_models_prediction_as_the_items_prior(ws):
    """An item answered after the last re-fit is scored from the stored fit;
    where the project's model predicted it, the prediction is its prior, as
    in the re-fit (here a sure prediction outweighs one answer against it)."""
    from assay.quality import online

    p, ids, truth, answer = _fixed_crowd(ws)
    ws.refit_quality(p["id"])
    later = [ids[j] for j in range(40, 42)]
    for j in range(40, 42):
        answer(j, False, False)
    before = _records(ws, p["id"])
    assert all(before[i]["label"] == truth[i] for i in later)
    # the model is sure of the other class on the first item, and agrees on the second
    sure = {"a": [0.001, 0.999], "b": [0.999, 0.001]}
    with ws.db.write() as conn:
        conn.execute(text("INSERT INTO predictions (project_id, item_id, model_version, label, confidence, proba) "
                          "VALUES (:p, :i, 1, :label, 0.999, :proba)").bindparams(
            bindparam("label", type_=JSON), bindparam("proba", type_=JSON)),
            [{"p": p["id"], "i": later[0], "label": "ab"[truth[later[0]] == "a"], "proba": sure[truth[later[0]]]},
             {"p": p["id"], "i": later[1], "label": truth[later[1]],
              "proba": sure["b" if truth[later[1]] == "a" else "a"]}])
    after = _records(ws, p["id"])
    assert after[later[1]]["label"] == truth[later[1]]
    assert after[later[1]]["confidence"] > before[later[1]]["confidence"]
    # recomputed exactly as the re-fit would: prior from the prediction, then each answer
    with ws.db.read() as conn:
        skills = {r.annotator_id: r.confusion for r in conn.execute(text(
            "SELECT annotator_id, confusion FROM annotator_skills WHERE project_id = :p").columns(confusion=JSON),
            {"p": p["id"]})}
        rows = conn.execute(text("SELECT annotator_id, label FROM answers WHERE item_id = :i ORDER BY id"
                                 ).columns(label=JSON), {"i": later[0]}).all()
    lp = [float(__import__("math").log(x)) for x in sure[truth[later[0]]]]
    for r in rows:
        lp = online.update(lp, skills[r.annotator_id], "ab".index(r.label))
    best, conf = online.decision(lp)
    assert after[later[0]]["label"] == "ab"[best]
    assert after[later[0]]["confidence"] == pytest.approx(conf)
