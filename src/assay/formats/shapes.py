"""Boxes and polygons in the formats detection tools read: COCO, YOLO and
Pascal VOC, exported and imported as gold.

Only images with a final label are exported (an image nobody labeled is not
"nothing there"); an image whose final label is ``[]`` is exported with no
objects. Coordinates are assay's: image pixels, the origin at the top-left
corner of the top-left pixel.

- **COCO** (one JSON file): ``images`` (``id`` = the item id, ``file_name``
  = the imported file's path, ``width``, ``height``), ``annotations``
  (``bbox`` ``[x, y, width, height]``, ``area``, ``segmentation``: the
  polygon, or the box's four corners, ``iscrowd`` 0) and ``categories`` (the
  project's classes, ids from 1). Each image also carries ``assay``: its
  label's method and confidence. Written in constant memory (the annotations
  wait in a temporary file while the images are written).
- **YOLO** (a folder): ``labels/<file>.txt`` per image, one object a line:
  ``class cx cy w h`` (boxes) or ``class x1 y1 x2 y2 …`` (polygons, YOLO's
  segmentation format), normalised to the image's size; ``classes.txt`` and
  ``data.yaml`` list the classes (ids from 0).
- **Pascal VOC** (a folder, boxes only): ``Annotations/<file>.xml`` per image.

COCO import (:func:`coco_gold_rows`) matches COCO images to items by the
imported file's path (``file_name`` = the item's ``file``), boxes from
``bbox``, polygons from ``segmentation`` polygons; an image listed without
annotations is "nothing to mark". YOLO and VOC import
(:func:`yolo_shapes`, :func:`voc_boxes`) read one label file each; the
file's path under ``labels/`` or ``Annotations/`` without its suffix names
the image (:func:`stem_key`), as the export writes it. VOC files with a
document type declaration are refused (no entity expansion).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from xml.sax.saxutils import escape

import orjson
from sqlalchemy import bindparam, text

from assay.errors import InvalidInput

FORMATS = ("coco", "yolo", "voc")
SHAPE_KINDS = ("boxes", "polygons")
_BATCH = 500
_BLOBS = text("SELECT id, blob FROM items WHERE id IN :ids").bindparams(bindparam("ids", expanding=True))


def check(fmt: str, kind: str) -> None:
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown shape format {str(fmt)[:20]!r}: use one of {', '.join(FORMATS)}")
    if kind not in SHAPE_KINDS:
        raise InvalidInput(f"{fmt.upper()} export is for boxes and polygons projects, not {kind!r}")
    if fmt == "voc" and kind != "boxes":
        raise InvalidInput("Pascal VOC holds boxes only: export polygons as coco or yolo")


def _file_name(rec: dict, key: str | None) -> str:
    """The image's path as imported (safe: relative, no ``..``), else ``item-<id><suffix>``."""
    f = (rec.get("meta") or {}).get("file")
    if isinstance(f, str) and f.strip():
        parts = [p for p in PurePosixPath(f.replace("\\", "/")).parts if p not in ("", ".", "..", "/")]
        if parts:
            return "/".join(parts)
    return f"item-{rec['item_id']}{Path(key or '').suffix}"


def with_images(db, blobs, records: Iterable[dict]) -> Iterator[dict]:
    """The labeled image records, each with ``file_name``, ``width`` and
    ``height`` (read from the image's header)."""
    from PIL import Image

    def flush(batch):
        with db.read() as conn:
            keys = dict(conn.execute(_BLOBS, {"ids": [r["item_id"] for r in batch]}).all())
        for r in batch:
            key = keys.get(r["item_id"])
            if r["kind"] != "image" or not key:
                raise InvalidInput(f"item {r['item_id']} is not an image: shape formats need image items")
            try:
                with Image.open(blobs.path(key)) as im:
                    w, h = im.size
            except OSError as e:
                raise InvalidInput(f"item {r['item_id']}: cannot read its image ({e})") from None
            yield {**r, "file_name": _file_name(r, key), "width": w, "height": h}

    batch: list[dict] = []
    for rec in records:
        if rec["label"] is None:
            continue
        batch.append(rec)
        if len(batch) >= _BATCH:
            yield from flush(batch)
            batch = []
    if batch:
        yield from flush(batch)


