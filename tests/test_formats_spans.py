"""Formats of span projects (:mod:`assay.formats.spans`): spaCy-compatible
JSON lines and CoNLL BIO, exported from a project and read back — a dataset
and its gold imported from one spaCy file export the same spans; the CoNLL
export parses back to the same spans — through the Workspace and over HTTP,
on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import httpx
import pytest

from _server import LiveServer
from assay.errors import InvalidInput
from assay.formats.spans import bio_tokens, read_conll, read_spacy
from factories import text_dataset

DOCS = [
    {"text": "Ada Lovelace met Charles Babbage in London.",
     "spans": [{"start": 0, "end": 12, "label": "PER"}, {"start": 17, "end": 32, "label": "PER"},
               {"start": 36, "end": 42, "label": "LOC"}]},
    {"text": "Nothing to see here.", "spans": []},
    {"text": "The New York-based firm IBM_Research hired Zoë.",
     "spans": [{"start": 4, "end": 12, "label": "LOC"}, {"start": 24, "end": 36, "label": "ORG"},
               {"start": 43, "end": 46, "label": "PER"}]},
    {"text": "Mid-word: Lon\ndon calling", "spans": [{"start": 10, "end": 12, "label": "LOC"}]},
]
CLASSES = ["PER", "LOC", "ORG"]


def _as_triples(doc: dict) -> list:
    return [[s["start"], s["end"], s["label"]] for s in doc["spans"]]


def test_bio_tokens():
    text = DOCS[0]["text"]
    got = bio_tokens(text, _as_triples(DOCS[0]))
    assert got == [("Ada", "B-PER"), ("Lovelace", "I-PER"), ("met", "O"), ("Charles", "B-PER"),
                   ("Babbage", "I-PER"), ("in", "O"), ("London", "B-LOC"), (".", "O")]
    # a span boundary inside a word cuts the word
    assert bio_tokens("Londoner", [[0, 6, "LOC"]]) == [("London", "B-LOC"), ("er", "O")]
    # BIO has no overlaps: the earliest (then longest) span is written
    assert bio_tokens("New York City", [[4, 8, "LOC"], [0, 13, "LOC"]]) == \
        [("New", "B-LOC"), ("York", "I-LOC"), ("City", "I-LOC")]
    # two spans of one type side by side stay two (B- starts the second)
    assert bio_tokens("Ada Bob", [[0, 3, "PER"], [4, 7, "PER"]]) == [("Ada", "B-PER"), ("Bob", "B-PER")]
    assert bio_tokens("", []) == []


def test_read_conll_and_its_errors():
    docs = read_conll(["# item_id = 4\n", "Ada\tB-PER\n", "Bob\tB-PER\n", "x\tO\n", "York\tI-LOC\n", "\n",
                       "EU NNP B-ORG O\n", "rejects VBZ O O\n"])
    assert docs == [{"item_id": 4, "tokens": ["Ada", "Bob", "x", "York"], "spans": [[0, 1, "PER"], [1, 2, "PER"],
                                                                                    [3, 4, "LOC"]]},
                    {"tokens": ["EU", "rejects"], "spans": []}]  # the last column is the tag
    with pytest.raises(InvalidInput, match="CoNLL line 1: expected"):
        read_conll(["Ada\tPERSON\n"])


def _spacy_file(tmp_path, docs, name="in.jsonl"):
    f = tmp_path / name
    f.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    return f


def _char_spans(text: str, doc: dict) -> list:
    """A CoNLL document's token spans as character offsets into ``text``."""
    at, pos = [], 0
    for tok in doc["tokens"]:
        pos = text.index(tok, pos)
        at.append((pos, pos + len(tok)))
        pos += len(tok)
    return [[at[a][0], at[b - 1][1], lab] for a, b, lab in doc["spans"]]


