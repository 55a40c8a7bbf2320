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
without one.

Import (:func:`gold_rows`) takes such a list: per task, the ground-truth
annotation, else the first one not cancelled; the item is named by
``data.assay_item_id``, else found by ``data.text`` or by the image's file
name. Everything here is pure: no database.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from assay.errors import InvalidInput

TYPES = {"single": "choices", "multi": "choices", "spans": "labels",
         "boxes": "rectanglelabels", "polygons": "polygonlabels"}


def _pct(v: float, size: int) -> float:
    return round(v / size * 100, 6)


def results(label: Any, kind: str, to: str, text: str | None = None, size: tuple[int, int] | None = None) -> list:
    """A final label as Label Studio results."""
    base = {"from_name": "label", "to_name": to, "type": TYPES[kind]}
    if kind in ("single", "multi"):
        chosen = [label] if kind == "single" else list(label)
        return [{**base, "value": {"choices": chosen}}] if chosen else []
    if kind == "spans":
        return [{**base, "value": {"start": s, "end": e, "text": (text or "")[s:e], "labels": [lab]}}
                for s, e, lab in label]
    w, h = size or (1, 1)
    sized = {**base, "original_width": w, "original_height": h, "image_rotation": 0}
    if kind == "boxes":
        return [{**sized, "value": {"x": _pct(x1, w), "y": _pct(y1, h), "width": _pct(x2 - x1, w),
                                    "height": _pct(y2 - y1, h), "rotation": 0, "rectanglelabels": [lab]}}
                for x1, y1, x2, y2, lab in label]
    return [{**sized, "value": {"points": [[_pct(x, w), _pct(y, h)] for x, y in s["points"]],
                                "closed": True, "polygonlabels": [s["label"]]}} for s in label]


def task(rec: dict, kind: str) -> dict:
    """One export record (with ``file_name``, ``width`` and ``height`` for
    boxes and polygons) as a Label Studio task."""
    image = rec["kind"] == "image"
    data = ({"image": rec.get("file_name") or (rec.get("meta") or {}).get("file") or rec.get("source_uri")}
            if image else {"text": rec["text"]})
    out: dict[str, Any] = {"id": rec["item_id"], "data": {**data, "assay_item_id": rec["item_id"]},
                           "annotations": [], "predictions": []}
    if rec["label"] is not None:
        size = (rec["width"], rec["height"]) if "width" in rec else None
        out["annotations"].append({
            "id": rec["item_id"], "ground_truth": rec.get("label_method") == "gold", "was_cancelled": False,
            "result": results(rec["label"], kind, "image" if image else "text", rec.get("text"), size),
            "meta": {"label_method": rec.get("label_method"), "confidence": rec.get("confidence")}})
    return out


def chunks(records: Iterable[dict], kind: str, per_chunk: int = 500) -> Iterator[bytes]:
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


def _num(v: dict, key: str, where: str) -> float:
    x = v.get(key)
    if not isinstance(x, int | float) or isinstance(x, bool):
        raise InvalidInput(f"{where}: value.{key} must be a number")
    return x


def _one(v: dict, key: str, where: str) -> str:
    got = v.get(key)
    if not isinstance(got, list) or len(got) != 1 or not isinstance(got[0], str):
        raise InvalidInput(f"{where}: value.{key} must be a list of one class name")
    return got[0]


def _size(r: dict, where: str) -> tuple[float, float]:
    w, h = r.get("original_width"), r.get("original_height")
    if not all(isinstance(x, int | float) and x > 0 for x in (w, h)):
        raise InvalidInput(f"{where}: original_width and original_height (the image's size in pixels) are needed")
    return w, h  # type: ignore[return-value]


def _shape(r: dict, kind: str, where: str):
    v = r["value"]
    if kind == "spans":
        return [_num(v, "start", where), _num(v, "end", where), _one(v, "labels", where)]
    w, h = _size(r, where)
    if kind == "boxes":
        x, y = _num(v, "x", where) * w / 100, _num(v, "y", where) * h / 100
        x2, y2 = x + _num(v, "width", where) * w / 100, y + _num(v, "height", where) * h / 100
        return [round(x, 2), round(y, 2), round(x2, 2), round(y2, 2), _one(v, "rectanglelabels", where)]
    pts = v.get("points")
    if not isinstance(pts, list) or not all(isinstance(p, list) and len(p) == 2 for p in pts):
        raise InvalidInput(f"{where}: value.points must be a list of [x, y] in percent")
    return {"label": _one(v, "polygonlabels", where),
            "points": [[round(_num({"x": p[0]}, "x", where) * w / 100, 2),
                        round(_num({"y": p[1]}, "y", where) * h / 100, 2)] for p in pts]}


def label_of(ann: dict, kind: str, where: str) -> Any:
    """An annotation's ``result`` as an assay label of ``kind`` (checked
    later by the kind); ``None`` for a single-label annotation with no choice."""
    res = ann.get("result")
    if not isinstance(res, list) or not all(isinstance(r, dict) and isinstance(r.get("value"), dict) for r in res):
        raise InvalidInput(f"{where}: 'result' must be a list of objects with a 'value'")
    want = TYPES[kind]
    mine = [r for r in res if r.get("type") == want]
    others = {str(r.get("type"))[:30] for r in res} - {want}
    if others and not mine:
        raise InvalidInput(f"{where}: {kind} projects take {want!r} results, not {', '.join(sorted(others))}")
    if kind in ("single", "multi"):
        chosen = [c for r in mine for c in (r["value"].get("choices") or [])]
        if not all(isinstance(c, str) for c in chosen):
            raise InvalidInput(f"{where}: value.choices must be class names")
        if kind == "single":
            if len(chosen) > 1:
                raise InvalidInput(f"{where}: a single-label project takes one choice, got {len(chosen)}")
            return chosen[0] if chosen else None
        return chosen
    return [_shape(r, kind, f"{where}, result {n}") for n, r in enumerate(mine)]


def gold_rows(data: Any, kind: str, name: str) -> list[dict]:
    """``{"item_id" | "text" | "image", "label"}`` per task with an
    annotation; InvalidInput naming the task and field of the first bad one."""
    if kind not in TYPES:
        raise InvalidInput(f"Label Studio import does not know {kind!r} projects")
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
        label = label_of(ann, kind, where)
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
