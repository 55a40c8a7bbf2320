"""Nuances: gold items name the edge case they stand for, with an explanation
and reference items; skills are measured per nuance; all of it stays with
staff (SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from assay.errors import InvalidInput
from assay.server import create_app
from factories import answer_item, count, item_ids, project_with_annotators

HERBS = ("cilantro", "parsley", "basil")


def _herbs(ws, n=30):
    p, people = project_with_annotators(ws, n, 2, overlap=2, classes=HERBS)
    ids = item_ids(ws, p["dataset_id"])
    truth = {i: HERBS[j % 3] for j, i in enumerate(ids)}
    return p, people, ids, truth


def test_gold_rows_carry_a_nuance_an_explanation_and_reference_items(ws):
    p, people, ids, truth = _herbs(ws)
    out = ws.import_gold(p["id"], [
        {"item_id": ids[0], "label": truth[ids[0]], "nuance": " cilantro vs parsley ",
         "explanation": "Cilantro leaves are rounder and lobed.", "reference_items": [ids[3], ids[1]]},
        {"item_id": ids[1], "label": truth[ids[1]], "nuance": "cilantro vs parsley", "reference_items": f"{ids[4]}|{ids[0]}"},
        {"item_id": ids[2], "label": truth[ids[2]]}])
    assert out["added"] == 3
    rows = {g["item_id"]: g for g in ws.list_gold(p["id"])[0]}
    assert rows[ids[0]]["nuance"] == "cilantro vs parsley"
    assert rows[ids[0]]["explanation"].startswith("Cilantro")
    assert rows[ids[0]]["reference_items"] == sorted([ids[1], ids[3]])
    assert rows[ids[1]]["reference_items"] == sorted([ids[0], ids[4]])
    assert rows[ids[2]]["nuance"] is None and rows[ids[2]]["reference_items"] is None
    # a later import of an item replaces its row whole
    ws.import_gold(p["id"], [{"item_id": ids[0], "label": truth[ids[0]]}])
    assert {g["item_id"]: g for g in ws.list_gold(p["id"])[0]}[ids[0]]["nuance"] is None


@pytest.mark.parametrize("row, message", [
    ({"nuance": 7}, "nuance must be text"),
    ({"nuance": "x" * 201}, "nuance must be text"),
    ({"explanation": ["not", "text"]}, "explanation must be text"),
    ({"reference_items": "a|b"}, "reference_items must be a list"),
    ({"reference_items": list(range(1, 30))}, "reference_items must be a list"),
    ({"reference_items": [10_000_000]}, "reference item(s) are not items of project"),
])
def test_bad_nuance_fields_are_refused_and_nothing_is_stored(ws, row, message):
    p, people, ids, truth = _herbs(ws)
    good = {"item_id": ids[0], "label": truth[ids[0]], "nuance": "fine"}
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        ws.import_gold(p["id"], [good, {"item_id": ids[1], "label": truth[ids[1]], **row}])
    assert count(ws, "gold") == 0
    assert count(ws, "tasks", "is_gold") == 0


def test_a_gold_file_with_nuance_columns(ws, tmp_path):
    p, people, ids, truth = _herbs(ws)
    csv = tmp_path / "gold.csv"
    csv.write_text("item_id,label,nuance,explanation,reference_items\n"
                   f"{ids[0]},{truth[ids[0]]},cilantro vs parsley,Rounder leaves.,{ids[1]}|{ids[2]}\n"
                   f"{ids[1]},{truth[ids[1]]},,,\n")
    ws.import_gold_file(p["id"], csv)
    jl = tmp_path / "gold.jsonl"
    jl.write_text(json.dumps({"item_id": ids[5], "label": truth[ids[5]], "nuance": "basil",
                              "reference_items": [ids[6]]}) + "\n")
    ws.import_gold_file(p["id"], jl)
    rows = {g["item_id"]: g for g in ws.list_gold(p["id"])[0]}
    assert rows[ids[0]]["nuance"] == "cilantro vs parsley" and rows[ids[0]]["explanation"] == "Rounder leaves."
    assert rows[ids[0]]["reference_items"] == [ids[1], ids[2]]
    assert rows[ids[1]]["nuance"] is None and rows[ids[1]]["explanation"] is None
    assert rows[ids[5]]["nuance"] == "basil" and rows[ids[5]]["reference_items"] == [ids[6]]


def test_skill_per_nuance_and_who_may_see_it(ws):
    p, (sharp, mixes), ids, truth = _herbs(ws, 60)
    for i in ids:
        answer_item(ws, p["id"], i, sharp, truth[i])
        # takes every cilantro for parsley, fine otherwise
        answer_item(ws, p["id"], i, mixes, "parsley" if truth[i] == "cilantro" else truth[i])
    ws.import_gold(p["id"], [{"item_id": i, "label": truth[i],
                              "nuance": "cilantro vs parsley" if truth[i] in ("cilantro", "parsley") else "basil",
                              "explanation": "look at the leaf edges"} for i in ids[:45]])
    m = ws.skill_map(p["id"])
    by_tag = {n["nuance"]: n for n in m["nuances"]}
    assert set(by_tag) == {"cilantro vs parsley", "basil"}
    cp = {a["user_id"]: a for a in by_tag["cilantro vs parsley"]["annotators"]}
    assert by_tag["cilantro vs parsley"]["items"] == 30
    assert cp[mixes["id"]]["answers"] == 30
    assert cp[mixes["id"]]["interval"][1] < 0.8 < cp[sharp["id"]]["interval"][0]
    basil = {a["user_id"]: a for a in by_tag["basil"]["annotators"]}
    assert basil[mixes["id"]]["skill"] > 0.8
    _, admin = ws.add_user("boss", "admin")
    ann = ws.add_user("peek", "annotator")
    ws.add_member(p["id"], "peek")
    with TestClient(create_app(ws, reclaim_interval=0, refit_interval=0)) as c:
        h = {"Authorization": f"Bearer {admin}"}
        r = c.post(f"/api/projects/{p['id']}/gold", headers=h, json={"items": [
            {"item_id": ids[50], "label": truth[ids[50]], "nuance": "basil", "explanation": "smell it"}]})
        assert r.status_code == 201, r.text
        r = c.post(f"/api/projects/{p['id']}/gold", headers=h, json={"items": [
            {"item_id": ids[51], "label": truth[ids[51]], "nuance": {"no": "dict"}}]})
        assert r.status_code == 400 and "nuance must be text" in r.text
        got = c.get(f"/api/projects/{p['id']}/gold", headers=h, params={"limit": 1000}).json()["gold"]
        assert {g["item_id"]: g for g in got}[ids[50]]["explanation"] == "smell it"
        assert c.get(f"/api/projects/{p['id']}/skills", headers=h).json()["nuances"] == ws.skill_map(p["id"])["nuances"]
        # an annotator sees neither the gold, its nuances and explanations, nor the skills
        hh = {"Authorization": f"Bearer {ann[1]}"}
        assert c.get(f"/api/projects/{p['id']}/gold", headers=hh).status_code == 403
        assert c.get(f"/api/projects/{p['id']}/skills", headers=hh).status_code == 403
        t = c.post(f"/api/projects/{p['id']}/tasks/next", headers=hh)
        assert "explanation" not in t.text and "nuance" not in t.text
