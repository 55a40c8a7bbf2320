"""The ``spans`` label kind (text spans, NER): its rules, and a span project
end to end — created over a text dataset, answered, exported (CSV, JSONL,
Parquet), reviewed and given gold — through the Workspace API and over real
HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import httpx
import pandas as pd
import pytest

from _server import LiveServer
from assay import kinds
from assay.errors import InvalidInput
from assay import Workspace
from factories import answer_item, item_ids, run_cli, snapshot, text_dataset

TEXTS = ["Ada Lovelace met Charles Babbage in London.", "Nothing to see here.", "Paris"]
CLASSES = ["PER", "LOC", "ORG"]


def _schema(overlap=False):
    return kinds.get("spans").normalize_schema({"classes": CLASSES, "overlap": overlap})


# ---------------------------------------------------------------- the kind's rules


def test_schema_and_validation():
    spans = kinds.get("spans")
    assert spans.widget == "spans" and not spans.aggregatable and "spans" in kinds.names()
    s = _schema()
    assert s["overlap"] is False and [c["name"] for c in s["classes"]] == CLASSES
    assert spans.normalize_schema({"classes": ["A"]})["overlap"] is False
    with pytest.raises(InvalidInput, match="overlap must be true or false"):
        spans.normalize_schema({"classes": ["A"], "overlap": "yes"})
    # canonical: sorted, duplicates removed; [] is "no entity"
    assert spans.validate([[17, 32, "PER"], [0, 12, "PER"], [17, 32, "PER"]], s) == [[0, 12, "PER"], [17, 32, "PER"]]
    assert spans.validate([], s) == []
    assert spans.validate([(0, 3, "LOC")], s) == [[0, 3, "LOC"]]
    cases = [("PER", "a span answer is a list"), (None, "a span answer is a list"), ([[0, 3]], "a span is"),
             ([[0, 3, "PER", 1]], "a span is"), ([[-1, 3, "PER"]], "0 <= start < end"),
             ([[3, 3, "PER"]], "0 <= start < end"), ([[4, 2, "PER"]], "0 <= start < end"),
             ([[0.0, 3, "PER"]], "integers"), ([[True, 3, "PER"]], "integers"), ([["0", 3, "PER"]], "integers"),
             ([[0, 3, "CITY"]], "unknown span label"), ([[0, 3, 7]], "unknown span label"), (["abc"], "a span is"),
             ({"start": 0}, "a span answer is a list")]
    for label, msg in cases:
        with pytest.raises(InvalidInput, match=msg):
            spans.validate(label, s)
    # overlap refused unless the schema allows it; touching spans do not overlap
    with pytest.raises(InvalidInput, match="overlap; this project does not allow"):
        spans.validate([[0, 5, "PER"], [4, 8, "LOC"]], s)
    assert spans.validate([[0, 5, "PER"], [5, 8, "LOC"]], s) == [[0, 5, "PER"], [5, 8, "LOC"]]
    assert spans.validate([[0, 5, "PER"], [0, 5, "ORG"]], _schema(True)) == [[0, 5, "ORG"], [0, 5, "PER"]]
    with pytest.raises(InvalidInput, match="overlap"):
        spans.validate([[0, 5, "PER"], [0, 5, "ORG"]], s)  # same characters, two types
    # the item's text
    spans.check_item([[0, 5, "LOC"]], {"kind": "text", "text": "Paris"})
    spans.check_item([], {"kind": "image", "text": None})
    with pytest.raises(InvalidInput, match="past the end of the item's text \\(5 characters\\)"):
        spans.check_item([[0, 6, "LOC"]], {"kind": "text", "text": "Paris"})
    with pytest.raises(InvalidInput, match="has no text"):
        spans.check_item([[0, 2, "LOC"]], {"kind": "image", "text": None})


def test_majority_same_and_flat_forms():
    spans = kinds.get("spans")
    a, b, c = [0, 5, "PER"], [10, 15, "LOC"], [20, 25, "ORG"]
    label, conf = spans.majority([[a, b], [a], [a, c], [b]])
    # a: 3 of 4, b: 2 of 4 (half counts), c: 1 of 4 -> agreement (3 + 2 + 3) / (3 * 4)
    assert label == [a, b] and conf == pytest.approx(8 / 12)
    assert spans.majority([[], []]) == ([], 1.0)
    assert spans.majority([[a], []]) == ([a], 0.5)
    assert spans.majority([]) == (None, None)
    assert spans.same([a, b], [b, a]) and not spans.same([a], [a, b]) and spans.same([], [])
    assert spans.export_columns([a]) == {"label": '[[0,5,"PER"]]'} and spans.export_columns([]) == {"label": "[]"}
    assert spans.export_columns(None) == {"label": None}
    assert spans.parse_text('[[0, 5, "PER"]]') == [a] and spans.parse_text("  ") == []
    with pytest.raises(InvalidInput, match="written as JSON"):
        spans.parse_text("0-5 PER")
    with pytest.raises(InvalidInput, match="Label Studio choices"):
        spans.to_choices([a])


# ---------------------------------------------------------------- a span project, end to end


@pytest.fixture
def project(ws):
    ds = text_dataset(ws, "news", TEXTS)
    p = ws.create_project("ner", ds["id"], CLASSES, kind="spans", overlap=2)
    people = [ws.add_user(f"u{i}")[0] for i in range(2)]
    for u in people:
        ws.add_member(p["id"], u["id"])
    return p, people, item_ids(ws, ds["id"])


def test_create_options(ws):
    ds = text_dataset(ws, "d", ["x"])
    p = ws.create_project("a", ds["id"], ["A"], kind="spans", kind_options={"overlap": True})
    assert p["schema"] == {"kind": "spans", "classes": [{"name": "A", "description": ""}], "instructions": "",
                           "overlap": True}
    assert p["widget"] == "spans" and p["overlap"] == 1
    for opts, msg in (({"overlap": 1}, "overlap must be true or false"), ({"nested": True}, "no schema option nested")):
        with pytest.raises(InvalidInput, match=msg):
            ws.create_project("b", ds["id"], ["A"], kind="spans", kind_options=opts)
    with pytest.raises(InvalidInput, match="no schema option overlap"):
        ws.create_project("c", ds["id"], ["A"], kind="single", kind_options={"overlap": True})
    with pytest.raises(InvalidInput, match="adaptive redundancy"):
        ws.create_project("d", ds["id"], ["A"], kind="spans", target_confidence=0.9)
    assert [x["name"] for x in ws.list_projects()] == ["a"]


def test_submit_export_review_gold(ws, project, tmp_path):
    p, (u0, u1), (ada, nothing, paris) = project
    task = _held(ws, p, ada, u0)
    before = snapshot(ws)
    for bad, msg in (([[0, 44, "PER"]], "past the end of the item's text"), ([[0, 3, "CITY"]], "unknown span label"),
                     ([[0, 5, "PER"], [3, 8, "PER"]], "overlap"), ("PER", "a span answer is a list")):
        with pytest.raises(InvalidInput, match=msg):
            ws.submit(task, u0, bad)
    assert snapshot(ws) == before  # a refused answer changes nothing
    got = ws.submit(task, u0, [[17, 32, "PER"], [0, 12, "PER"], [36, 42, "LOC"], [0, 12, "PER"]])
    assert got["label"] == [[0, 12, "PER"], [17, 32, "PER"], [36, 42, "LOC"]]
    answer_item(ws, p["id"], ada, u1, [[0, 12, "PER"], [17, 32, "PER"], [36, 42, "ORG"]])
    answer_item(ws, p["id"], nothing, u0, [])
    answer_item(ws, p["id"], nothing, u1, [])
    answer_item(ws, p["id"], paris, u0, [[0, 5, "LOC"]])
    answer_item(ws, p["id"], paris, u1, [[0, 5, "LOC"]])
    stored = {(a["item_id"], a["annotator_id"]): a["label"] for a in ws.list_answers(p["id"])[0]}
    assert stored[(ada, u1["id"])] == [[0, 12, "PER"], [17, 32, "PER"], [36, 42, "ORG"]]
    assert stored[(nothing, u0["id"])] == []

    recs = {r["item_id"]: r for r in ws.export_records(p["id"])}
    # LOC and ORG each have half the votes: both kept by the plain vote (an overlap the
    # answers disagree on); agreement over the four spans marked: (2 + 2 + 1 + 1) / 8
    assert recs[ada]["label"] == [[0, 12, "PER"], [17, 32, "PER"], [36, 42, "LOC"], [36, 42, "ORG"]]
    assert recs[ada]["confidence"] == pytest.approx(6 / 8) and recs[ada]["label_method"] == "majority"
    assert (recs[nothing]["label"], recs[nothing]["confidence"]) == ([], 1.0)
    assert recs[paris]["label"] == [[0, 5, "LOC"]]

    for fmt in ("csv", "jsonl", "parquet"):
        ws.export(p["id"], tmp_path / f"ner.{fmt}")
    csv = pd.read_csv(tmp_path / "ner.csv", keep_default_na=False)
    assert [json.loads(x) for x in csv["label"]] == [recs[i]["label"] for i in (ada, nothing, paris)]
    lines = [json.loads(x) for x in (tmp_path / "ner.jsonl").read_text().splitlines()]
    assert lines[1]["label"] == [] and lines[2]["answers"][0]["label"] == [[0, 5, "LOC"]]
    pq = pd.read_parquet(tmp_path / "ner.parquet")
    assert json.loads(pq["label"][2]) == [[0, 5, "LOC"]]

    with pytest.raises(InvalidInput, match="quality report needs a single-label project"):
        ws.quality_report(p["id"])

    admin = ws.add_user("boss", role="admin")[0]
    with pytest.raises(InvalidInput, match="past the end"):
        ws.review(p["id"], paris, [[0, 9, "LOC"]], admin)
    ws.review(p["id"], ada, [[0, 12, "PER"], [17, 32, "PER"], [36, 42, "LOC"]], admin)
    rec = next(r for r in ws.export_records(p["id"]) if r["item_id"] == ada)
    assert (rec["label"], rec["label_method"]) == ([[0, 12, "PER"], [17, 32, "PER"], [36, 42, "LOC"]], "review")
    # the decision scores the annotators with the kind's equality (same set of spans)
    assert {s["username"]: (s["answers"], s["correct"]) for s in ws.gold_stats(p["id"])} == \
        {"u0": (1, 1), "u1": (1, 0)}


def test_gold_import(ws, project, tmp_path):
    p, (u0, u1), (ada, nothing, paris) = project
    answer_item(ws, p["id"], paris, u0, [[0, 5, "LOC"]])
    answer_item(ws, p["id"], paris, u1, [[0, 5, "ORG"]])
    answer_item(ws, p["id"], nothing, u1, [])
    before = snapshot(ws)
    with pytest.raises(InvalidInput, match="gold row 2: a span ends at 9, past the end"):
        ws.import_gold(p["id"], [{"item_id": paris, "label": [[0, 5, "LOC"]]},
                                 {"item_id": paris, "label": [[0, 9, "LOC"]]}])
    with pytest.raises(InvalidInput, match="gold row 1: unknown span label"):
        ws.import_gold(p["id"], [{"item_id": paris, "label": [[0, 5, "CITY"]]}])
    assert snapshot(ws) == before
    f = tmp_path / "gold.jsonl"
    f.write_text(json.dumps({"item_id": paris, "label": [[0, 5, "LOC"]]}) + "\n"
                 + json.dumps({"item_id": nothing, "label": []}) + "\n")
    ws.import_gold_file(p["id"], f)
    g = tmp_path / "gold.csv"
    g.write_text(f'item_id,label\n{ada},"[[0, 12, ""PER""]]"\n')
    ws.import_gold_file(p["id"], g)
    known = {r["item_id"]: r["label"] for r in ws.list_gold(p["id"])[0]}
    assert known == {paris: [[0, 5, "LOC"]], nothing: [], ada: [[0, 12, "PER"]]}
    # the answers given before are scored with the kind's equality (the same set of spans)
    assert {s["username"]: (s["answers"], s["correct"]) for s in ws.gold_stats(p["id"])} == \
        {"u0": (1, 1), "u1": (2, 1)}


def _held(ws, p, item_id, user) -> int:
    """Lease the item's task to ``user`` by asking for tasks until it comes (pool order)."""
    held = []
    while True:
        t = ws.next_task(p["id"], user)
        assert t is not None, "the item was never handed out"
        if t["item"]["id"] == item_id:
            for other in held:
                ws.skip(other, user)
            return t["id"]
        held.append(t["id"])