def _shapes(label: list, kind: str) -> Iterator[tuple[str, list[float], list[list[float]]]]:
    """(class, bbox x1 y1 x2 y2, outline points) of each shape."""
    for s in label:
        if kind == "boxes":
            x1, y1, x2, y2, lab = s
            yield lab, [x1, y1, x2, y2], [[x1, y1], [x2, y1], [x2, y2], [x1, y2]]
        else:
            pts = s["points"]
            xs, ys = [p[0] for p in pts], [p[1] for p in pts]
            yield s["label"], [min(xs), min(ys), max(xs), max(ys)], pts


def _area(pts: list) -> float:
    return abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(pts, [*pts[1:], pts[0]], strict=True))) / 2


def _r(v: float) -> float:
    return round(v, 2)


def coco_chunks(images: Iterable[dict], classes: list[str], kind: str, spool: str | None = None) -> Iterator[bytes]:
    """A COCO detection file as byte chunks, in constant memory: the images
    stream out while their annotations wait in a temporary file (in ``spool``)."""
    cat = {c: i + 1 for i, c in enumerate(classes)}
    n_img = n_ann = 0
    with tempfile.TemporaryFile(dir=spool) as anns:
        buf = [b'{"info":{"description":"assay export","version":"1.0"},"licenses":[],"images":[']
        for im in images:
            buf.append((b"," if n_img else b"") + orjson.dumps({
                "id": im["item_id"], "file_name": im["file_name"], "width": im["width"], "height": im["height"],
                "assay": {"label_method": im["label_method"], "confidence": im["confidence"]}}))
            n_img += 1
            for lab, (x1, y1, x2, y2), pts in _shapes(im["label"], kind):
                n_ann += 1
                anns.write((b"," if n_ann > 1 else b"") + orjson.dumps({
                    "id": n_ann, "image_id": im["item_id"], "category_id": cat[lab], "iscrowd": 0,
                    "bbox": [_r(x1), _r(y1), _r(x2 - x1), _r(y2 - y1)],
                    "area": _r((x2 - x1) * (y2 - y1) if kind == "boxes" else _area(pts)),
                    "segmentation": [[c for p in pts for c in p]]}))
            if len(buf) >= 500:
                yield b"".join(buf)
                buf = []
        yield b"".join(buf) + b'],"annotations":['
        anns.seek(0)
        while chunk := anns.read(1 << 20):
            yield chunk
        yield b'],"categories":' + orjson.dumps([{"id": i, "name": c, "supercategory": ""} for c, i in cat.items()]) + b"}"


def write_coco(images: Iterable[dict], path: Path, classes: list[str], kind: str) -> int:
    """Write a COCO detection file (renamed into place when complete); returns the number of images."""
    counted = _Counted(images)
    with _atomic(path) as out:
        for chunk in coco_chunks(counted, classes, kind, spool=str(path.parent)):
            out.write(chunk)
    return counted.n


class _Counted:
    def __init__(self, it: Iterable) -> None:
        self.it, self.n = it, 0

    def __iter__(self):
        for x in self.it:
            self.n += 1
            yield x


def _norm(v: float, size: int) -> str:
    return f"{min(max(v / size, 0.0), 1.0):.6f}"


def yolo_lines(im: dict, classes: list[str], kind: str) -> str:
    idx = {c: i for i, c in enumerate(classes)}
    w, h = im["width"], im["height"]
    lines = []
    for lab, (x1, y1, x2, y2), pts in _shapes(im["label"], kind):
        if kind == "boxes":
            vals = [_norm((x1 + x2) / 2, w), _norm((y1 + y2) / 2, h), _norm(x2 - x1, w), _norm(y2 - y1, h)]
        else:
            vals = [_norm(c, w if k % 2 == 0 else h) for k, c in enumerate(c for p in pts for c in p)]
        lines.append(" ".join([str(idx[lab]), *vals]))
    return "".join(line + "\n" for line in lines)


