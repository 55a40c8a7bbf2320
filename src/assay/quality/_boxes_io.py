"""Reading and checking crowd bounding boxes for :mod:`assay.quality.boxes`.

One answer is ``{"item", "worker", "boxes": [[x1, y1, x2, y2, label], ...]}``
in pixels (the label may be left out: ``[x1, y1, x2, y2]``); an empty list is
an answer too ("nothing to mark"). Everything is coded into flat arrays once,
so the rest works on numpy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from numbers import Real

import numpy as np

from assay.errors import InvalidInput


class BoxInputError(InvalidInput, ValueError):
    """A row of box answers that cannot be used (a ValueError and assay's InvalidInput)."""


@dataclass
class BoxAnswers:
    """Crowd boxes coded into arrays.

    ``items``/``workers``/``labels``: the ids in order of first appearance;
    answers (one per item and worker): ``ans_item``, ``ans_worker``; boxes:
    ``xyxy`` (N, 4) float, ``box_answer`` (N,) the answer it belongs to,
    ``box_label`` (N,) the label code. ``sizes``: item code -> (width, height)
    or None when not given.
    ``dropped``: boxes of zero width or height, left out.
    """

    items: list
    workers: list
    labels: list
    ans_item: np.ndarray
    ans_worker: np.ndarray
    xyxy: np.ndarray
    box_answer: np.ndarray
    box_label: np.ndarray
    sizes: np.ndarray | None
    dropped: int = 0  # boxes of zero width or height (a click without a drag), left out

    @property
    def box_item(self) -> np.ndarray:
        return self.ans_item[self.box_answer]

    @property
    def box_worker(self) -> np.ndarray:
        return self.ans_worker[self.box_answer]


def _bad(n: int, msg: str) -> BoxInputError:
    return BoxInputError(f"answer row {n}: {msg}")


def _number(v, n: int, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, Real):
        raise _bad(n, f"{what} must be a number, got {v!r}")
    f = float(v)
    if not math.isfinite(f):
        raise _bad(n, f"{what} must be finite, got {v!r}")
    return f


def _check_box(b, n: int, j: int) -> tuple[float, float, float, float, object]:
    if not isinstance(b, list | tuple) or len(b) not in (4, 5):
        raise _bad(n, f"box {j} must be [x1, y1, x2, y2, label] (or without the label), got {b!r}")
    x1, y1, x2, y2 = (_number(b[k], n, f"box {j} coordinate {k}") for k in range(4))
    if x2 < x1 or y2 < y1:
        raise _bad(n, f"box {j} {list(b[:4])} needs x2 >= x1 and y2 >= y1 (corners top-left, bottom-right)")
    label = b[4] if len(b) == 5 else None
    if not (label is None or isinstance(label, str | int)) or isinstance(label, bool):
        raise _bad(n, f"box {j} label must be a string or an integer, got {label!r}")
    return x1, y1, x2, y2, label


def _sizes(items: Mapping | None, item_ids: list) -> np.ndarray | None:
    if items is None:
        return None
    if not isinstance(items, Mapping):
        raise BoxInputError("items must be a dict: item id -> {'width', 'height'}")
    out = np.empty((len(item_ids), 2))
    for i, it in enumerate(item_ids):
        meta = items.get(it)
        if meta is None:
            raise BoxInputError(f"item {it!r} is answered but missing from items")
        try:
            w, h = float(meta["width"]), float(meta["height"])
        except (KeyError, TypeError, ValueError):
            raise BoxInputError(f"items[{it!r}] needs numeric 'width' and 'height', got {meta!r}") from None
        if not (w > 0 and h > 0 and math.isfinite(w) and math.isfinite(h)):
            raise BoxInputError(f"items[{it!r}] width and height must be positive, got {meta!r}")
        out[i] = w, h
    return out


_NUM = (float, int)


def _check_row(row, n: int):
    if not isinstance(row, Mapping):
        raise _bad(n, f"must be a dict with 'item', 'worker', 'boxes', got {type(row).__name__}")
    missing = [k for k in ("item", "worker", "boxes") if k not in row]
    if missing:
        raise _bad(n, f"missing {', '.join(repr(k) for k in missing)}")
    item, worker, boxes = row["item"], row["worker"], row["boxes"]
    for what, v in (("item", item), ("worker", worker)):
        if isinstance(v, bool) or not isinstance(v, str | int):
            raise _bad(n, f"{what} must be a string or an integer, got {v!r}")
    if not isinstance(boxes, list | tuple):
        raise _bad(n, f"'boxes' must be a list of boxes, got {type(boxes).__name__}")
    return item, worker, boxes


def read_answers(rows: Iterable[Mapping], items: Mapping | None = None) -> BoxAnswers:
    """Check and code answer rows; raise :class:`BoxInputError` (a ValueError) on the first bad one."""
    item_code: dict = {}
    worker_code: dict = {}
    label_code: dict = {}
    seen: set = set()
    ans_item, ans_worker, box_answer, box_label, coords = [], [], [], [], []
    for n, row in enumerate(rows):
        item, worker, boxes = _check_row(row, n)
        i = item_code.setdefault(item, len(item_code))
        w = worker_code.setdefault(worker, len(worker_code))
        if (i, w) in seen:
            raise _bad(n, f"worker {worker!r} answered item {item!r} twice; keep one answer per worker and item")
        seen.add((i, w))
        a = len(ans_item)
        ans_item.append(i)
        ans_worker.append(w)
        for j, b in enumerate(boxes):
            # fast path: plain floats/ints in order, a string label (finiteness is checked below, at once)
            if (type(b) is list and len(b) == 5 and type(b[0]) in _NUM and type(b[1]) in _NUM
                    and type(b[2]) in _NUM and type(b[3]) in _NUM and type(b[4]) is str
                    and b[0] <= b[2] and b[1] <= b[3]):
                coords.append(b[:4])
                label = b[4]
            else:
                x1, y1, x2, y2, label = _check_box(b, n, j)
                coords.append((x1, y1, x2, y2))
            box_answer.append(a)
            box_label.append(label_code.setdefault(label, len(label_code)))
    xyxy = np.asarray(coords, float).reshape(-1, 4)
    box_answer_a = np.asarray(box_answer, np.intp)
    bad = ~np.isfinite(xyxy).all(axis=1)
    if bad.any():
        raise BoxInputError(f"answer row {int(box_answer_a[np.argmax(bad)])}: box coordinates must be finite, "
                            f"got {xyxy[np.argmax(bad)].tolist()}")
    # a click without a drag (zero width or height) is no box; the answer still counts
    keep = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])
    item_ids = list(item_code)
    return BoxAnswers(
        items=item_ids, workers=list(worker_code), labels=list(label_code),
        ans_item=np.asarray(ans_item, np.intp), ans_worker=np.asarray(ans_worker, np.intp),
        xyxy=xyxy[keep], box_answer=box_answer_a[keep], box_label=np.asarray(box_label, np.intp)[keep],
        sizes=_sizes(items, item_ids), dropped=int((~keep).sum()),
    )
