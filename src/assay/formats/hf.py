"""A project's final labels as a Hugging Face ``datasets.Dataset`` (the
``hf`` extra: ``pip install 'assay[hf]'``; ``import assay`` does not import
``datasets``).

One row per item, written to an Arrow file a batch at a time (a large
project is never a list in memory), then saved with ``save_to_disk``:

- every kind: ``item_id``, ``text`` (text items) or ``image`` (the imported
  file's path), ``label_method`` and ``confidence``;
- ``single``: ``label``, a ``ClassLabel`` (-1: no final label yet);
- ``multi``: ``labels``, a list of ``ClassLabel`` (``None``: no final label);
- ``spans``: ``spans``, a list of ``{start, end, label}`` (``None``: no final label);
- ``boxes`` and ``polygons`` (labeled images only, with ``width`` and
  ``height``): ``objects``, a list of ``{category, bbox}`` (COCO's
  ``[x, y, width, height]`` in pixels) or ``{category, points}`` (``[x, y]`` pairs).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from assay.errors import InvalidInput


def _datasets():
    try:
        import datasets
    except ImportError as e:
        raise InvalidInput(f"the Hugging Face datasets export needs the hf extra: pip install 'assay[hf]' "
                           f"(missing: {e.name})") from None
    return datasets


def features(kind: str, classes: list[str], image: bool):
    ds = _datasets()
    cls = ds.ClassLabel(names=classes)
    cols: dict[str, Any] = {"item_id": ds.Value("int64"), ("image" if image else "text"): ds.Value("string")}
    if kind == "single":
        cols["label"] = cls
    elif kind == "multi":
        cols["labels"] = ds.List(cls)
    elif kind == "spans":
        cols["spans"] = ds.List({"start": ds.Value("int32"), "end": ds.Value("int32"), "label": cls})
    else:
        cols.update(width=ds.Value("int32"), height=ds.Value("int32"))
        shape = ({"bbox": ds.List(ds.Value("float32"), length=4)} if kind == "boxes"
                 else {"points": ds.List(ds.List(ds.Value("float32"), length=2))})
        cols["objects"] = ds.List({"category": cls, **shape})
    cols.update(label_method=ds.Value("string"), confidence=ds.Value("float64"))
    return ds.Features(cols)


def row(rec: dict, kind: str, classes: list[str]) -> dict:
    """One export record (with ``file_name``/``width``/``height`` for shapes) as a dataset row."""
    idx = {c: i for i, c in enumerate(classes)}
    lab = rec["label"]
    out: dict[str, Any] = {"item_id": rec["item_id"]}
    if rec["kind"] == "image":
        out["image"] = rec.get("file_name") or (rec.get("meta") or {}).get("file") or rec.get("source_uri")
    else:
        out["text"] = rec["text"]
    if kind == "single":
        out["label"] = -1 if lab is None else idx[lab]
    elif kind == "multi":
        out["labels"] = None if lab is None else [idx[c] for c in lab]
    elif kind == "spans":
        out["spans"] = None if lab is None else [{"start": s, "end": e, "label": idx[c]} for s, e, c in lab]
    elif kind == "boxes":
        out.update(width=rec["width"], height=rec["height"], objects=[
            {"category": idx[c], "bbox": [x1, y1, x2 - x1, y2 - y1]} for x1, y1, x2, y2, c in lab])
    else:
        out.update(width=rec["width"], height=rec["height"], objects=[
            {"category": idx[s["label"]], "points": s["points"]} for s in lab])
    out.update(label_method=rec["label_method"], confidence=rec["confidence"])
    return out


def build(records: Iterable[dict], kind: str, classes: list[str], image: bool, folder: str, batch: int = 2000):
    """The records as a ``datasets.Dataset`` backed by an Arrow file in
    ``folder``, written a batch of rows at a time (never a whole list)."""
    import os

    import pyarrow as pa

    ds = _datasets()
    feats = features(kind, classes, image)
    schema = feats.arrow_schema
    path = os.path.join(folder, "data.arrow")
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        buf: list[dict] = []
        for rec in records:
            buf.append(feats.encode_example(row(rec, kind, classes)))
            if len(buf) >= batch:
                writer.write_table(pa.Table.from_pylist(buf, schema=schema))
                buf = []
        if buf:
            writer.write_table(pa.Table.from_pylist(buf, schema=schema))
    return ds.Dataset.from_file(path, info=ds.DatasetInfo(features=feats))
