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

import assay.formats.export as export_mod
from assay import kinds
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
    answer_in_order(ws, p["id"], people, {task_for_item(ws, p["id"], ids[idx]): answers
                                          for idx, answers in PLAN.items()})
    return p, people, ids, t0, time.time()


def answer_in_order(ws, project_id: int, people: list, plan: dict) -> None:
    """Give the answers ``plan`` ({task id: [(annotator index, label), …]})
    as annotators do, on leases from ``next_task``, in each task's order
    whatever order the hand-out picks; tasks someone has nothing planned
    for are skipped."""
    queues = {task: list(answers) for task, answers in plan.items()}
    held: list[set] = [set() for _ in people]
    for _ in range(100):
        if not any(queues.values()):
            return
        for who, user in enumerate(people):
            while True:  # take leases until the hand (3) is full or nothing is left
                t = ws.next_task(project_id, user, exclude=sorted(held[who]))
                if t is None or t["id"] in held[who]:
                    break
                if any(w == who for w, _ in queues.get(t["id"], [])):
                    held[who].add(t["id"])
                else:
                    ws.skip(t["id"], user)
                if len(held[who]) >= 3:
                    break
            for task in sorted(held[who]):
                if queues[task] and queues[task][0][0] == who:
                    ws.submit(task, user, queues[task].pop(0)[1])
                    held[who].discard(task)
    raise AssertionError(f"could not give every planned answer: {queues}")


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
    answer_in_order(ws, p["id"], people, {t_x: list(enumerate((["b", "a"], ["a"], ["b", "c"]))),
                                          t_y: list(enumerate((["c"], ["a"])))})
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


def test_export_spans_several_pages(ws, tmp_path, monkeypatch):
    monkeypatch.setattr(export_mod, "PAGE", 7)  # small pages, so that few answers cross their bounds
    n = 2 * export_mod.PAGE + 3
    ds = text_dataset(ws, "big", [f"text {i}" for i in range(n)])
    p = ws.create_project("big", ds["id"], ["a", "b"], overlap=2)
    u1, u2 = ws.add_user("u1")[0], ws.add_user("u2")[0]
    ws.add_member(p["id"], u1["id"])
    ws.add_member(p["id"], u2["id"])
    ids = item_ids(ws, ds["id"])
    # Answers on both sides of the page boundary.
    picks = {0: "a", export_mod.PAGE - 1: "b", export_mod.PAGE: "a", n - 1: "b"}
    # a tie between the two on each: the first one wins
    answer_in_order(ws, p["id"], [u1, u2], {task_for_item(ws, p["id"], ids[idx]): [(0, lab), (1, "a")]
                                            for idx, lab in picks.items()})
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

    def exploding(labels, classes=None):
        calls.append(1)
        if len(calls) > 2:
            raise RuntimeError("disk on fire")
        return None, None

    monkeypatch.setattr(kinds.get("single"), "majority", exploding)
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
    assert b"".join(ws.export_chunks(p["id"], "parquet"))[:4] == b"PAR1"  # a stream too, from an unnamed file
    with pytest.raises(InvalidInput):
        ws.export_chunks(p["id"], "xlsx")
    with pytest.raises(NotFound):
        ws.export(p["id"] + 100, tmp_path / "x.jsonl")
    assert list(tmp_path.iterdir()) == []
    # An explicit format wins over the suffix.
    res = ws.export(p["id"], tmp_path / "labels.txt", "csv")
    assert res["format"] == "csv"
    assert pd.read_csv(tmp_path / "labels.txt").shape[0] == len(TEXTS)


# ---------------------------------------------------------------- hostile names and cells (issue 11, item 13)

# Project names of any script, and the characters that break a header:
# quotes, CR/LF, slashes, a backslash, a semicolon.
NAMES = ["Отзывы о фильмах", "情感分析 数据", "emoji 😀🔥 labels", 'say "hi"; filename=evil.exe',
         "line\r\nX-Injected: 1", "a/b\\c/../d", "naïve café ∑"]