def voc_xml(im: dict) -> str:
    objs = "".join(
        f"  <object>\n    <name>{escape(b[4])}</name>\n    <pose>Unspecified</pose>\n    <truncated>0</truncated>\n"
        f"    <difficult>0</difficult>\n    <bndbox>\n      <xmin>{b[0]:g}</xmin>\n      <ymin>{b[1]:g}</ymin>\n"
        f"      <xmax>{b[2]:g}</xmax>\n      <ymax>{b[3]:g}</ymax>\n    </bndbox>\n  </object>\n"
        for b in im["label"])
    name = PurePosixPath(im["file_name"])
    return (f"<annotation>\n  <folder>{escape(str(name.parent))}</folder>\n  <filename>{escape(name.name)}</filename>\n"
            f"  <size>\n    <width>{im['width']}</width>\n    <height>{im['height']}</height>\n    <depth>3</depth>\n"
            f"  </size>\n  <segmented>0</segmented>\n{objs}</annotation>\n")


def write_folder(images: Iterable[dict], folder: Path, fmt: str, classes: list[str], kind: str) -> int:
    """Write a YOLO or VOC folder (one file per image); returns the number of images."""
    sub, suffix = ("labels", ".txt") if fmt == "yolo" else ("Annotations", ".xml")
    (folder / sub).mkdir(parents=True, exist_ok=True)
    n = 0
    for im in images:
        target = folder / sub / PurePosixPath(im["file_name"]).with_suffix(suffix)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yolo_lines(im, classes, kind) if fmt == "yolo" else voc_xml(im), encoding="utf-8")
        n += 1
    if fmt == "yolo":
        (folder / "classes.txt").write_text("".join(c + "\n" for c in classes), encoding="utf-8")
        names = "".join(f"  {i}: {orjson.dumps(c).decode()}\n" for i, c in enumerate(classes))
        (folder / "data.yaml").write_text(f"path: .\nnc: {len(classes)}\nnames:\n{names}", encoding="utf-8")
    return n


