"""Boxes and polygons in detection formats (assay.formats.shapes): COCO
export checked by pycocotools (loaded, masks drawn, and scored against
itself: AP 1), YOLO and Pascal VOC read back, and COCO import as gold:
export -> import gives the same shapes. Malformed COCO files store nothing."""

from __future__ import annotations

import contextlib
import io
import json
import xml.etree.ElementTree as ET

import pytest

from assay.errors import InvalidInput
from factories import answer_item, snapshot
from test_kinds_shapes import image_dataset

pycocotools = pytest.importorskip("pycocotools.coco")  # the test extra installs it

CLASSES = ["car", "person"]
BOXES = [[[20.5, 30, 80, 90, "car"], [100, 5, 120, 40.25, "person"]], [], [[0, 0, 160, 120, "car"]]]
POLYS = [[{"label": "car", "points": [[20, 30], [80, 30], [80, 90], [20, 90]]},
          {"label": "person", "points": [[100, 10], [140, 10], [120, 60]]}], [], None]


def labeled(ws, tmp_path, kind, answers, name):
    """A project over 4 new images, the first 3 answered with ``answers`` (None: left unanswered)."""
    ds, order = image_dataset(ws, tmp_path, n=4)
    p = ws.create_project(name, ds["id"], CLASSES, kind=kind)
    user = ws.add_user("ann")[0]
    ws.add_member(p["id"], user["id"])
    for item, label in zip(order, answers):
        if label is not None:
            answer_item(ws, p["id"], item, user, label)
    return p, order


def finals(ws, p) -> dict:
    return {r["item_id"]: r["label"] for r in ws.export_records(p["id"], labeled_only=True)}


