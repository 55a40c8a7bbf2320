"""Ingest: tables of text and folders/zips of images become items, all or nothing.

Every test runs on SQLite and PostgreSQL (the ``ws`` fixture).
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from assay.formats import ingest
from assay.errors import InvalidInput
from factories import (
    blob_files, count, image_bytes, item_ids, make_zip, mnist_digits, snapshot, task_rows, write_csv,
)


def _items(ws, dataset_id):
    rows, nxt = ws.list_items(dataset_id, limit=1000)
    assert nxt is None
    return rows


def _imports(ws):
    with ws.db.read() as conn:
        return [dict(r._mapping) for r in conn.execute(text("SELECT * FROM imports ORDER BY id"))]


# ---------------------------------------------------------------- tables


def test_csv_keeps_text_metadata_and_provenance(ws, tmp_path):
    ds = ws.create_dataset("reviews")
    src = write_csv(tmp_path / "reviews.csv", ["id", "review", "lang", "stars"], [
        ["r1", "Great phone, battery lasts", "en", "5"],
        ["r2", "NA", "en", "1"],                       # "NA" is text, not a missing value
        ["r3", "Tres bien, merci", "fr", "4"],
        ["r4", 'A "quoted", comma, line\nand a newline', "en", "3"],
    ])
    res = ws.import_file(ds["id"], src, text_column="review", source="shop-export",
                         license="CC-BY-4.0", consent="opt-in 2024")
    assert res["added"] == 4 and res["skipped"] == 0 and res["dataset_id"] == ds["id"]
    rows = _items(ws, ds["id"])
    assert [r["text"] for r in rows] == [
        "Great phone, battery lasts", "NA", "Tres bien, merci", 'A "quoted", comma, line\nand a newline']
    # Every other column is kept as metadata; the text column is not duplicated there.
    assert rows[0]["meta"] == {"id": "r1", "lang": "en", "stars": "5"}
    assert rows[2]["meta"] == {"id": "r3", "lang": "fr", "stars": "4"}
    for n, r in enumerate(rows, 1):
        assert r["kind"] == "text"
        assert r["source"] == "shop-export" and r["license"] == "CC-BY-4.0" and r["consent"] == "opt-in 2024"
        assert r["source_uri"] == f"reviews.csv#row={n}"
        assert r["content_hash"] == hashlib.sha256(r["text"].encode()).hexdigest()
        assert r["import_id"] == res["import_id"]
    (imp,) = _imports(ws)
    assert imp["id"] == res["import_id"]
    assert imp["source_uri"] == str(src)
    assert (imp["source"], imp["license"], imp["consent"]) == ("shop-export", "CC-BY-4.0", "opt-in 2024")
    assert (imp["added"], imp["skipped"]) == (4, 0)
    assert ws.get_dataset(ds["id"])["item_count"] == 4


def test_jsonl_keeps_metadata_types_and_nulls(ws, tmp_path):
    ds = ws.create_dataset("d")
    lines = [
        {"text": "first", "user_id": 12345, "tags": ["a", "b"], "extra": {"k": 1}, "note": None},
        {"text": "second", "score": 0.25, "note": "hi"},
        {"text": "third", "user_id": 9007199254740993, "score": float("nan")},
    ]
    src = tmp_path / "data.jsonl"
    src.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    res = ws.import_file(ds["id"], src, source="crawl")
    assert res["added"] == 3
    rows = _items(ws, ds["id"])
    assert [r["text"] for r in rows] == ["first", "second", "third"]
    m1, m2, m3 = (r["meta"] for r in rows)
    # Integers stay integers (not 12345.0) even when other rows lack the key, and
    # large ids keep every digit; nested values survive; null / NaN become null.
    assert m1["user_id"] == 12345 and isinstance(m1["user_id"], int)
    assert m3["user_id"] == 9007199254740993
    assert m1["tags"] == ["a", "b"] and m1["extra"] == {"k": 1}
    assert m1["note"] is None and m2["note"] == "hi"
    assert m2["score"] == 0.25
    assert m3.get("score") is None
    assert rows[1]["source_uri"] == "data.jsonl#row=2"


def test_parquet_keeps_metadata_and_nulls(ws, tmp_path):
    ds = ws.create_dataset("d")
    table = pa.table({
        "body": ["alpha", "beta", "gamma"],
        "n": pa.array([1, None, 3], type=pa.int64()),
        "x": [1.5, float("nan"), None],
        "labels": [["a"], [], ["b", "c"]],
        "when": pa.array([0, 86400 * 1_000_000, None], type=pa.timestamp("us")),
    })
    src = tmp_path / "data.parquet"
    pq.write_table(table, src)
    res = ws.import_file(ds["id"], src, text_column="body", license="MIT")
    assert (res["added"], res["skipped"]) == (3, 0)
    rows = _items(ws, ds["id"])
    assert [r["text"] for r in rows] == ["alpha", "beta", "gamma"]
    assert [r["meta"]["n"] for r in rows] == [1, None, 3]
    assert isinstance(rows[0]["meta"]["n"], int)
    assert [r["meta"]["x"] for r in rows] == [1.5, None, None]
    assert [r["meta"]["labels"] for r in rows] == [["a"], [], ["b", "c"]]
    assert rows[0]["meta"]["when"].startswith("1970-01-01")
    assert rows[1]["meta"]["when"].startswith("1970-01-02")
    assert rows[2]["meta"]["when"] is None
    assert all(r["license"] == "MIT" for r in rows)


def test_dataframe_nan_and_nat_become_null(ws):
    import numpy as np

    ds = ws.create_dataset("d")
    df = pd.DataFrame({
        "text": ["a", "b", "c"],
        "f": [0.5, np.nan, 2.0],
        "i": np.array([1, 2, 3], dtype=np.int64),
        "s": ["x", None, "z"],
        "t": pd.to_datetime(["2021-03-04", None, "2022-01-01"]),
    })
    res = ws.import_dataframe(ds["id"], df, source="notebook", consent="yes")
    assert res["added"] == 3
    rows = _items(ws, ds["id"])
    assert [r["meta"]["f"] for r in rows] == [0.5, None, 2.0]
    assert [r["meta"]["i"] for r in rows] == [1, 2, 3]
    assert [r["meta"]["s"] for r in rows] == ["x", None, "z"]
    assert rows[0]["meta"]["t"].startswith("2021-03-04")
    assert rows[1]["meta"]["t"] is None  # NaT is missing, not the string "NaT"
    assert all(r["source"] == "notebook" and r["consent"] == "yes" for r in rows)
    assert rows[0]["source_uri"] == "notebook#row=1"


def test_reimport_adds_nothing(ws, tmp_path):
    ds = ws.create_dataset("d")
    src = write_csv(tmp_path / "a.csv", ["text", "k"], [["one", "1"], ["two", "2"], ["one", "3"]])
    first = ws.import_file(ds["id"], src)
    # The duplicate "one" inside the file counts once.
    assert (first["added"], first["skipped"]) == (2, 1)
    again = ws.import_file(ds["id"], src)
    assert (again["added"], again["skipped"]) == (0, 3)
    # Same texts from another format and other metadata: still the same content.
    other = tmp_path / "b.jsonl"
    other.write_text('{"text": "two", "k": "x"}\n{"text": "three"}\n')
    third = ws.import_file(ds["id"], other)
    assert (third["added"], third["skipped"]) == (1, 1)
    rows = _items(ws, ds["id"])
    assert [r["text"] for r in rows] == ["one", "two", "three"]
    assert rows[0]["meta"] == {"k": "1"}  # the first copy wins
    assert [(i["added"], i["skipped"]) for i in _imports(ws)] == [(2, 1), (0, 3), (1, 1)]
    # The same text in another dataset is a different item.
    ds2 = ws.create_dataset("d2")
    assert ws.import_file(ds2["id"], src)["added"] == 2


def test_missing_text_column_names_it_and_writes_nothing(ws, tmp_path):
    ds = ws.create_dataset("d")
    ws.import_dataframe(ds["id"], pd.DataFrame({"text": ["already here"]}))
    before = snapshot(ws)
    df = pd.DataFrame({"body": ["x", "y"], "lang": ["en", "de"]})
    df.to_csv(tmp_path / "data.csv", index=False)
    df.to_json(tmp_path / "data.jsonl", orient="records", lines=True)
    df.to_parquet(tmp_path / "data.parquet")
    for fmt in ("csv", "jsonl", "parquet", "dataframe"):
        with pytest.raises(InvalidInput) as exc:
            if fmt == "dataframe":
                ws.import_dataframe(ds["id"], df, text_column="review")
            else:
                ws.import_file(ds["id"], tmp_path / f"data.{fmt}", text_column="review")
        msg = str(exc.value)
        assert "'review'" in msg, fmt
        assert "'body'" in msg and "'lang'" in msg, fmt
        assert snapshot(ws) == before, fmt


def test_empty_text_in_a_later_batch_rolls_back_everything(ws, tmp_path):
    ds = ws.create_dataset("d")
    p = ws.create_project("p", ds["id"], ["a", "b"])
    n = ingest.BATCH + 300
    bad_row = ingest.BATCH + 150  # well past the first batch, which was already inserted
    rows = [[f"text number {i}", str(i)] for i in range(1, n + 1)]
    rows[bad_row - 1][0] = ""
    src = write_csv(tmp_path / "big.csv", ["text", "i"], rows)
    before = snapshot(ws)
    with pytest.raises(InvalidInput, match=rf"row {bad_row} .*empty 'text'"):
        ws.import_file(ds["id"], src)
    assert snapshot(ws) == before
    assert count(ws, "items") == 0 and count(ws, "imports") == 0
    assert task_rows(ws, p["id"]) == []
    # The same file without the bad row imports fine: the failure was the row, not the file.
    rows[bad_row - 1][0] = "now filled"
    write_csv(src, ["text", "i"], rows)
    assert ws.import_file(ds["id"], src)["added"] == n


def test_empty_text_in_dataframe_or_jsonl_writes_nothing(ws, tmp_path):
    ds = ws.create_dataset("d")
    before = snapshot(ws)
    texts = [f"t{i}" for i in range(ingest.BATCH + 10)]
    texts[ingest.BATCH + 5] = float("nan")  # in the second batch
    with pytest.raises(InvalidInput, match=rf"row {ingest.BATCH + 6} "):
        ws.import_dataframe(ds["id"], pd.DataFrame({"text": texts}))
    assert snapshot(ws) == before
    for bad in (None, "   ", ""):
        with pytest.raises(InvalidInput, match="row 3 "):
            ws.import_dataframe(ds["id"], pd.DataFrame({"text": ["a", "b", bad, "d"]}))
        assert snapshot(ws) == before
    src = tmp_path / "x.jsonl"
    for bad in ("null", '"   "', '""', "NaN"):
        src.write_text('{"text": "ok"}\n{"text": ' + bad + '}\n{"text": "fine"}\n')
        with pytest.raises(InvalidInput, match="row 2 "):
            ws.import_file(ds["id"], src)
        assert snapshot(ws) == before, bad
    src.write_text('{"text": "ok"}\n{"other": "no text key"}\n')
    with pytest.raises(InvalidInput, match="row 2 "):
        ws.import_file(ds["id"], src)
    assert snapshot(ws) == before


def test_bad_table_files_are_refused(ws, tmp_path):
    ds = ws.create_dataset("d")
    before = snapshot(ws)
    (tmp_path / "notes.txt").write_text("text\nhello\n")
    with pytest.raises(InvalidInput, match="notes.txt"):
        ws.import_file(ds["id"], tmp_path / "notes.txt")
    with pytest.raises(InvalidInput, match="no such file"):
        ws.import_file(ds["id"], tmp_path / "missing.csv")
    (tmp_path / "header.csv").write_text("text,k\n")
    with pytest.raises(InvalidInput):
        ws.import_file(ds["id"], tmp_path / "header.csv")
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InvalidInput, match="broken.parquet"):
        ws.import_file(ds["id"], tmp_path / "broken.parquet")
    (tmp_path / "broken.jsonl").write_text('{"text": "ok"}\n{"text": \n')
    with pytest.raises(InvalidInput, match="broken.jsonl"):
        ws.import_file(ds["id"], tmp_path / "broken.jsonl")
    assert snapshot(ws) == before


def test_import_into_dataset_with_project_creates_tasks(ws, tmp_path):
    ds = ws.create_dataset("d")
    ws.import_dataframe(ds["id"], pd.DataFrame({"text": ["a", "b"]}))
    p1 = ws.create_project("p1", ds["id"], ["x", "y"], overlap=2)
    p3 = ws.create_project("p3", ds["id"], ["x", "y"], overlap=3)
    other = ws.create_dataset("other")
    p_other = ws.create_project("other", other["id"], ["x", "y"])
    res = ws.import_file(ds["id"], write_csv(tmp_path / "more.csv", ["text"], [["b"], ["c"], ["d"]]))
    assert (res["added"], res["skipped"]) == (2, 1)
    ids = item_ids(ws, ds["id"])
    for p, k in ((p1, 2), (p3, 3)):
        rows = task_rows(ws, p["id"])
        assert sorted(r.item_id for r in rows) == ids  # one task per item, none twice
        assert all((r.needed, r.answer_count, r.open_slots) == (k, 0, k) for r in rows)
        assert ws.progress(p["id"])["tasks"] == 4
    assert task_rows(ws, p_other["id"]) == []
    # The new items are handed out like the old ones.
    u, _ = ws.add_user("ann")
    ws.add_member(p1["id"], u["id"])
    seen = []
    while (t := ws.next_task(p1["id"], u)) is not None:
        seen.append(t["item"]["text"])
        ws.submit(t["id"], u, "x")
    assert sorted(seen) == ["a", "b", "c", "d"]


# ---------------------------------------------------------------- images


@pytest.fixture
def digits(shared_data):
    return mnist_digits(shared_data, 12)


def _image_folder(root, digits):
    """A nested folder of real MNIST digits in three formats, plus a sidecar."""
    files = {}
    for i, (im, label) in enumerate(digits[:6]):
        fmt, ext = [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")][i % 3]
        rel = f"{'train/' if i < 3 else 'train/deep/'}d{i}_{label}.{ext}"
        files[rel] = image_bytes(im, fmt)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


def test_image_folder_recursive_with_sidecar(ws, tmp_path, digits):
    folder = tmp_path / "imgs"
    files = _image_folder(folder, digits)
    (folder / ".DS_Store").write_bytes(b"\x00junk")  # hidden files are ignored
    sidecar = [[rel, str(digits[i][1]), "mnist"] for i, rel in enumerate(files)]
    write_csv(folder / "metadata.csv", ["file", "digit", "origin"], sidecar[:4])
    ds = ws.create_dataset("digits")
    res = ws.import_file(ds["id"], folder, source="mnist", license="CC-BY-SA-3.0")
    assert (res["added"], res["skipped"]) == (6, 0)
    rows = _items(ws, ds["id"])
    assert sorted(r["meta"]["file"] for r in rows) == sorted(files)
    media = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
    for r in rows:
        rel = r["meta"]["file"]
        assert r["kind"] == "image" and r["text"] is None
        assert r["media_type"] == media[rel.rsplit(".", 1)[1]]
        assert r["source_uri"] == f"{folder.as_uri()}/{rel}"
        assert r["content_hash"] == hashlib.sha256(files[rel]).hexdigest()
        assert r["license"] == "CC-BY-SA-3.0" and r["source"] == "mnist"
        data, mt = ws.item_content(r["id"])
        assert data == files[rel] and mt == r["media_type"]
        i = list(files).index(rel)
        if i < 4:  # listed in the sidecar
            assert r["meta"] == {"file": rel, "digit": str(digits[i][1]), "origin": "mnist"}
        else:
            assert r["meta"] == {"file": rel}
    assert len(blob_files(ws)) == 6
    # Importing again adds nothing and writes no new blobs.
    again = ws.import_file(ds["id"], folder)
    assert (again["added"], again["skipped"]) == (0, 6)
    assert len(blob_files(ws)) == 6


def test_non_image_in_folder_names_it_and_writes_nothing(ws, tmp_path, digits):
    folder = tmp_path / "imgs"
    _image_folder(folder, digits)
    (folder / "train" / "readme.txt").write_text("not an image")
    ds = ws.create_dataset("d")
    before = snapshot(ws)
    with pytest.raises(InvalidInput, match="readme.txt"):
        ws.import_file(ds["id"], folder)
    assert snapshot(ws) == before
    assert blob_files(ws) == set()
    # on_invalid="skip" imports the images and leaves the text file out.
    res = ws.import_file(ds["id"], folder, on_invalid="skip")
    assert res["added"] == 6


def test_corrupt_image_fails_and_removes_only_new_blobs(ws, tmp_path, digits):
    ds = ws.create_dataset("d")
    first = tmp_path / "first"
    first.mkdir()
    kept = image_bytes(digits[0][0], "PNG")
    (first / "a.png").write_bytes(kept)
    ws.import_file(ds["id"], first)
    blobs_before = blob_files(ws)
    assert len(blobs_before) == 1

    second = tmp_path / "second"
    second.mkdir()
    (second / "a.png").write_bytes(kept)  # already stored: its blob must survive
    (second / "b.png").write_bytes(image_bytes(digits[1][0], "PNG"))
    (second / "c.jpg").write_bytes(image_bytes(digits[2][0], "JPEG"))
    good = image_bytes(digits[3][0], "PNG")
    (second / "zz_broken.png").write_bytes(good[: len(good) // 2])  # truncated, sorted last
    before = snapshot(ws)
    with pytest.raises(InvalidInput, match="zz_broken.png"):
        ws.import_file(ds["id"], second)
    assert snapshot(ws) == before
    assert blob_files(ws) == blobs_before
    assert ws.item_content(_items(ws, ds["id"])[0]["id"])[0] == kept

    # A file that only pretends to be a PNG is refused too.
    (second / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not really a png")
    with pytest.raises(InvalidInput, match="zz_broken.png"):
        ws.import_file(ds["id"], second)
    assert snapshot(ws) == before and blob_files(ws) == blobs_before


def test_zip_import_with_sidecar(ws, tmp_path, digits):
    members = {f"digits/{i}.png": image_bytes(im, "PNG") for i, (im, _) in enumerate(digits[:4])}
    members["digits/3.webp"] = image_bytes(digits[4][0], "WEBP")
    members["__MACOSX/digits/._0.png"] = b"resource fork junk"
    members["metadata.csv"] = b"file,digit\ndigits/0.png,%d\ndigits/3.webp,%d\n" % (digits[0][1], digits[4][1])
    src = make_zip(tmp_path / "batch.zip", members)
    ds = ws.create_dataset("d")
    res = ws.import_file(ds["id"], src, consent="public")
    assert (res["added"], res["skipped"]) == (5, 0)
    rows = {r["meta"]["file"]: r for r in _items(ws, ds["id"])}
    assert set(rows) == {"digits/0.png", "digits/1.png", "digits/2.png", "digits/3.png", "digits/3.webp"}
    assert rows["digits/0.png"]["meta"] == {"file": "digits/0.png", "digit": str(digits[0][1])}
    assert rows["digits/3.webp"]["meta"]["digit"] == str(digits[4][1])
    assert rows["digits/3.webp"]["media_type"] == "image/webp"
    assert rows["digits/1.png"]["source_uri"] == "zip:batch.zip!/digits/1.png"
    assert all(r["consent"] == "public" for r in rows.values())
    for rel, r in rows.items():
        assert ws.item_content(r["id"])[0] == members[rel]
    assert ws.import_zip(ds["id"], src)["added"] == 0


def test_zip_with_unsafe_member_path_is_refused(ws, tmp_path, digits):
    png = image_bytes(digits[0][0], "PNG")
    ds = ws.create_dataset("d")
    before = snapshot(ws)
    for evil in ("../evil.png", "ok/../../evil.png", "/abs/evil.png", "C:/evil.png", "..\\evil.png"):
        src = make_zip(tmp_path / "bad.zip", {"fine.png": png, evil: image_bytes(digits[1][0], "PNG")})
        with pytest.raises(InvalidInput, match="unsafe path"):
            ws.import_file(ds["id"], src)
        assert snapshot(ws) == before, evil
        assert blob_files(ws) == set(), evil
    assert not (tmp_path / "evil.png").exists() and not (tmp_path.parent / "evil.png").exists()


def test_zip_with_non_image_or_corruption_writes_nothing(ws, tmp_path, digits):
    ds = ws.create_dataset("d")
    png = image_bytes(digits[0][0], "PNG")
    before = snapshot(ws)
    src = make_zip(tmp_path / "a.zip", {"a.png": png, "docs/notes.txt": b"hello"})
    with pytest.raises(InvalidInput, match="docs/notes.txt"):
        ws.import_file(ds["id"], src)
    src = make_zip(tmp_path / "b.zip", {"a.png": png, "b.png": b"\x89PNG\r\n\x1a\ngarbage"})
    with pytest.raises(InvalidInput, match="b.png"):
        ws.import_file(ds["id"], src)
    (tmp_path / "c.zip").write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(InvalidInput, match="c.zip"):
        ws.import_file(ds["id"], tmp_path / "c.zip")
    src = make_zip(tmp_path / "d.zip", {"metadata.csv": b"file\n"})
    with pytest.raises(InvalidInput, match="no png/jpg/webp"):
        ws.import_file(ds["id"], src)
    assert snapshot(ws) == before
    assert blob_files(ws) == set()


def test_sidecar_without_file_column_is_refused(ws, tmp_path, digits):
    folder = tmp_path / "imgs"
    _image_folder(folder, digits)
    write_csv(folder / "metadata.csv", ["name", "digit"], [["train/d0.png", "5"]])
    ds = ws.create_dataset("d")
    before = snapshot(ws)
    with pytest.raises(InvalidInput, match="'file' column"):
        ws.import_file(ds["id"], folder)
    assert snapshot(ws) == before and blob_files(ws) == set()


def test_image_folder_sets_label_files_aside_and_still_refuses_strays(ws, tmp_path, digits):
    folder = tmp_path / "yolo"
    _image_folder(folder / "images", digits)
    (folder / "labels").mkdir()
    (folder / "labels" / "a.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (folder / "classes.txt").write_text("zero\n")
    (folder / "Annotations").mkdir()
    (folder / "Annotations" / "a.xml").write_text("<annotation/>")
    (folder / "notes.txt").write_text("a stray file")
    ds = ws.create_dataset("d")
    before = snapshot(ws)
    with pytest.raises(InvalidInput, match="notes.txt"):
        ws.import_file(ds["id"], folder)
    assert snapshot(ws) == before and blob_files(ws) == set()
    (folder / "notes.txt").unlink()
    res = ws.import_file(ds["id"], folder)
    assert (res["added"], res["label_files"]) == (6, 3)