# ---------------------------------------------------------------- over HTTP


def test_over_http(ws):
    ds = text_dataset(ws, "news", TEXTS)
    admin, admin_tok = ws.add_user("root", role="admin")
    ann, ann_tok = ws.add_user("ann")
    with LiveServer(ws) as srv, httpx.Client(base_url=srv.base, timeout=30) as c:
        h_admin, h_ann = ({"Authorization": f"Bearer {t}"} for t in (admin_tok, ann_tok))
        r = c.post("/api/projects", headers=h_admin, json={
            "name": "ner", "dataset_id": ds["id"],
            "schema": {"kind": "spans", "classes": CLASSES, "overlap": True}})
        assert r.status_code == 201, r.text
        p = r.json()
        assert p["schema"]["overlap"] is True and p["widget"] == "spans"
        r = c.post("/api/projects", headers=h_admin, json={
            "name": "bad", "dataset_id": ds["id"], "schema": {"kind": "spans", "classes": CLASSES, "overlap": "x"}})
        assert r.status_code == 400 and "overlap must be true or false" in r.json()["error"]["message"]
        assert c.post(f"/api/projects/{p['id']}/members", headers=h_admin, json={"username": "ann"}).status_code == 201
        seen = {}
        for _ in TEXTS:
            t = c.post(f"/api/projects/{p['id']}/tasks/next", headers=h_ann,
                       json={"exclude": [x["id"] for x in seen.values()]}).json()["task"]
            assert t["item"]["text"] in TEXTS
            seen[t["item"]["text"]] = t
        t = seen["Paris"]
        r = c.post(f"/api/tasks/{t['id']}/answers", headers=h_ann, json={"label": [[0, 6, "LOC"]]})
        assert r.status_code == 400 and "past the end" in r.json()["error"]["message"]
        r = c.post(f"/api/tasks/{t['id']}/answers", headers=h_ann, json={"label": [[0, 5, "LOC"], [0, 5, "ORG"]]})
        assert r.status_code == 201 and r.json()["answer"]["label"] == [[0, 5, "LOC"], [0, 5, "ORG"]]
        r = c.post(f"/api/tasks/{seen['Nothing to see here.']['id']}/answers", headers=h_ann, json={"label": []})
        assert r.status_code == 201 and r.json()["answer"]["label"] == []
        r = c.get(f"/api/projects/{p['id']}/export", headers=h_admin, params={"format": "jsonl"})
        rows = [json.loads(x) for x in r.text.splitlines()]
        assert [x["label"] for x in rows] == [None, [], [[0, 5, "LOC"], [0, 5, "ORG"]]]
        r = c.get(f"/api/projects/{p['id']}/export", headers=h_admin, params={"format": "csv"})
        assert r.status_code == 200 and '"[[0,5,""LOC""],[0,5,""ORG""]]"' in r.text
        labels = c.get(f"/api/projects/{p['id']}/labels", headers=h_admin).json()["labels"]
        assert [x["label"] for x in labels] == [None, [], [[0, 5, "LOC"], [0, 5, "ORG"]]]
        prog = c.get(f"/api/projects/{p['id']}/progress", headers=h_admin).json()
        assert prog["answers"] == 2
        r = c.get(f"/api/projects/{p['id']}/quality", headers=h_admin)
        assert r.status_code == 400
        assert c.get(f"/label/{p['id']}").status_code == 200
    stored = sorted(a["label"] for a in ws.list_answers(p["id"])[0])
    assert stored == [[], [[0, 5, "LOC"], [0, 5, "ORG"]]]