class _atomic:
    """A file written to a temporary name and renamed into place on success."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self):
        fd, self.tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}-")
        self.fh = os.fdopen(fd, "wb")
        return self.fh

    def __exit__(self, exc_type, *_) -> None:
        self.fh.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            os.unlink(self.tmp)


# ---------------------------------------------------------------- COCO import


def _coco_part(data: Any, key: str) -> list:
    part = data.get(key) if isinstance(data, dict) else None
    if not isinstance(part, list):
        raise InvalidInput(f"a COCO file needs a list of {key!r}")
    return part


def _coco_shape(a: dict, names: dict, kind: str, n: int):
    if not isinstance(a, dict) or a.get("category_id") not in names:
        raise InvalidInput(f"COCO annotation {n}: needs a category_id among the categories")
    label = names[a["category_id"]]
    if kind == "boxes":
        b = a.get("bbox")
        if not isinstance(b, list) or len(b) != 4 or not all(isinstance(v, int | float) for v in b):
            raise InvalidInput(f"COCO annotation {n}: bbox must be [x, y, width, height]")
        return [b[0], b[1], b[0] + b[2], b[1] + b[3], label]
    seg = a.get("segmentation")
    if not isinstance(seg, list) or len(seg) != 1 or not isinstance(seg[0], list) or len(seg[0]) % 2:
        raise InvalidInput(f"COCO annotation {n}: a polygon is a segmentation of one [x1, y1, x2, y2, ...] list "
                           "(run-length masks and multi-part outlines are not taken)")
    flat = seg[0]
    return {"label": label, "points": [[flat[k], flat[k + 1]] for k in range(0, len(flat), 2)]}


def coco_gold_rows(data: Any, kind: str) -> list[dict]:
    """``{"file": file_name, "label": shapes}`` rows, one per COCO image, for
    :meth:`Workspace.import_gold` with ``key="file"``; InvalidInput on a
    malformed file (the labels themselves are checked by the project's kind)."""
    if kind not in SHAPE_KINDS:
        raise InvalidInput(f"COCO import is for boxes and polygons projects, not {kind!r}")
    cats = _coco_part(data, "categories")
    names = {c.get("id"): c.get("name") for c in cats if isinstance(c, dict)}
    by_image: dict[Any, list] = {}
    files: dict[Any, str] = {}
    for n, im in enumerate(_coco_part(data, "images")):
        if not isinstance(im, dict) or not isinstance(im.get("file_name"), str) or "id" not in im:
            raise InvalidInput(f"COCO image {n}: needs an id and a file_name")
        files[im["id"]] = im["file_name"].replace("\\", "/")
        by_image[im["id"]] = []
    for n, a in enumerate(_coco_part(data, "annotations")):
        shape = _coco_shape(a, names, kind, n)
        if a.get("image_id") not in by_image:
            raise InvalidInput(f"COCO annotation {n}: image_id {a.get('image_id')!r} is not among the images")
        by_image[a["image_id"]].append(shape)
    return [{"file": files[i], "label": shapes} for i, shapes in by_image.items()]


# ---------------------------------------------------------------- YOLO and VOC import


def stem_key(path: str) -> str:
    """A file's path without its suffix, ``/``-separated: how a YOLO or VOC
    file (``labels/a/b.txt``, ``Annotations/a/b.xml``) names its image (``a/b.png``)."""
    return str(PurePosixPath(path.replace("\\", "/")).with_suffix("")).lstrip("./")


#: the folder a YOLO (``images/``) or Pascal VOC (``JPEGImages/``) dataset keeps its images in,
#: beside ``labels/`` or ``Annotations/``: ``images/a/b.png`` is named by ``labels/a/b.txt``
IMAGE_FOLDERS = ("images", "JPEGImages")


def image_stem_keys(stem: str) -> list[str]:
    """The stem keys a label file may name an imported image by: its path
    without suffix; the path after its first :data:`IMAGE_FOLDERS` folder
    (``ds/images/a/b`` -> ``a/b``: a whole YOLO or VOC folder imported as
    data); and the path without its top folder (``ds/a/b`` -> ``a/b``: a zip
    that holds the dataset's folder)."""
    parts = stem.split("/")
    keys = [stem]
    at = next((i for i, part in enumerate(parts[:-1]) if part in IMAGE_FOLDERS), None)
    if at is not None:
        keys.append("/".join(parts[at + 1:]))
    if len(parts) > 1:
        keys.append("/".join(parts[1:]))
    return list(dict.fromkeys(keys))


def label_files(folder: Path, sub: str, suffix: str) -> list[tuple[str, Path]]:
    """``(stem key, file)`` of the folder's ``sub/**/*suffix`` files (or its own, without ``sub``)."""
    root = folder / sub if (folder / sub).is_dir() else folder
    files = sorted(f for f in root.rglob(f"*{suffix}") if f.is_file() and f.name != "classes.txt")
    return [(stem_key(f.relative_to(root).as_posix()), f) for f in files]


#: what a zipped YOLO or VOC folder contributes: its label files and class lists (images stay out)
LABEL_SUFFIXES = (".txt", ".xml", ".yaml", ".yml")


def unpack_label_zip(path: Path, dest: Path) -> Path:
    """Unpack the label files of a zipped YOLO or Pascal VOC folder into
    ``dest`` (images and anything else are left packed), checked against
    the import limits first (:func:`assay.formats.zips.zip_members`: entry
    count, sizes, compression ratio, unsafe paths). Returns the folder that
    holds ``labels/`` or ``Annotations/`` (the zip's root, or its one
    top-level folder)."""
    import zipfile

    from assay.formats.ingest import Limits
    from assay.formats.zips import ZipReader, zip_members

    limits, name = Limits.from_env(), path.name
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise InvalidInput(f"{name} is not a readable zip file: {str(e)[:200]}") from None
    with zf:
        reader = ZipReader(zf, name, limits)
        for info in zip_members(zf, name, limits):
            if PurePosixPath(info.filename).suffix.lower() not in LABEL_SUFFIXES:
                continue
            target = dest.joinpath(*PurePosixPath(info.filename).parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(reader.read(info))
    for root in [dest, *sorted(d for d in dest.iterdir() if d.is_dir())]:
        if (root / "labels").is_dir() or (root / "Annotations").is_dir():
            return root
    raise InvalidInput(f"{name} holds no labels/ (YOLO) or Annotations/ (Pascal VOC) folder at its top "
                       "or in its one top-level folder")


def yolo_classes(folder: Path, project_classes: list[str]) -> list[str]:
    """The class names of a YOLO folder: ``classes.txt`` (one a line), else
    ``data.yaml``'s ``names``, else the project's classes in order."""
    if (folder / "classes.txt").is_file():
        return [c.strip() for c in (folder / "classes.txt").read_text(encoding="utf-8").splitlines() if c.strip()]
    if (folder / "data.yaml").is_file():
        import yaml

        try:
            names = (yaml.safe_load((folder / "data.yaml").read_text(encoding="utf-8")) or {}).get("names")
        except (yaml.YAMLError, AttributeError) as e:
            raise InvalidInput(f"data.yaml cannot be read: {str(e)[:200]}") from None
        if isinstance(names, dict):
            names = [names[k] for k in sorted(names)]
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            return names
        raise InvalidInput("data.yaml needs 'names': a list of class names (or a map of id to name)")
    return list(project_classes)


def yolo_shapes(text: str, classes: list[str], kind: str, size: tuple[int, int], where: str) -> list:
    """The shapes of one YOLO label file, in pixels of an image of ``size``."""
    w, h = size
    out: list = []
    for n, line in enumerate(text.splitlines(), 1):
        cols = line.split()
        if not cols:
            continue
        try:
            cls, vals = int(cols[0]), [float(v) for v in cols[1:]]
        except ValueError:
            raise InvalidInput(f"{where}, line {n}: expected a class id and numbers, got {line[:80]!r}") from None
        if not 0 <= cls < len(classes):
            raise InvalidInput(f"{where}, line {n}: class id {cls} is not among the {len(classes)} classes")
        if kind == "boxes":
            if len(vals) != 4:
                raise InvalidInput(f"{where}, line {n}: a box is 'class cx cy w h' (4 numbers), got {len(vals)}")
            cx, cy, bw, bh = vals
            out.append([_r((cx - bw / 2) * w), _r((cy - bh / 2) * h), _r((cx + bw / 2) * w),
                        _r((cy + bh / 2) * h), classes[cls]])
        else:
            if len(vals) < 6 or len(vals) % 2:
                raise InvalidInput(f"{where}, line {n}: a polygon is 'class x1 y1 x2 y2 x3 y3 ...'")
            out.append({"label": classes[cls],
                        "points": [[_r(vals[k] * w), _r(vals[k + 1] * h)] for k in range(0, len(vals), 2)]})
    return out


def _voc_number(obj, tag: str, where: str) -> float:
    node = obj.find(f"bndbox/{tag}")
    try:
        return float(node.text)  # type: ignore[union-attr, arg-type]
    except (AttributeError, TypeError, ValueError):
        raise InvalidInput(f"{where}: an object needs a number in bndbox/{tag}") from None


def voc_boxes(data: bytes, where: str) -> list:
    """The boxes of one Pascal VOC annotation file (``[x1, y1, x2, y2, name]``)."""
    import xml.etree.ElementTree as ET

    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise InvalidInput(f"{where}: document type declarations are not accepted in VOC files")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise InvalidInput(f"{where}: not valid XML ({e})") from None
    out = []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise InvalidInput(f"{where}: an object has no <name>")
        out.append([*(_voc_number(obj, t, where) for t in ("xmin", "ymin", "xmax", "ymax")), name])
    return out
