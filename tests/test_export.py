"""Export: JSONL, CSV and Parquet snapshots of a project's labels, read back
with pandas / pyarrow, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import time

import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest

import assay.export as export_mod
from assay.errors import InvalidInput, NotFound
from factories import task_for_item, item_ids, text_dataset

TEXTS = ["great film", "dull plot", "so-so", "never labeled", "a split decision"]
META = [{"lang": "en", "n": i} for i in range(len(TEXTS))]

# The answers each item gets, in the order they are given (annotator index, label).
PLAN = {
    0: [(0, "pos"), (1, "pos"), (2, "neg")],   # majority pos
    1: [(1, "neg"), (0, "pos"), (2, "neg")],   # majority neg
    2: [(2, "neg"), (0, "pos")],               # tie: the first answer wins -> neg
    3: [],                                     # no answers
    4: [(0, "pos"), (2, "neg"), (1, "meh")],   # three-way tie -> pos
}
EXPECTED = {0: "pos", 1: "neg", 2: "neg", 3: None, 4: "pos"}


@pytest.fixture
def labeled(ws):
    """A project with the answers in PLAN; returns (project, annotators, item ids, t0, t1)."""
    ds = text_dataset(ws, "films", TEXTS, meta=META, source="imdb-sample", license="CC0",
                      consent="public reviews")
    p = ws.create_project("sentiment", ds["id"], ["pos", "neg", "meh"], overlap=3)
    people = []
    for i in range(3):
        u, _ = ws.add_user(f"ann{i}")
        ws.add_member(p["id"], u["id"])
        people.append(u)
    ids = item_ids(ws, ds["id"])
    t0 = time.time()
    for idx, answers in PLAN.items():
        task = task_for_item(ws, p["id"], ids[idx])
        for who, label in answers:
            ws.submit(task, people[who], label)  # the task has room: no lease needed
    return p, people, ids, t0, time.time()


def _check_answers(got, idx, people, t0, t1):
    want = PLAN[idx]
    assert [a["annotator_id"] for a in got] == [people[w]["id"] for w, _ in want]
    assert [a["annotator"] for a in got] == [people[w]["username"] for w, _ in want]
    assert [a["label"] for a in got] == [lab for _, lab in want]
    stamps = [a["created_at"] for a in got]
    assert all(t0 <= s <= t1 for s in stamps) and stamps == sorted(stamps)


def test_jsonl_round_trip(ws, labeled, tmp_path):
    p, people, ids, t0, t1 = labeled
    out = tmp_path / "exports" / "labels.jsonl"
    res = ws.export(p["id"], out)
    assert res == {"path": str(out), "format": "jsonl", "items": len(TEXTS)}
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["item_id"] for r in recs] == ids
    for idx, r in enumerate(recs):
        assert r["text"] == TEXTS[idx] and r["kind"] == "text"
        assert r["label"] == EXPECTED[idx]
        assert r["n_answers"] == len(PLAN[idx])
        assert r["label_method"] == ("majority" if PLAN[idx] else None)
        _check_answers(r["answers"], idx, people, t0, t1)
        assert r["meta"] == META[idx]
        assert r["provenance"] == {
            "source": "imdb-sample", "license": "CC0", "consent": "public reviews",
            "content_hash": hashlib.sha256(TEXTS[idx].encode()).hexdigest(),
        }
        assert r["source_uri"] == f"imdb-sample#row={idx + 1}"
    # The stream the server sends is the same bytes as the file.
    assert b"".join(ws.export_chunks(p["id"], "jsonl")) == out.read_bytes()


def test_csv_round_trip(ws, labeled, tmp_path):
    p, people, ids, t0, t1 = labeled
    out = tmp_path / "labels.csv"
    assert ws.export(p["id"], out)["format"] == "csv"
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert list(df.columns) == export_mod.CSV_COLUMNS
    assert [int(x) for x in df["item_id"]] == ids
    assert list(df["text"]) == TEXTS
    assert list(df["label"]) == [EXPECTED[i] or "" for i in range(len(TEXTS))]
    assert [int(x) for x in df["n_answers"]] == [len(PLAN[i]) for i in range(len(TEXTS))]
    for idx, row in df.iterrows():
        _check_answers(json.loads(row["answers"]), idx, people, t0, t1)
        assert json.loads(row["meta"]) == META[idx]
        assert (row["source"], row["license"], row["consent"]) == ("imdb-sample", "CC0", "public reviews")
        assert row["content_hash"] == hashlib.sha256(TEXTS[idx].encode()).hexdigest()
    assert b"".join(ws.export_chunks(p["id"], "csv")) == out.read_bytes()


def test_parquet_round_trip(ws, labeled, tmp_path):
    p, people, ids, t0, t1 = labeled
    out = tmp_path / "labels.parquet"
    assert ws.export(p["id"], out) == {"path": str(out), "format": "parquet", "items": len(TEXTS)}
    table = pq.read_table(out)
    assert table.column_names == export_mod.CSV_COLUMNS
    rows = table.to_pylist()
    assert [r["item_id"] for r in rows] == ids
    for idx, r in enumerate(rows):
        assert r["text"] == TEXTS[idx]
        assert r["label"] == EXPECTED[idx]
        assert r["n_answers"] == len(PLAN[idx])
        _check_answers(r["answers"], idx, people, t0, t1)
        assert json.loads(r["meta"]) == META[idx]
        assert (r["source"], r["license"], r["consent"]) == ("imdb-sample", "CC0", "public reviews")
    # pandas reads it too.
    df = pd.read_parquet(out)
    assert len(df) == len(TEXTS) and df["label"].isna().sum() == 1


def test_labeled_only(ws, labeled, tmp_path):
    p, _, ids, _, _ = labeled
    want = [ids[i] for i in range(len(TEXTS)) if PLAN[i]]
    for fmt in ("jsonl", "csv", "parquet"):
        out = tmp_path / f"only.{fmt}"
        assert ws.export(p["id"], out, labeled_only=True)["items"] == len(want)
        if fmt == "jsonl":
            got = [json.loads(x)["item_id"] for x in out.read_text().splitlines()]
        elif fmt == "csv":
            got = list(pd.read_csv(out)["item_id"])
        else:
            got = pq.read_table(out).column("item_id").to_pylist()
        assert got == want, fmt
    assert [r["item_id"] for r in ws.export_records(p["id"], labeled_only=True)] == want


def test_multi_label_final_label(ws, tmp_path):
    ds = text_dataset(ws, "d", ["x", "y"])
    p = ws.create_project("tags", ds["id"], ["a", "b", "c"], kind="multi", overlap=3)
    people = [ws.add_user(f"u{i}")[0] for i in range(3)]
    for u in people:
        ws.add_member(p["id"], u["id"])
    ids = item_ids(ws, ds["id"])
    t_x, t_y = (task_for_item(ws, p["id"], i) for i in ids)
    # x: a 2/3, b 2/3, c 1/3 -> {a, b}; y: c 1/2, a 1/2 -> both (half is enough)
    for u, lab in zip(people, (["b", "a"], ["a"], ["b", "c"])):
        ws.submit(t_x, u, lab)
    for u, lab in zip(people, (["c"], ["a"])):
        ws.submit(t_y, u, lab)
    recs = list(ws.export_records(p["id"]))
    assert sorted(recs[0]["label"]) == ["a", "b"] and sorted(recs[1]["label"]) == ["a", "c"]
    assert [a["label"] for a in recs[0]["answers"]] == [["a", "b"], ["a"], ["b", "c"]]
    ws.export(p["id"], tmp_path / "t.csv")
    ws.export(p["id"], tmp_path / "t.parquet")
    df = pd.read_csv(tmp_path / "t.csv")
    assert [sorted(json.loads(x)) for x in df["label"]] == [["a", "b"], ["a", "c"]]
    rows = pq.read_table(tmp_path / "t.parquet").to_pylist()
    assert [sorted(json.loads(r["label"])) for r in rows] == [["a", "b"], ["a", "c"]]
    assert json.loads(rows[0]["answers"][2]["label"]) == ["b", "c"]


def test_export_spans_several_pages(ws, tmp_path):
    n = export_mod.PAGE + 150
    ds = text_dataset(ws, "big", [f"text {i}" for i in range(n)])
    p = ws.create_project("big", ds["id"], ["a", "b"], overlap=2)
    u1, u2 = ws.add_user("u1")[0], ws.add_user("u2")[0]
    ws.add_member(p["id"], u1["id"])
    ws.add_member(p["id"], u2["id"])
    ids = item_ids(ws, ds["id"])
    # Answers on both sides of the page boundary.
    picks = {0: "a", export_mod.PAGE - 1: "b", export_mod.PAGE: "a", n - 1: "b"}
    for idx, lab in picks.items():
        t = task_for_item(ws, p["id"], ids[idx])
        ws.submit(t, u1, lab)
        ws.submit(t, u2, "a")  # a tie between the two: the first one wins
    out = tmp_path / "big.jsonl"
    assert ws.export(p["id"], out)["items"] == n
    recs = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert [r["item_id"] for r in recs] == ids
    labels = {i: r["label"] for i, r in enumerate(recs) if r["label"] is not None}
    assert labels == picks
    assert all(recs[i]["n_answers"] == 2 for i in picks)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_failed_export_leaves_no_partial_file(ws, labeled, tmp_path, monkeypatch, fmt):
    p = labeled[0]
    folder = tmp_path / "out"
    folder.mkdir()
    old = folder / f"labels.{fmt}"
    old.write_bytes(b"the previous export")
    new = folder / f"fresh.{fmt}"
    calls = []

    def exploding(kind, labels, classes=None):
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("disk on fire")
        return None

    monkeypatch.setattr(export_mod, "final_label", exploding)
    for target in (old, new):
        calls.clear()
        with pytest.raises(RuntimeError, match="disk on fire"):
            ws.export(p["id"], target)
        assert len(calls) == 3  # it failed part-way, after writing some records
    assert old.read_bytes() == b"the previous export"  # untouched
    assert not new.exists()
    assert sorted(x.name for x in folder.iterdir()) == [old.name]  # no temporary file left


def test_unknown_format_and_project(ws, labeled, tmp_path):
    p = labeled[0]
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    with pytest.raises(InvalidInput, match="xml"):
        ws.export(p["id"], tmp_path / "a.jsonl", "xml")
    with pytest.raises(InvalidInput, match="txt"):
        ws.export(p["id"], tmp_path / "labels.txt")
    with pytest.raises(InvalidInput, match="parquet"):
        ws.export_chunks(p["id"], "parquet")  # a file format, not a stream
    with pytest.raises(InvalidInput):
        ws.export_chunks(p["id"], "xlsx")
    with pytest.raises(NotFound):
        ws.export(p["id"] + 100, tmp_path / "x.jsonl")
    assert list(tmp_path.iterdir()) == []
    # An explicit format wins over the suffix.
    res = ws.export(p["id"], tmp_path / "labels.txt", "csv")
    assert res["format"] == "csv"
    assert pd.read_csv(tmp_path / "labels.txt").shape[0] == len(TEXTS)