def test_boxes_coco_export_pycocotools_and_round_trip(ws, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    p, order = labeled(ws, tmp_path, "boxes", BOXES, "boxes")
    out = ws.export_shapes(p["id"], tmp_path / "coco.json")
    assert out["format"] == "coco" and out["images"] == 3  # the unanswered image is left out
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(tmp_path / "coco.json"))
    assert sorted(gt.getImgIds()) == order[:3]
    assert {c["name"]: c["id"] for c in gt.loadCats(gt.getCatIds())} == {"car": 1, "person": 2}
    img = gt.loadImgs(order[0])[0]
    assert (img["file_name"], img["width"], img["height"]) == ("img0.png", 160, 120)
    anns = sorted(gt.loadAnns(gt.getAnnIds(imgIds=order[0])), key=lambda a: a["bbox"][0])
    assert [a["bbox"] for a in anns] == [[20.5, 30, 59.5, 60], [100, 5, 20, 35.25]]
    assert [a["category_id"] for a in anns] == [1, 2] and gt.getAnnIds(imgIds=order[1]) == []
    assert gt.annToMask(anns[0]).sum() == pytest.approx(59.5 * 60, rel=0.05)
    # the export, read back as detections with score 1, scores AP 1 against itself
    dets = [{**a, "score": 1.0} for a in gt.loadAnns(gt.getAnnIds())]
    with contextlib.redirect_stdout(io.StringIO()):
        ev = COCOeval(gt, gt.loadRes(dets), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    assert ev.stats[0] == pytest.approx(1.0)

    # import it as the gold of a new project over the same images: the same boxes
    q = ws.create_project("boxes again", p["dataset_id"], CLASSES, kind="boxes")
    assert ws.import_coco(q["id"], tmp_path / "coco.json")["added"] == 3
    gold = {g["item_id"]: g["label"] for g in ws.list_gold(q["id"])[0]}
    assert gold == finals(ws, p) == {order[0]: sorted(ws_kind(ws, BOXES[0])), order[1]: [],
                                     order[2]: [[0.0, 0.0, 160.0, 120.0, "car"]]}


def ws_kind(ws, label):
    from assay import kinds

    return kinds.get("boxes").validate(label, {"classes": [{"name": c} for c in CLASSES]})


def test_boxes_yolo_and_voc(ws, tmp_path):
    p, order = labeled(ws, tmp_path, "boxes", BOXES, "boxes")
    want = finals(ws, p)
    assert ws.export_shapes(p["id"], tmp_path / "yolo", "yolo")["images"] == 3
    assert (tmp_path / "yolo" / "classes.txt").read_text() == "car\nperson\n"
    assert "nc: 2" in (tmp_path / "yolo" / "data.yaml").read_text()
    for i, item in enumerate(order[:3]):
        lines = (tmp_path / "yolo" / "labels" / f"img{i}.txt").read_text().splitlines()
        got = []
        for line in lines:
            c, cx, cy, w, h = line.split()
            cx, cy, w, h = float(cx) * 160, float(cy) * 120, float(w) * 160, float(h) * 120
            got.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, CLASSES[int(c)]])
        assert len(got) == len(want[item])
        for g, b in zip(sorted(got), want[item], strict=True):
            assert g[4] == b[4] and all(abs(x - y) < 0.001 for x, y in zip(g[:4], b[:4], strict=True))
    assert not (tmp_path / "yolo" / "labels" / "img3.txt").exists()

    assert ws.export_shapes(p["id"], tmp_path / "voc", "voc")["images"] == 3
    for i, item in enumerate(order[:3]):
        root = ET.parse(tmp_path / "voc" / "Annotations" / f"img{i}.xml").getroot()
        assert root.findtext("filename") == f"img{i}.png" and root.findtext("size/width") == "160"
        got = sorted([float(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")] + [o.findtext("name")]
                     for o in root.iter("object"))
        assert got == want[item]
    with pytest.raises(InvalidInput, match="not an empty folder"):
        ws.export_shapes(p["id"], tmp_path / "voc", "voc")
    with pytest.raises(InvalidInput, match="unknown shape format"):
        ws.export_shapes(p["id"], tmp_path / "x.txt")


def test_polygons_coco_yolo_round_trip(ws, tmp_path):
    from pycocotools.coco import COCO

    p, order = labeled(ws, tmp_path, "polygons", POLYS, "outlines")
    want = finals(ws, p)
    assert ws.export_shapes(p["id"], tmp_path / "poly.json")["images"] == 2
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(tmp_path / "poly.json"))
    tri = next(a for a in gt.loadAnns(gt.getAnnIds()) if a["category_id"] == 2)
    assert tri["segmentation"] == [[100, 10, 140, 10, 120, 60]] and tri["area"] == 1000
    assert gt.annToMask(tri).sum() == pytest.approx(1000, rel=0.1)
    q = ws.create_project("outlines again", p["dataset_id"], CLASSES, kind="polygons")
    ws.import_coco(q["id"], tmp_path / "poly.json")
    assert {g["item_id"]: g["label"] for g in ws.list_gold(q["id"])[0]} == want
    ws.export_shapes(p["id"], tmp_path / "yolo", "yolo")
    line = next(x for x in (tmp_path / "yolo" / "labels" / "img0.txt").read_text().splitlines() if x[0] == "1")
    assert line == "1 0.625000 0.083333 0.875000 0.083333 0.750000 0.500000"
    with pytest.raises(InvalidInput, match="VOC holds boxes only"):
        ws.export_shapes(p["id"], tmp_path / "voc", "voc")
    single = ws.create_project("plain", p["dataset_id"], CLASSES)
    with pytest.raises(InvalidInput, match="boxes and polygons projects"):
        ws.export_shapes(single["id"], tmp_path / "s.json")


def test_bad_coco_files_store_nothing(ws, tmp_path):
    p, order = labeled(ws, tmp_path, "boxes", [None, None, None], "empty")
    good_image = {"id": 7, "file_name": "img0.png", "width": 160, "height": 120}
    cats = [{"id": 1, "name": "car"}]
    bad = {
        "not json": "not JSON",
        json.dumps({"images": [good_image], "annotations": []}): "categories",
        json.dumps({"images": [good_image], "annotations": [{"image_id": 7, "category_id": 9, "bbox": [1, 1, 2, 2]}],
                    "categories": cats}): "category_id",
        json.dumps({"images": [good_image], "annotations": [{"image_id": 8, "category_id": 1, "bbox": [1, 1, 2, 2]}],
                    "categories": cats}): "not among the images",
        json.dumps({"images": [good_image], "annotations": [{"image_id": 7, "category_id": 1, "bbox": [5, 1, -2, 2]}],
                    "categories": cats}): "x1 < x2",
        json.dumps({"images": [{**good_image, "file_name": "elsewhere.png"}], "annotations": [],
                    "categories": cats}): "no item has file = 'elsewhere.png'",
    }
    before = snapshot(ws)
    for n, (body, msg) in enumerate(bad.items()):
        (tmp_path / f"bad{n}.json").write_text(body)
        with pytest.raises(InvalidInput, match=msg):
            ws.import_coco(p["id"], tmp_path / f"bad{n}.json")
    assert snapshot(ws) == before
    (tmp_path / "none.json").write_text(json.dumps({"images": [good_image], "annotations": [], "categories": cats}))
    assert ws.import_coco(p["id"], tmp_path / "none.json")["added"] == 1  # listed, no objects: nothing to mark
    assert [g["label"] for g in ws.list_gold(p["id"])[0]] == [[]]
    poly = ws.create_project("outlines", p["dataset_id"], CLASSES, kind="polygons")
    (tmp_path / "rle.json").write_text(json.dumps({"images": [good_image], "categories": cats, "annotations": [
        {"image_id": 7, "category_id": 1, "segmentation": {"counts": [1, 2], "size": [120, 160]}}]}))
    with pytest.raises(InvalidInput, match="run-length"):
        ws.import_coco(poly["id"], tmp_path / "rle.json")


def test_coco_over_http_and_the_cli(ws, home, tmp_path):
    """The same COCO file from ``GET …/export?format=coco``, ``ws.export(….json)`` and
    ``assay export``; ``assay project gold`` takes it back as gold."""
    import httpx

    from _server import LiveServer
    from factories import run_cli

    p, order = labeled(ws, tmp_path, "boxes", BOXES, "boxes")
    admin, token = ws.add_user("boss", role="admin")
    assert ws.export(p["id"], tmp_path / "via-export.json") == {
        "path": str(tmp_path / "via-export.json"), "format": "coco", "images": 3, "items": 3}
    on_disk = json.loads((tmp_path / "via-export.json").read_text())
    with LiveServer(ws) as srv:
        h = {"Authorization": f"Bearer {token}"}
        r = httpx.get(f"{srv.base}/api/projects/{p['id']}/export", params={"format": "coco"}, headers=h)
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        assert r.headers["content-disposition"].endswith('.json"') or ".json" in r.headers["content-disposition"]
        assert r.json() == on_disk
        plain = ws.create_project("plain", p["dataset_id"], CLASSES)
        bad = httpx.get(f"{srv.base}/api/projects/{plain['id']}/export", params={"format": "coco"}, headers=h)
        assert bad.status_code == 400 and "boxes and polygons" in bad.json()["error"]["message"]

    # the CLI (``home`` is the same workspace as ``ws``)
    r = run_cli("export", "boxes", str(tmp_path / "cars.json"))
    assert "wrote 3 items" in r.output and "(coco)" in r.output
    assert json.loads((tmp_path / "cars.json").read_text()) == on_disk
    ws.create_project("boxes gold", p["dataset_id"], CLASSES, kind="boxes")
    r = run_cli("project", "gold", "boxes gold", str(tmp_path / "cars.json"))
    assert "3 added" in r.output, r.output
    assert {g["item_id"]: g["label"] for g in ws.list_gold("boxes gold")[0]} == finals(ws, p)
    r = run_cli("export", "boxes", str(tmp_path / "cars-yolo"), "--format", "yolo")
    assert "wrote 3 items" in r.output and (tmp_path / "cars-yolo" / "labels" / "img0.txt").exists()


def _zip_folder(folder, top: str = "") -> bytes:
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                zf.write(f, top + f.relative_to(folder).as_posix())
        zf.writestr(top + "images/img0.png", b"not unpacked: images stay in the zip")
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["yolo", "voc"])
def test_zipped_label_folder_uploads_as_gold(ws, tmp_path, fmt):
    """A YOLO or VOC folder, zipped, uploaded over HTTP to the gold route the
    project page uses, gives the same gold as the folder; a zip with an
    unsafe path or no label folder is refused and stores nothing."""
    import zipfile

    import httpx

    from _server import LiveServer

    p, order = labeled(ws, tmp_path, "boxes", BOXES, "boxes")
    want = finals(ws, p)
    ws.export_shapes(p["id"], tmp_path / fmt, fmt)
    q = ws.create_project("boxes gold", p["dataset_id"], CLASSES, kind="boxes")
    _, token = ws.add_user("boss", role="admin")
    bad = io.BytesIO()
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("labels/img0.txt", "0 0.5 0.5 0.1 0.1\n")
        zf.writestr("../escape.txt", "x")
    url = f"/api/projects/{q['id']}/gold/file"
    with LiveServer(ws) as srv:
        h = {"Authorization": f"Bearer {token}"}
        r = httpx.post(srv.base + url, headers=h, files={"file": ("bad.zip", bad.getvalue())})
        assert r.status_code == 400 and "unsafe path" in r.json()["error"]["message"]
        empty = io.BytesIO()
        with zipfile.ZipFile(empty, "w") as zf:
            zf.writestr("readme.txt", "no labels here")
        r = httpx.post(srv.base + url, headers=h, files={"file": ("empty.zip", empty.getvalue())})
        assert r.status_code == 400 and "labels/" in r.json()["error"]["message"]
        r = httpx.post(srv.base + url, headers=h, files={"file": ("junk.zip", b"PK not a zip")})
        assert r.status_code == 400 and "not a readable zip" in r.json()["error"]["message"]
        assert ws.list_gold(q["id"])[0] == []
        r = httpx.post(srv.base + url, headers=h, files={"file": (f"{fmt}.zip", _zip_folder(tmp_path / fmt, "export/"))})
        assert r.status_code == 201, r.text
        assert r.json()["added"] == 3
    assert {g["item_id"]: g["label"] for g in ws.list_gold(q["id"])[0]} == want


