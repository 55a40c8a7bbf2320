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

The kind's columns come from the kind (``hf_columns``, ``hf_values``); a kind
without its own has ``label`` as text, as CSV writes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from assay.errors import InvalidInput
from assay.kinds import LabelKind


def _datasets():
    try:
        import datasets
    except ImportError as e:
        raise InvalidInput(f"the Hugging Face datasets export needs the hf extra: pip install 'assay[hf]' "
                           f"(missing: {e.name})") from None
    return datasets


def features(kind: LabelKind, classes: list[str], image: bool):
    """The dataset's features: the generic columns around the kind's own
    (:meth:`~assay.kinds.base.LabelKind.hf_columns`)."""
    ds = _datasets()
    cols: dict[str, Any] = {"item_id": ds.Value("int64"), ("image" if image else "text"): ds.Value("string")}
    cols.update(kind.hf_columns(ds, ds.ClassLabel(names=classes)))
    cols.update(label_method=ds.Value("string"), confidence=ds.Value("float64"))
    return ds.Features(cols)


def row(rec: dict, kind: LabelKind, idx: dict[str, int]) -> dict:
    """One export record (with ``file_name``/``width``/``height`` for shapes)
    as a dataset row (``idx``: class name -> index)."""
    out: dict[str, Any] = {"item_id": rec["item_id"]}
    if rec["kind"] == "image":
        out["image"] = rec.get("file_name") or (rec.get("meta") or {}).get("file") or rec.get("source_uri")
    else:
        out["text"] = rec["text"]
    out.update(kind.hf_values(rec["label"], idx, rec))
    out.update(label_method=rec["label_method"], confidence=rec["confidence"])
    return out


def build(records: Iterable[dict], kind: LabelKind, classes: list[str], image: bool, folder: str, batch: int = 2000):
    """The records as a ``datasets.Dataset`` backed by an Arrow file in
    ``folder``, written a batch of rows at a time (never a whole list)."""
    import os

    import pyarrow as pa

    ds = _datasets()
    feats = features(kind, classes, image)
    idx = {c: i for i, c in enumerate(classes)}
    schema = feats.arrow_schema
    path = os.path.join(folder, "data.arrow")
    with pa.OSFile(path, "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        buf: list[dict] = []
        for rec in records:
            buf.append(feats.encode_example(row(rec, kind, idx)))
            if len(buf) >= batch:
                writer.write_table(pa.Table.from_pylist(buf, schema=schema))
                buf = []
        if buf:
            writer.write_table(pa.Table.from_pylist(buf, schema=schema))
    return ds.Dataset.from_file(path, info=ds.DatasetInfo(features=feats))
