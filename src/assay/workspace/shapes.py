"""Boxes and polygons in detection formats: COCO, YOLO and Pascal VOC export
and import as gold (:mod:`assay.formats.shapes` holds the formats); CoNLL
import as gold for spans projects (:mod:`assay.formats.spans`).

Relies on :class:`~assay.workspace.reports.Reports` (``export_records``) and
:class:`~assay.workspace.labeling.Labeling` (``import_gold``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import orjson
from sqlalchemy import select

from assay import audit as _audit
from assay import kinds
from assay.errors import InvalidInput
from assay.formats import shapes as _shapes
from assay.formats import spans as _spans
from assay.store.schema import items as _items


class Shapes:
    """Shape projects (``boxes``, ``polygons``) in and out of detection formats."""

    def export_shapes(self, project: int | str, path: str | os.PathLike, fmt: str | None = None) -> dict:
        """Write the final labels of a boxes or polygons project's labeled
        images as ``coco`` (a JSON file), ``yolo`` or ``voc`` (folders; VOC
        for boxes only). ``fmt`` defaults to ``coco`` for a ``.json`` path.
        Returns ``{"path", "format", "images"}``."""
        p = self.get_project(project)
        path = Path(path)
        fmt = (fmt or ("coco" if path.suffix.lower() == ".json" else "")).lower()
        _shapes.check(fmt, p["schema"]["kind"])
        if fmt != "coco" and path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise InvalidInput(f"{path} exists and is not an empty folder: {fmt} exports write a folder")
        if fmt == "coco" and not path.parent.is_dir():
            raise InvalidInput(f"no folder {path.parent} to write {path.name} in")
        with self.db.write() as conn:
            _audit.record(conn, "export", target_kind="project", target_id=p["id"], target=p["name"],
                          details={"format": fmt, "labeled_only": True, "path": str(path)[:500]})
        images = _shapes.with_images(self.db, self.blobs, self.export_records(p["id"], labeled_only=True))
        classes = [c["name"] for c in p["schema"]["classes"]]
        if fmt == "coco":
            n = _shapes.write_coco(images, path, classes, p["schema"]["kind"])
        else:
            n = _shapes.write_folder(images, path, fmt, classes, p["schema"]["kind"])
        return {"path": str(path), "format": fmt, "images": n}

    def coco_chunks(self, project: int | str) -> Iterator[bytes]:
        """The COCO export as a stream of byte chunks (what ``GET
        /api/projects/{id}/export?format=coco`` sends); checked and audited
        before the first chunk."""
        p = self.get_project(project)
        _shapes.check("coco", p["schema"]["kind"])
        with self.db.write() as conn:
            _audit.record(conn, "export", target_kind="project", target_id=p["id"], target=p["name"],
                          details={"format": "coco", "labeled_only": True})
        images = _shapes.with_images(self.db, self.blobs, self.export_records(p["id"], labeled_only=True))
        return _shapes.coco_chunks(images, [c["name"] for c in p["schema"]["classes"]], p["schema"]["kind"])

    def import_coco(self, project: int | str, path: str | os.PathLike, *,
                    user: int | str | dict | None = None) -> dict:
        """A COCO file's boxes (``bbox``) or polygons (``segmentation``) as the
        gold labels of the items imported from its images' ``file_name``; an
        image without annotations is "nothing to mark". All or nothing, as
        :meth:`import_gold`."""
        p = self.get_project(project)
        path = Path(path)
        if not path.is_file():
            raise InvalidInput(f"{path} is not a file")
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as e:
            raise InvalidInput(f"{path.name} is not JSON: {e}") from None
        rows = _shapes.coco_gold_rows(data, p["schema"]["kind"])
        if not rows:
            raise InvalidInput(f"{path.name} lists no images")
        return self.import_gold(p["id"], rows, key="file", user=user)

    def import_shapes_folder(self, project: int | str, folder: str | os.PathLike, fmt: str | None = None, *,
                             user: int | str | dict | None = None) -> dict:
        """A YOLO folder (``labels/**/*.txt``, class names from ``classes.txt``
        or ``data.yaml``, else the project's classes in order) or a Pascal VOC
        folder (``Annotations/**/*.xml``, boxes only) as the gold labels of the
        images they name: ``labels/a/b.txt`` is the item imported from
        ``a/b.<any suffix>`` or ``images/a/b.<any suffix>`` (the whole folder
        imported as data). YOLO coordinates are scaled by each image's size
        (read from the image). ``fmt`` defaults to ``voc`` when the folder has
        ``Annotations``, else ``yolo``. All or nothing, as :meth:`import_gold`."""
        p = self.get_project(project)
        folder, kind = Path(folder), p["schema"]["kind"]
        if not folder.is_dir():
            raise InvalidInput(f"{folder} is not a folder")
        fmt = (fmt or ("voc" if (folder / "Annotations").is_dir() else "yolo")).lower()
        if fmt not in ("yolo", "voc"):
            raise InvalidInput(f"unknown shape folder format {fmt[:20]!r}: use yolo or voc")
        _shapes.check(fmt, kind)
        files = _shapes.label_files(folder, *(("labels", ".txt") if fmt == "yolo" else ("Annotations", ".xml")))
        if not files:
            raise InvalidInput(f"{folder} holds no {'labels/*.txt' if fmt == 'yolo' else 'Annotations/*.xml'} files")
        images = self._images_by_stem(p, {k for k, _ in files})
        classes = _shapes.yolo_classes(folder, [c["name"] for c in p["schema"]["classes"]]) if fmt == "yolo" else []
        rows = []
        for stem, f in files:
            where = f"{f.relative_to(folder).as_posix()}"
            if stem not in images:
                raise InvalidInput(f"{where}: no image of the dataset was imported as {stem}.*; nothing was stored")
            item_id, key = images[stem]
            if fmt == "voc":
                rows.append({"item_id": item_id, "label": _shapes.voc_boxes(f.read_bytes(), where)})
                continue
            from PIL import Image

            try:
                with Image.open(self.blobs.path(key)) as im:
                    size = im.size
            except OSError as e:
                raise InvalidInput(f"{where}: cannot read the size of image {item_id} ({e})") from None
            label = _shapes.yolo_shapes(f.read_text(encoding="utf-8"), classes, kind, size, where)
            rows.append({"item_id": item_id, "label": label})
        return self.import_gold(p["id"], rows, user=user)

    def _images_by_stem(self, p: dict, stems: set[str]) -> dict[str, tuple[int, str]]:
        """Stem key (the imported file's path without suffix, also without a
        leading ``images/`` or top folder: :func:`assay.formats.shapes.image_stem_keys`)
        -> (item id, blob key) of the dataset's images named in ``stems``."""
        out: dict[str, tuple[int, str]] = {}
        q = select(_items.c.id, _items.c.blob, _items.c.meta).where(
            _items.c.dataset_id == p["dataset_id"], _items.c.kind == "image").order_by(_items.c.id)
        with self.db.read() as conn:
            for item_id, blob, meta in conn.execute(q):
                meta = meta if isinstance(meta, dict) else None  # the export's name: the file, else item-<id>
                stem = _shapes.stem_key(_shapes._file_name({"meta": meta, "item_id": item_id}, blob))
                for key in _shapes.image_stem_keys(stem):
                    if key in stems and blob:
                        if key in out:
                            raise InvalidInput(f"two images of the dataset are named {key}.*: rename one to import")
                        out[key] = (item_id, blob)
        return out

    def import_conll(self, project: int | str, path: str | os.PathLike, *,
                     user: int | str | dict | None = None) -> dict:
        """CoNLL BIO text (as the ``conll`` export writes it, ``# item_id = N``
        before each item; without it, the item whose text is the tokens one
        space apart, as importing the file as data makes it) as the gold
        spans of a spans project: each item's
        tokens are found in its text, in order with only whitespace between
        them, and the spans rebuilt as character offsets. Refused, naming the
        item and token, when the tokens are not the text's. All or nothing."""
        p = self.get_project(project)
        path = Path(path)
        if "conll" not in self._kind_formats(p):
            raise InvalidInput(f"CoNLL import is for spans projects, not {p['schema']['kind']!r}")
        if not path.is_file():
            raise InvalidInput(f"{path} is not a file")
        docs = _spans.read_conll_file(path)
        unnamed = [d for d in docs if not isinstance(d.get("item_id"), int)]
        if unnamed:  # no '# item_id = N': the item whose text is the tokens one space apart (a CoNLL import)
            from assay.engine import datasets as _datasets

            wanted = [_spans.conll_text(d["tokens"]) for d in unnamed]
            with self.db.read() as conn:
                found = _datasets.items_by_text(conn, p["dataset_id"], wanted)
            for d, t in zip(unnamed, wanted):
                if t not in found:
                    raise InvalidInput(f"{path.name}, item {docs.index(d) + 1}: no '# item_id = N' line, and no "
                                       f"text item of the dataset reads {t[:40]!r}; nothing was stored")
                d["item_id"] = found[t]
        ids, texts = sorted({d["item_id"] for d in docs}), {}
        with self.db.read() as conn:
            for i in range(0, len(ids), 500):
                texts.update(conn.execute(select(_items.c.id, _items.c.text).where(
                    _items.c.dataset_id == p["dataset_id"], _items.c.id.in_(ids[i:i + 500]))).all())
        rows = []
        for d in docs:
            where = f"{path.name}, item {d['item_id']}"
            if not isinstance(texts.get(d["item_id"]), str):
                raise InvalidInput(f"{where}: no text item of the project's dataset has this id; nothing was stored")
            rows.append({"item_id": d["item_id"], "label": _spans.conll_gold(d, texts[d["item_id"]], where)})
        return self.import_gold(p["id"], rows, user=user)

    @staticmethod
    def _kind_formats(p: dict) -> tuple[str, ...]:
        return kinds.of(p).formats

    # ------------------------------------------------------------ Label Studio

    def labelstudio_chunks(self, project: int | str) -> Iterator[bytes]:
        """The project in Label Studio's JSON export shape (every item, its
        final label as the one annotation; boxes and polygons: the labeled
        images, sized from their files), as a stream of byte chunks."""
        from assay.formats import labelstudio as _ls

        p = self.get_project(project)
        return _ls.chunks(self._labelstudio_records(p), kinds.of(p))

    def _labelstudio_records(self, p: dict) -> Iterator[dict]:
        """The records a Label Studio export holds (audited here, before the first)."""
        sized = kinds.of(p).in_pixels
        with self.db.write() as conn:
            _audit.record(conn, "export", target_kind="project", target_id=p["id"], target=p["name"],
                          details={"format": "labelstudio", "labeled_only": sized})
        records = self.export_records(p["id"], labeled_only=sized)
        return _shapes.with_images(self.db, self.blobs, records) if sized else records

    def export_labelstudio(self, project: int | str, path: str | os.PathLike) -> dict:
        """Write :meth:`labelstudio_chunks` to ``path`` (renamed into place when
        complete). Returns ``{"path", "format", "items"}``."""
        from assay.formats import labelstudio as _ls

        p = self.get_project(project)
        path = Path(path)
        if not path.parent.is_dir():
            raise InvalidInput(f"no folder {path.parent} to write {path.name} in")
        counted = _shapes._Counted(self._labelstudio_records(p))
        with _shapes._atomic(path) as out:
            for chunk in _ls.chunks(counted, kinds.of(p)):
                out.write(chunk)
        return {"path": str(path), "format": "labelstudio", "items": counted.n}

    def import_labelstudio(self, project: int | str, path: str | os.PathLike, *,
                           user: int | str | dict | None = None) -> dict:
        """A Label Studio JSON export as gold: per task its ground-truth
        annotation (else the first not cancelled), the item found by
        ``data.assay_item_id``, by ``data.text`` or by the image's file name.
        All or nothing; a bad task is named with its field."""
        p = self.get_project(project)
        path = Path(path)
        if not path.is_file():
            raise InvalidInput(f"{path} is not a file")
        try:
            data = orjson.loads(path.read_bytes())
        except orjson.JSONDecodeError as e:
            raise InvalidInput(f"{path.name} is not JSON: {e}") from None
        return self._import_labelstudio(p, data, path.name, user)

    def _import_labelstudio(self, p: dict, data, name: str, user) -> dict:
        from assay.engine import datasets as _datasets
        from assay.formats import labelstudio as _ls

        rows = _ls.gold_rows(data, p["schema"], name)
        if not rows:
            raise InvalidInput(f"{name} holds no annotated tasks")
        texts = [r["text"] for r in rows if "text" in r]
        images = self._images_by_stem(p, {_shapes.stem_key(r["image"]) for r in rows if "image" in r})
        with self.db.read() as conn:
            found = _datasets.items_by_text(conn, p["dataset_id"], texts) if texts else {}
        out = []
        for r in rows:
            item = r.get("item_id")
            if "text" in r:
                item = found.get(r["text"])
            elif "image" in r:
                item = images.get(_shapes.stem_key(r["image"]), (None,))[0]
            if item is None:
                raise InvalidInput(f"{r['where']}: no item of the project's dataset matches its data; nothing was stored")
            out.append({"item_id": item, "label": r["label"]})
        return self.import_gold(p["id"], out, user=user)

    def import_json_gold(self, project: int | str, path: str | os.PathLike, *,
                         user: int | str | dict | None = None) -> dict:
        """A ``.json`` gold file: a list of tasks is a Label Studio export
        (:meth:`import_labelstudio`), an object a COCO file (:meth:`import_coco`)."""
        path = Path(path)
        if path.is_file() and path.read_bytes()[:4096].lstrip().startswith(b"["):
            return self.import_labelstudio(project, path, user=user)
        return self.import_coco(project, path, user=user)

    # ------------------------------------------------------------ Hugging Face datasets

    def export_hf(self, project: int | str, path: str | os.PathLike) -> dict:
        """The project's final labels as a Hugging Face ``datasets.Dataset``
        saved to the folder ``path`` (``datasets.load_from_disk`` reads it;
        columns per kind in :mod:`assay.formats.hf`; the ``hf`` extra). Built
        beside ``path`` and renamed into place when complete. Returns
        ``{"path", "format", "items"}``."""
        import itertools
        import shutil
        import tempfile

        from assay.formats import hf as _hf

        p = self.get_project(project)
        path, sized = Path(path), kinds.of(p).in_pixels
        _hf._datasets()  # the extra, before anything is written
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise InvalidInput(f"{path} exists and is not an empty folder: the hf export writes a folder")
        if not path.parent.is_dir():
            raise InvalidInput(f"no folder {path.parent} to write {path.name} in")
        with self.db.write() as conn:
            _audit.record(conn, "export", target_kind="project", target_id=p["id"], target=p["name"],
                          details={"format": "hf", "labeled_only": sized, "path": str(path)[:500]})
        records = self.export_records(p["id"], labeled_only=sized)
        if sized:
            records = _shapes.with_images(self.db, self.blobs, records)
        first = next(records, None)
        image = first is not None and first["kind"] == "image"
        records = itertools.chain(() if first is None else (first,), records)
        classes = [c["name"] for c in p["schema"]["classes"]]
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name[:80]}-") as tmp:
            data = _hf.build(records, kinds.of(p), classes, image, tmp)
            data.save_to_disk(os.path.join(tmp, "out"))
            n = len(data)
            del data
            if path.exists():
                path.rmdir()
            shutil.move(os.path.join(tmp, "out"), path)
        return {"path": str(path), "format": "hf", "items": n}