def _labeled_by_lease(ws, name: str, texts, classes=("pos", "neg")):
    """A project named ``name`` whose first item is answered through a lease."""
    ds = text_dataset(ws, f"ds-{abs(hash(name))}", texts)
    p = ws.create_project(name, ds["id"], list(classes))
    u, token = ws.add_user(f"ann{abs(hash(name)) % 10**8}")
    ws.add_member(p["id"], u["id"])
    t = ws.next_task(p["id"], u)
    ws.submit(t["id"], u, classes[0])
    return p


def _filename_star(header: str) -> str:
    from urllib.parse import unquote

    star = [part.strip() for part in header.split(";") if part.strip().startswith("filename*=")]
    assert len(star) == 1, header
    enc, _, quoted = star[0][len("filename*="):].partition("''")
    assert enc == "UTF-8"
    return unquote(quoted, errors="strict")


def test_any_project_name_exports_in_every_format_over_http(ws):
    import io

    import httpx
    from _server import LiveServer

    admin, token = ws.add_user("boss", role="admin")
    h = {"Authorization": f"Bearer {token}"}
    projects = [_labeled_by_lease(ws, name, ["one", "two"]) for name in NAMES]
    with LiveServer(ws) as srv:
        for p in projects:
            for fmt in ("jsonl", "csv", "parquet"):
                r = httpx.get(f"{srv.base}/api/projects/{p['id']}/export", params={"format": fmt},
                              headers=h, timeout=30)
                assert r.status_code == 200, (p["name"], fmt, r.status_code, r.text[:200])
                cd = r.headers["content-disposition"]
                assert cd.isascii() and "\r" not in cd and "\n" not in cd
                ascii_name = cd.split('filename="', 1)[1].split('"', 1)[0]
                assert ascii_name.endswith(f".{fmt}") and "/" not in ascii_name and "\\" not in ascii_name
                real = _filename_star(cd)
                assert real.endswith(f"-labels.{fmt}")
                assert not any(c in real for c in '/\\\r\n"')
                kept = [c for c in p["name"] if c.isalnum()]
                assert [c for c in real[:-len(f"-labels.{fmt}")] if c.isalnum()] == kept  # the name survives
                if fmt == "jsonl":
                    recs = [orjson.loads(x) for x in r.content.splitlines()]
                elif fmt == "csv":
                    recs = pd.read_csv(io.BytesIO(r.content)).to_dict("records")
                else:
                    recs = pq.read_table(io.BytesIO(r.content)).to_pylist()
                assert sorted(x["text"] for x in recs) == ["one", "two"]
                assert sorted(str(x["label"]) for x in recs) == ["nan", "pos"] if fmt == "csv" else True


def test_any_project_name_exports_from_the_cli(tmp_path, db_url, monkeypatch):
    from typer.testing import CliRunner

    from assay import Workspace
    from assay.cli import app

    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("ASSAY_DATABASE_URL", db_url)
    w = Workspace()
    try:
        projects = [_labeled_by_lease(w, name, ["one", "two"]) for name in NAMES]
    finally:
        w.close()
    runner = CliRunner()
    out = tmp_path / "out"
    out.mkdir()
    for p in projects:
        for fmt in ("jsonl", "csv", "parquet"):
            for ref in (p["name"], str(p["id"])):
                target = out / f"x.{fmt}"
                r = runner.invoke(app, ["export", ref, str(target)])
                assert r.exit_code == 0, (p["name"], fmt, r.output)
                assert "wrote 2 items" in r.output
                target.unlink()
    assert list(out.iterdir()) == []