def test_spacy_and_conll_round_trip(ws, tmp_path):
    f = _spacy_file(tmp_path, DOCS)
    ds = ws.create_dataset("news")
    ws.import_file(ds["id"], f, text_column="text")
    p = ws.create_project("ner", ds["id"], CLASSES, kind="spans")
    # gold from the same file: items found by their text
    ws.import_gold_file(p["id"], f)
    out = tmp_path / "out.jsonl"
    ws.export(p["id"], out, "spacy")
    back = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [{"text": d["text"], "spans": d["spans"]} for d in back] == DOCS
    assert {d["meta"]["label_method"] for d in back} == {"gold"}

    ws.export(p["id"], tmp_path / "out.conll")
    docs = read_conll((tmp_path / "out.conll").read_text(encoding="utf-8").splitlines(keepends=True))
    by_id = {d["meta"]["item_id"]: d for d in back}
    assert [d["item_id"] for d in docs] == [d["meta"]["item_id"] for d in back]
    for d in docs:
        assert _char_spans(by_id[d["item_id"]]["text"], d) == _as_triples(by_id[d["item_id"]])

    # the export names its items (meta.item_id): it is gold for another project over the dataset
    q = ws.create_project("ner2", ds["id"], CLASSES, kind="spans")
    assert {r["item_id"] for r in read_spacy(out)} == set(by_id)
    ws.import_gold_file(q["id"], out)
    assert {r["item_id"]: r["label"] for r in ws.list_gold(q["id"])[0]} == \
        {i: _as_triples(d) for i, d in by_id.items()}


def test_format_errors(ws, tmp_path):
    ds = text_dataset(ws, "news", [d["text"] for d in DOCS])
    p = ws.create_project("ner", ds["id"], CLASSES, kind="spans")
    single = ws.create_project("sent", ds["id"], ["pos", "neg"])
    with pytest.raises(InvalidInput, match="single label projects have no spacy export"):
        ws.export(single["id"], tmp_path / "x.jsonl", "spacy")
    with pytest.raises(InvalidInput, match="unknown export format 'xml'.*spacy, conll"):
        ws.export(p["id"], tmp_path / "x.xml")
    assert not (tmp_path / "x.jsonl").exists() and not (tmp_path / "x.xml").exists()
    bad = [({"text": "Unknown text", "spans": []}, "gold row 1: no text item of the dataset has this text"),
           ({"text": "Paris", "spans": [{"start": 0}]}, "line 1: each span needs start, end and label"),
           ({"spans": []}, "line 1: give the item as 'item_id'"),
           ({"text": DOCS[1]["text"], "spans": [{"start": 0, "end": 99, "label": "LOC"}]}, "past the end")]
    for doc, msg in bad:
        with pytest.raises(InvalidInput, match=msg):
            ws.import_gold_file(p["id"], _spacy_file(tmp_path, [doc]))
    assert ws.list_gold(p["id"])[0] == []


def test_export_over_http(ws, tmp_path):
    ds = text_dataset(ws, "news", [d["text"] for d in DOCS])
    p = ws.create_project("ner", ds["id"], CLASSES, kind="spans")
    ws.import_gold_file(p["id"], _spacy_file(tmp_path, DOCS[:2]))
    _, tok = ws.add_user("root", role="admin")
    h = {"Authorization": f"Bearer {tok}"}
    with LiveServer(ws) as srv, httpx.Client(base_url=srv.base, timeout=30) as c:
        r = c.get(f"/api/projects/{p['id']}/export", headers=h, params={"format": "spacy"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/x-ndjson")
        assert "ner-labels.jsonl" in r.headers["content-disposition"]
        assert [json.loads(x)["spans"] for x in r.text.splitlines()] == [d["spans"] for d in DOCS[:2]]
        r = c.get(f"/api/projects/{p['id']}/export", headers=h, params={"format": "conll"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        assert r.text.splitlines()[1:4] == ["Ada\tB-PER", "Lovelace\tI-PER", "met\tO"]
        single = ws.create_project("sent", ds["id"], ["pos", "neg"])
        r = c.get(f"/api/projects/{single['id']}/export", headers=h, params={"format": "conll"})
        assert r.status_code == 400 and "no conll export" in r.json()["error"]["message"]
        r = c.get(f"/api/projects/{p['id']}/export", headers=h, params={"format": "xml"})
        assert r.status_code == 422
