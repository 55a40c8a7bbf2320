"""Import of the formats that used to be export-only: YOLO and Pascal VOC
folders as gold of boxes/polygons projects, CoNLL BIO as gold of spans
projects. Round trips: export -> import into a new project over the same
data -> the same labels, and the same export again. Bad input stores
nothing and names the file (and line, item or token). SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from assay.errors import InvalidInput
from factories import run_cli, snapshot, text_dataset
from test_formats_shapes import BOXES, CLASSES, POLYS, finals, labeled
from test_formats_spans import CLASSES as NER, DOCS, _as_triples, _spacy_file


def gold(ws, p) -> dict:
    return {g["item_id"]: g["label"] for g in ws.list_gold(p["id"])[0]}


def files(folder) -> dict:
    return {f.relative_to(folder).as_posix(): f.read_text() for f in sorted(folder.rglob("*")) if f.is_file()}


@pytest.mark.parametrize("fmt", ["yolo", "voc"])
def test_boxes_folder_round_trip(ws, tmp_path, fmt):
    p, order = labeled(ws, tmp_path, "boxes", BOXES, "boxes")
    ws.export(p["id"], tmp_path / "out", fmt)
    q = ws.create_project("again", p["dataset_id"], CLASSES, kind="boxes")
    out = ws.import_gold_file(q["id"], tmp_path / "out")  # a folder: YOLO or VOC by its layout
    assert out["added"] == 3
    assert gold(ws, q) == finals(ws, p) and gold(ws, q)[order[1]] == []
    ws.export(q["id"], tmp_path / "back", fmt)
    assert files(tmp_path / "back") == files(tmp_path / "out")


def test_polygons_yolo_round_trip_and_cli(ws, home, tmp_path):
    p, order = labeled(ws, tmp_path, "polygons", POLYS, "outlines")
    ws.export_shapes(p["id"], tmp_path / "yolo", "yolo")
    ws.create_project("outlines again", p["dataset_id"], CLASSES, kind="polygons")
    r = run_cli("project", "gold", "outlines again", str(tmp_path / "yolo"))
    assert "2 added" in r.output, r.output
    assert gold(ws, ws.get_project("outlines again")) == finals(ws, p)
    # class names from data.yaml when classes.txt is missing; a different order maps by name
    (tmp_path / "yolo" / "classes.txt").unlink()
    (tmp_path / "yolo" / "data.yaml").write_text("names:\n  0: car\n  1: person\n")
    q = ws.create_project("swapped", p["dataset_id"], ["person", "car"], kind="polygons")
    ws.import_shapes_folder(q["id"], tmp_path / "yolo")
    assert gold(ws, q) == finals(ws, p)


def test_bad_folders_store_nothing(ws, tmp_path):
    p, order = labeled(ws, tmp_path, "boxes", [None, None, None], "empty")
    lab = tmp_path / "y" / "labels"
    lab.mkdir(parents=True)
    (tmp_path / "y" / "classes.txt").write_text("car\nperson\n")
    poly = ws.create_project("outlines", p["dataset_id"], CLASSES, kind="polygons")
    before = snapshot(ws)
    bad = {"0 0.5 0.5 0.2\n": "line 1: a box is 'class cx cy w h'",
           "7 0.5 0.5 0.2 0.2\n": "line 1: class id 7 is not among the 2 classes",
           "0 0.5 0.5 0.2 0.2\ncar 1 1 1 1\n": "line 2: expected a class id and numbers",
           "0 0.5 0.5 0.2 0.2\n0 0.5 0.5 -0.2 0.2\n": "x1 < x2"}
    for body, msg in bad.items():
        (lab / "img0.txt").write_text("0 0.1 0.1 0.1 0.1\n")  # a good file beside the bad one
        (lab / "img1.txt").write_text(body)
        with pytest.raises(InvalidInput, match=msg):
            ws.import_gold_file(p["id"], tmp_path / "y")
    (lab / "img1.txt").unlink()
    (lab / "nowhere.txt").write_text("")
    with pytest.raises(InvalidInput, match="labels/nowhere.txt: no image of the dataset was imported as nowhere"):
        ws.import_gold_file(p["id"], tmp_path / "y")
    ann = tmp_path / "v" / "Annotations"
    ann.mkdir(parents=True)
    for body, msg in {"<annotation><object><name>car</name></object></annotation>": "bndbox/xmin",
                      "<annotation>": "not valid XML",
                      '<!DOCTYPE x [<!ENTITY a "aaaa">]><annotation/>': "document type declarations",
                      "<annotation><object><name>bus</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax>"
                      "<ymax>5</ymax></bndbox></object></annotation>": "bus"}.items():
        (ann / "img2.xml").write_text(body)
        with pytest.raises(InvalidInput, match=msg):
            ws.import_gold_file(p["id"], tmp_path / "v")
    with pytest.raises(InvalidInput, match="VOC holds boxes only"):
        ws.import_gold_file(poly["id"], tmp_path / "v")
    assert snapshot(ws) == before


def test_conll_round_trip(ws, tmp_path):
    f = _spacy_file(tmp_path, DOCS)
    ds = ws.create_dataset("news")
    ws.import_file(ds["id"], f, text_column="text")
    p = ws.create_project("ner", ds["id"], NER, kind="spans")
    ws.import_gold_file(p["id"], f)
    ws.export(p["id"], tmp_path / "out.conll")
    q = ws.create_project("ner again", ds["id"], NER, kind="spans")
    assert ws.import_gold_file(q["id"], tmp_path / "out.conll")["added"] == len(DOCS)
    assert sorted(gold(ws, q).values()) == sorted(_as_triples(d) for d in DOCS)
    assert gold(ws, q) == finals(ws, p)
    ws.export(q["id"], tmp_path / "back.conll")
    assert (tmp_path / "back.conll").read_text() == (tmp_path / "out.conll").read_text()


def test_conll_tokens_must_match_the_text(ws, tmp_path):
    ds = text_dataset(ws, "news", [d["text"] for d in DOCS])
    p = ws.create_project("ner", ds["id"], NER, kind="spans")
    item = ws.export_records(p["id"]).__next__()["item_id"]
    single = ws.create_project("not spans", ds["id"], ["a"])
    before = snapshot(ws)
    bad = {f"# item_id = {item}\nAda\tB-PER\nLovelace\tI-PER\nmeets\tO\n": f"item {item}: token 3 'meets' does "
           "not match the item's text at character 13",
           "Ada\tB-PER\n": "bad1.conll, item 2: no '# item_id = N' line, and no text item of the dataset reads 'Ada'",
           "# item_id = 999999\nAda\tB-PER\n": "item 999999: no text item of the project's dataset",
           f"# item_id = {item}\nAda\tB-NOPE\n": "NOPE"}
    for n, (body, msg) in enumerate(bad.items()):
        (tmp_path / f"bad{n}.conll").write_text(f"# item_id = {item}\nAda\tB-PER\n\n" * (n % 2) + body)
        with pytest.raises(InvalidInput, match=msg):
            ws.import_gold_file(p["id"], tmp_path / f"bad{n}.conll")
    with pytest.raises(InvalidInput, match="CoNLL import is for spans projects"):
        ws.import_conll(single["id"], tmp_path / "bad0.conll")
    assert snapshot(ws) == before


def test_yolo_round_trip_without_file_names(ws, tmp_path):
    """Images imported without a file name are exported as item-<id>.<suffix>
    and found again by that name."""
    p, order = labeled(ws, tmp_path, "boxes", BOXES, "boxes")
    with ws.db.write() as conn:
        from sqlalchemy import text

        conn.execute(text("UPDATE items SET meta = NULL WHERE id = :i"), {"i": order[0]})
    ws.export(p["id"], tmp_path / "out", "yolo")
    assert (tmp_path / "out" / "labels" / f"item-{order[0]}.txt").is_file()
    q = ws.create_project("again", p["dataset_id"], CLASSES, kind="boxes")
    ws.import_gold_file(q["id"], tmp_path / "out")
    assert gold(ws, q) == finals(ws, p)