def test_csv_cells_are_neutralised_against_formulas(ws, tmp_path):
    import csv

    import httpx
    from _server import LiveServer

    hostile = ["=HYPERLINK(\"http://evil.example\",\"x\")", "+1+1", "-5", "@SUM(A1)", "\tTAB", "\rCR",
               "=cmd|' /C calc'!A0", "plain", "a=b", " =spaced"]
    ds = text_dataset(ws, "hostile", hostile, source="=evil()", license="@lic")
    p = ws.create_project("csv-injection", ds["id"], ["=1+1", "-neg", "ok"])
    u, _ = ws.add_user("ann")
    ws.add_member(p["id"], u["id"])
    while (t := ws.next_task(p["id"], u)) is not None:
        ws.submit(t["id"], u, "=1+1" if t["item"]["text"].startswith("=") else "-neg")

    def check(rows):
        header, body = rows[0], rows[1:]
        assert len(body) == len(hostile)
        col = {name: header.index(name) for name in header}
        for row in body:
            for name in ("text", "label", "source", "license", "source_uri", "answers", "meta"):
                cell = row[col[name]]
                assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (name, cell)
            assert int(row[col["item_id"]]) > 0 and int(row[col["n_answers"]]) == 1  # numbers stay numbers
        texts = sorted(r[col["text"]] for r in body)
        want = sorted(("'" + x) if x[0] in "=+-@\t\r" else x for x in hostile)
        assert texts == want  # one quote in front, nothing else changed
        assert {r[col["label"]] for r in body} == {"'=1+1", "'-neg"}
        assert {r[col["source"]] for r in body} == {"'=evil()"}
        assert {r[col["license"]] for r in body} == {"'@lic"}

    ws.export(p["id"], tmp_path / "x.csv")
    with (tmp_path / "x.csv").open(newline="", encoding="utf-8") as fh:
        check(list(csv.reader(fh)))
    admin, token = ws.add_user("boss", role="admin")
    with LiveServer(ws) as srv:
        r = httpx.get(f"{srv.base}/api/projects/{p['id']}/export?format=csv",
                      headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert r.status_code == 200
        check(list(csv.reader(r.text.splitlines(keepends=True))))
        # JSONL and Parquet keep the data as it is: they are the lossless formats.
        r = httpx.get(f"{srv.base}/api/projects/{p['id']}/export?format=jsonl",
                      headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert sorted(orjson.loads(x)["text"] for x in r.content.splitlines()) == sorted(hostile)


def test_failed_http_export_leaves_no_temp_file(ws, labeled, monkeypatch, tmp_path):
    """A Parquet export that fails while being built answers an error status
    (not a cut connection) and leaves nothing in the temp folder."""
    import tempfile

    import httpx
    from _server import LiveServer

    p = labeled[0]
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    _, token = ws.add_user("boss", role="admin")
    h = {"Authorization": f"Bearer {token}"}

    def exploding(labels, classes=None):
        raise RuntimeError("disk on fire")

    import secrets

    big = text_dataset(ws, "big", [secrets.token_hex(1000) for _ in range(4000)])  # 8 MB, not compressible
    q = ws.create_project("big", big["id"], ["a", "b"])
    with LiveServer(ws) as srv:
        # A client that reads a little of a large Parquet export and hangs up:
        # the file being sent has no name in the temp folder, then or after.
        with httpx.stream("GET", f"{srv.base}/api/projects/{q['id']}/export?format=parquet",
                          headers=h, timeout=30) as r:
            assert r.status_code == 200
            next(r.iter_raw(4096))
            assert list(spool.iterdir()) == []
        r = httpx.get(f"{srv.base}/api/projects/{p['id']}/export?format=parquet", headers=h, timeout=30)
        assert r.status_code == 200 and r.content[:4] == b"PAR1" and list(spool.iterdir()) == []
        monkeypatch.setattr(kinds.get("single"), "majority", exploding)
        for fmt in ("parquet", "jsonl", "csv"):
            r = httpx.get(f"{srv.base}/api/projects/{p['id']}/export?format={fmt}", headers=h, timeout=30)
            assert r.status_code == 500, (fmt, r.status_code)
        assert list(spool.iterdir()) == []