def test_a_whole_yolo_dataset_zip_is_data_then_gold(ws, tmp_path):
    """A YOLO dataset as people keep it (``images/``, ``labels/``, ``classes.txt``,
    ``data.yaml``, a COCO ``.json`` beside), zipped, dropped on the data page's
    route: the images become items and the label files are set aside and
    counted; the same zip on the project page's gold route gives each image
    its boxes (``labels/x.txt`` names ``images/x.png``). A stray notes file is
    still refused, and the refusal stores nothing."""
    import zipfile

    import httpx
    from PIL import Image

    from _server import LiveServer

    members = {}
    for i in range(3):
        buf = io.BytesIO()
        Image.new("RGB", (100, 50), (40 * i, 90, 90)).save(buf, "PNG")
        members[f"images/x{i}.png"] = buf.getvalue()
    # YOLO: class cx cy w h, relative to the image (100 x 50)
    members.update({"labels/x0.txt": b"0 0.5 0.5 0.2 0.4\n", "labels/x1.txt": b"1 0.25 0.5 0.1 0.2\n0 0.9 0.1 0.2 0.2\n",
                    "labels/x2.txt": b"", "classes.txt": b"car\nperson\n",
                    "data.yaml": b"names: [car, person]\n", "annotations/instances.json": b"{}"})

    def zipped(extra: dict | None = None) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            for name, data in {**members, **(extra or {})}.items():
                zf.writestr("street/" + name, data)
        return buf.getvalue()

    ds = ws.create_dataset("street")
    _, token = ws.add_user("boss", role="admin")
    h = {"Authorization": f"Bearer {token}"}
    with LiveServer(ws) as srv:
        up = f"{srv.base}/api/datasets/{ds['id']}/import"
        before = snapshot(ws)
        r = httpx.post(up, headers=h, files={"file": ("street.zip", zipped({"notes.txt": b"hello"}))})
        assert r.status_code == 400 and "street/notes.txt" in r.json()["error"]["message"]
        assert snapshot(ws) == before
        r = httpx.post(up, headers=h, files={"file": ("street.zip", zipped())})
        assert r.status_code == 200, r.text
        assert (r.json()["added"], r.json()["label_files"]) == (3, 6)  # 3 label .txt, classes.txt, data.yaml, .json
        p = ws.create_project("boxes", ds["id"], CLASSES, kind="boxes")
        r = httpx.post(f"{srv.base}/api/projects/{p['id']}/gold/file", headers=h,
                       files={"file": ("street.zip", zipped())})
        assert r.status_code == 201, r.text
        assert r.json()["added"] == 3
    with ws.db.read() as conn:
        from sqlalchemy import JSON, text

        files = {row.id: row.meta["file"] for row in conn.execute(
            text("SELECT id, meta FROM items WHERE dataset_id = :d").columns(meta=JSON), {"d": ds["id"]})}
    gold = {files[g["item_id"]]: g["label"] for g in ws.list_gold(p["id"])[0]}
    assert gold == {"street/images/x0.png": [[40.0, 15.0, 60.0, 35.0, "car"]],
                    "street/images/x1.png": [[20.0, 20.0, 30.0, 30.0, "person"], [80.0, 0.0, 100.0, 10.0, "car"]],
                    "street/images/x2.png": []}
