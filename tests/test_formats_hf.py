"""The Hugging Face ``datasets`` export (assay.formats.hf, the hf extra):
every kind's final labels saved to a folder that ``datasets.load_from_disk``
reads back with the same labels; ``import assay`` does not import
``datasets``; a missing extra is a clear error. Both databases."""

from __future__ import annotations

import subprocess
import sys

import pytest

from assay.errors import InvalidInput
from factories import answer_item, run_cli, text_dataset
from test_formats_shapes import BOXES, CLASSES, POLYS, finals, labeled
from test_formats_spans import CLASSES as NER, DOCS, _as_triples, _spacy_file

datasets = pytest.importorskip("datasets")  # the test extra installs it (through hf)
TEXTS = ["good film", "bad film", "so so"]


def load(path):
    return datasets.load_from_disk(str(path))


@pytest.mark.parametrize("kind,labels", [("single", ["neg", "pos", None]), ("multi", [["pos", "neg"], [], None])])
def test_choices(ws, tmp_path, kind, labels):
    ds = text_dataset(ws, "reviews", TEXTS)
    p = ws.create_project(kind, ds["id"], ["pos", "neg"], kind=kind)
    user = ws.add_user("ann")[0]
    ws.add_member(p["id"], user["id"])
    items = [r["item_id"] for r in ws.export_records(p["id"])]
    for item, label in zip(items, labels):
        if label is not None:
            answer_item(ws, p["id"], item, user, label)
    assert ws.export(p["id"], tmp_path / "hf", "hf")["items"] == 3
    d = load(tmp_path / "hf")
    assert d["item_id"] == items and d["text"] == TEXTS
    col = "label" if kind == "single" else "labels"
    names = d.features[col].names if kind == "single" else d.features[col].feature.names
    assert names == ["pos", "neg"]
    if kind == "single":
        assert d["label"] == [1, 0, -1]
    else:
        assert d["labels"][:2] == [[0, 1], []] and d["labels"][2] in (None, [])
    with pytest.raises(InvalidInput, match="not an empty folder"):
        ws.export(p["id"], tmp_path / "hf", "hf")


def test_spans(ws, tmp_path):
    f = _spacy_file(tmp_path, DOCS)
    ds = ws.create_dataset("news")
    ws.import_file(ds["id"], f, text_column="text")
    p = ws.create_project("ner", ds["id"], NER, kind="spans")
    ws.import_gold_file(p["id"], f)
    ws.export(p["id"], tmp_path / "hf", "hf")
    d = load(tmp_path / "hf")
    got = [[[s["start"], s["end"], NER[s["label"]]] for s in x] for x in d["spans"]]
    assert got == [_as_triples(doc) for doc in DOCS] and set(d["label_method"]) == {"gold"}


@pytest.mark.parametrize("kind,answers", [("boxes", BOXES), ("polygons", POLYS)])
def test_shapes_and_cli(ws, home, tmp_path, kind, answers):
    p, order = labeled(ws, tmp_path, kind, answers, kind)
    r = run_cli("export", kind, str(tmp_path / "hf"), "--format", "hf")
    assert "(hf)" in r.output, r.output
    d = load(tmp_path / "hf")
    want = finals(ws, p)
    assert d["item_id"] == list(want) and d["image"][0] == "img0.png" and d["width"][0] == 160
    for item, objs in zip(d["item_id"], d["objects"]):
        if kind == "boxes":
            got = [[*o["bbox"][:2], o["bbox"][0] + o["bbox"][2], o["bbox"][1] + o["bbox"][3], CLASSES[o["category"]]]
                   for o in objs]
            assert got == want[item]  # these coordinates are exact in float32
        else:
            assert [{"label": CLASSES[o["category"]], "points": o["points"]} for o in objs] == want[item]


def test_import_assay_does_not_import_datasets_and_missing_extra(ws, tmp_path, monkeypatch):
    out = subprocess.run([sys.executable, "-c", "import sys, assay, assay.workspace, assay.formats.hf; "
                          "print('datasets' in sys.modules)"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    ds = text_dataset(ws, "reviews", TEXTS)
    p = ws.create_project("sent", ds["id"], ["pos", "neg"])
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if the extra were not installed
    with pytest.raises(InvalidInput, match=r"needs the hf extra: pip install 'assay\[hf\]'"):
        ws.export(p["id"], tmp_path / "hf", "hf")
    assert not (tmp_path / "hf").exists()