def test_cli_create(home, tmp_path, monkeypatch):
    """The README's flow: a spaCy file imported as a dataset and as gold, a span project, both exports."""
    monkeypatch.chdir(tmp_path)
    docs = [{"text": "Paris", "spans": [{"start": 0, "end": 5, "label": "LOC"}]},
            {"text": "Nothing to see here.", "spans": []}]
    (tmp_path / "news.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    assert run_cli("init").exit_code == 0
    assert run_cli("import", "news", "news.jsonl", "--text-column", "text").exit_code == 0
    r = run_cli("project", "create", "ner", "--dataset", "news", "--classes", "PER,LOC", "--kind", "spans",
                "--overlap", "3", "--option", "overlap=true")
    assert r.exit_code == 0, r.output
    r = run_cli("project", "create", "bad", "--dataset", "news", "--classes", "PER", "--kind", "spans",
                "--option", "overlap")
    assert r.exit_code != 0 and "KEY=VALUE" in r.output
    r = run_cli("project", "gold", "ner", "news.jsonl")
    assert r.exit_code == 0 and "2 added" in r.output, r.output
    assert run_cli("export", "ner", "ner.conll").exit_code == 0
    assert (tmp_path / "ner.conll").read_text().splitlines()[1] == "Paris\tB-LOC"
    r = run_cli("export", "ner", "ner-spacy.jsonl", "--format", "spacy")
    assert r.exit_code == 0, r.output
    assert [json.loads(x)["spans"] for x in (tmp_path / "ner-spacy.jsonl").read_text().splitlines()] == \
        [d["spans"] for d in docs]
    ws = Workspace(home)
    try:
        p = ws.get_project("ner")
        assert (p["schema"]["overlap"], p["overlap"]) == (True, 3)
    finally:
        ws.close()
