"""Label Studio's JSON export, both ways, for every label kind.

A Label Studio export is a JSON list of tasks::

    [{"id": 7, "data": {"text": "…", "assay_item_id": 7},
      "annotations": [{"id": 1, "ground_truth": false, "was_cancelled": false,
                       "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                   "value": {"choices": ["pos"]}}]}]}]

``data`` holds ``text`` (text items) or ``image`` (the imported file's
path); each result is ``choices`` (single and multi-label), ``labels``
(spans: ``start``, ``end``, ``text``), ``rectanglelabels`` (boxes: ``x``,
``y``, ``width``, ``height`` in percent of the image, with
``original_width``/``original_height`` in pixels) or ``polygonlabels``
(``points`` in percent). The export writes one annotation per item, its
final label (``ground_truth`` when it is gold), and none for an item
without one. The project's label kind writes and reads the results
(:meth:`~assay.kinds.base.LabelKind.to_ls_results`,
:meth:`~assay.kinds.base.LabelKind.from_ls_annotation`).

Import (:func:`gold_rows`) takes such a list: per task, the ground-truth
annotation, else the first one not cancelled; the item is named by
``data.assay_item_id``, else found by ``data.text`` or by the image's file
name. Everything here is pure: no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from assay import kinds
from assay.errors import InvalidInput
from assay.kinds import LabelKind


def task(rec: dict, kind: LabelKind) -> dict:
    """One export record (with ``file_name``, ``width`` and ``height`` for
    boxes and polygons) as a Label Studio task; the kind writes the results."""
    image = rec["kind"] == "image"
    data = ({"image": rec.get("file_name") or (rec.get("meta") or {}).get("file") or rec.get("source_uri")}
            if image else {"text": rec["text"]})
    out: dict[str, Any] = {"id": rec["item_id"], "data": {**data, "assay_item_id": rec["item_id"]},
                           "annotations": [], "predictions": []}
    if rec["label"] is not None:
        size = (rec["width"], rec["height"]) if "width" in rec else None
        out["annotations"].append({
            "id": rec["item_id"], "ground_truth": rec.get("label_method") == "gold", "was_cancelled": False,
            "result": kind.to_ls_results(rec["label"], "image" if image else "text", text=rec.get("text"), size=size),
            "meta": {"label_method": rec.get("label_method"), "confidence": rec.get("confidence")}})
    return out


def chunks(records: Iterable[dict], kind: LabelKind, per_chunk: int = 500) -> Iterator[bytes]:
    """The tasks as one JSON list, in byte chunks (constant memory)."""
    buf, n = [b"["], 0
    for rec in records:
        buf.append((b",\n" if n else b"") + orjson.dumps(task(rec, kind)))
        n += 1
        if n % per_chunk == 0:
            yield b"".join(buf)
            buf = []
    yield b"".join(buf) + b"]\n"


# ---------------------------------------------------------------- import


def _annotation(t: dict, where: str) -> dict | None:
    anns = t.get("annotations", [])
    if not isinstance(anns, list) or not all(isinstance(a, dict) for a in anns):
        raise InvalidInput(f"{where}: 'annotations' must be a list of objects")
    live = [a for a in anns if not a.get("was_cancelled")]
    return next((a for a in live if a.get("ground_truth")), live[0] if live else None)


def label_of(ann: dict, kind: LabelKind, schema: dict, where: str) -> Any:
    """An annotation's ``result`` as the canonical assay label (the kind reads
    it strictly: :meth:`~assay.kinds.base.LabelKind.from_ls_annotation`);
    ``None`` for a single-label annotation with no choice."""
    res = ann.get("result")
    if not isinstance(res, list) or not all(isinstance(r, dict) and isinstance(r.get("value"), dict) for r in res):
        raise InvalidInput(f"{where}: 'result' must be a list of objects with a 'value'")
    return kind.from_ls_annotation(res, schema, where)


def gold_rows(data: Any, schema: dict, name: str) -> list[dict]:
    """``{"item_id" | "text" | "image", "label"}`` per task with an
    annotation, for a project of ``schema`` (its ``kind`` reads the labels);
    InvalidInput naming the task and field of the first bad one."""
    kind = kinds.get(schema["kind"])
    if kind.ls_type is None:
        raise InvalidInput(f"Label Studio import does not know {kind.name!r} projects")
    if not isinstance(data, list):
        raise InvalidInput(f"{name}: a Label Studio export is a JSON list of tasks")
    rows = []
    for n, t in enumerate(data):
        where = f"{name}, task {t.get('id', n) if isinstance(t, dict) else n}"
        if not isinstance(t, dict) or not isinstance(t.get("data"), dict):
            raise InvalidInput(f"{where}: a task needs a 'data' object")
        ann = _annotation(t, where)
        if ann is None:
            continue
        label = label_of(ann, kind, schema, where)
        if label is None:
            continue
        d = t["data"]
        if isinstance(d.get("assay_item_id"), int):
            rows.append({"item_id": d["assay_item_id"], "label": label, "where": where})
        elif isinstance(d.get("text"), str):
            rows.append({"text": d["text"], "label": label, "where": where})
        elif isinstance(d.get("image"), str):
            rows.append({"image": d["image"], "label": label, "where": where})
        else:
            raise InvalidInput(f"{where}: data needs 'assay_item_id', 'text' or 'image' to find its item")
    return rows


def data_rows(data: Any, text_column: str, name: str) -> list[dict]:
    """The texts of a Label Studio export as rows to import as items: each
    task's ``data[text_column]``, its other scalar ``data`` fields as
    metadata, and ``ls_task_id``. Image tasks are refused: their files are
    on the Label Studio server (import the images as a zip, then this file
    as gold: :func:`gold_rows` finds them by file name)."""
    if not isinstance(data, list):
        raise InvalidInput(f"{name} is not a Label Studio export: expected a JSON list of tasks")
    rows = []
    for n, t in enumerate(data, 1):
        d = t.get("data") if isinstance(t, dict) else None
        if not isinstance(d, dict):
            raise InvalidInput(f"{name}, task {n}: expected an object with 'data'")
        if not isinstance(d.get(text_column), str):
            if isinstance(d.get("image"), str):
                raise InvalidInput(f"{name}, task {n} is an image task: import the images (a .zip) first, "
                                   "then upload this file as gold on the project's page")
            shown = ", ".join(repr(k) for k in list(d)[:10])
            raise InvalidInput(f"{name}, task {n}: data has no text field {text_column!r} (it has {shown}); "
                               "pass the right one as the text column")
        meta = {k: v for k, v in d.items() if k != text_column and (v is None or isinstance(v, (str, int, float, bool)))}
        if isinstance(t.get("id"), int):
            meta["ls_task_id"] = t["id"]
        rows.append({text_column: d[text_column], **meta})
    if not rows:
        raise InvalidInput(f"{name} holds no tasks")
    return rows

