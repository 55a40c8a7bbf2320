"""Shapes on images: bounding boxes (``boxes``) and polygons (``polygons``).

An answer is every shape the annotator drew on the image, in the image's own
pixels (the origin at the top-left corner, x to the right, y down):

- ``boxes``: ``[[x1, y1, x2, y2, label], ...]`` with ``x1 < x2`` and ``y1 < y2``;
- ``polygons``: ``[{"label": ..., "points": [[x, y], ...]}, ...]``, three
  points or more, the outline closing from the last point back to the first.

``[]`` is an answer too: the annotator looked and found nothing to mark (it is
evidence, unlike a skip). The schema is the usual list of classes; every
shape's label is one of them. Coordinates are finite numbers >= 0, stored
rounded to :data:`DECIMALS` decimals, shapes sorted, exact duplicates dropped.

Two answers are the same (:meth:`Boxes.same`, gold scoring, agreement) when
their shapes pair off one to one with the same class and an IoU of at least
:data:`SAME_IOU`: drawn by hand, two boxes of one object are never equal to
the pixel. The majority (the final label when nobody reviewed the item) keeps
the objects at least half of the answers drew:

- boxes: the vote baseline of :mod:`assay.quality.boxes` (greedy IoU >= 0.5
  clusters per class, one box per annotator, per-edge median), keeping the
  clusters drawn by at least half of the answers (the baseline itself keeps 3
  of 7; a final label wants a majority);
- polygons: the same greedy clusters, built on the polygons' bounding boxes;
  each kept cluster is represented by its medoid, the member polygon with the
  highest summed mask IoU with the others (mask IoU measured on a raster, see
  :func:`polygon_iou`; no geometry package needed).

The confidence is the chance that every keep/drop call on the image is right,
each cluster counting ``max(share, 1 - share)`` of its votes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real
from typing import Any

import numpy as np
import orjson

from assay.errors import InvalidInput
from assay.kinds.base import LabelKind, class_names, region_labels

#: coordinates are stored with this many decimals (0.01 px)
DECIMALS = 2
#: the IoU at which two shapes of one class are the same object
SAME_IOU = 0.5
#: at most this many shapes in one answer, and points in one polygon
MAX_SHAPES = 2000
MAX_POINTS = 2000
#: no coordinate beyond this (pixels)
MAX_COORD = 1_000_000.0
#: the raster side used to measure polygon IoU (cells over the pair's bounding box)
IOU_GRID = 96


def _coord(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, Real):
        raise InvalidInput(f"{what} must be a number, got {v!r}")
    f = float(v)
    if not math.isfinite(f) or f < 0 or f > MAX_COORD:
        raise InvalidInput(f"{what} must be a finite number from 0 to {MAX_COORD:g} (image pixels), got {v!r}")
    return round(f, DECIMALS)


def _label(v: Any, names: list[str], what: str) -> str:
    if not isinstance(v, str):
        raise InvalidInput(f"{what} label must be a class name (a string), one of {names}, got {v!r}")
    if v not in names:
        raise InvalidInput(f"{what} has unknown class {v!r}: the project's classes are {names}")
    return v


def _shape_list(label: Any, what: str) -> list:
    if not isinstance(label, list | tuple):
        raise InvalidInput(f"a {what} answer is a list of {what} ([] for nothing to mark), got {type(label).__name__}")
    if len(label) > MAX_SHAPES:
        raise InvalidInput(f"at most {MAX_SHAPES} {what} in one answer, got {len(label)}")
    return list(label)


def _parse_json_cell(cell: Any, what: str) -> Any:
    """A JSON label written in a text cell (a CSV gold file)."""
    if not isinstance(cell, str):
        return cell
    try:
        return orjson.loads(cell)
    except orjson.JSONDecodeError:
        raise InvalidInput(f"a {what} label in a text cell is JSON, e.g. {_EXAMPLES[what]}; got {cell[:60]!r}") from None


_EXAMPLES = {"boxes": '[[10, 20, 110, 80, "car"]]', "polygons": '[{"label": "car", "points": [[0, 0], [9, 0], [9, 9]]}]'}


def matched_ious(a: list, b: list, iou) -> list[float]:
    """The IoUs of the one-to-one pairs of ``a`` and ``b`` shapes, same class and
    IoU >= SAME_IOU (greedily, best pairs first: exact for the handful of shapes
    an image holds)."""
    pairs = sorted(((iou(x, y), i, j) for i, x in enumerate(a) for j, y in enumerate(b)
                    if _label_of(x) == _label_of(y)), reverse=True)
    used_a, used_b, got = set(), set(), []
    for v, i, j in pairs:
        if v < SAME_IOU:
            break
        if i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            got.append(float(v))
    return got


def _pair_off(a: list, b: list, iou) -> bool:
    """Whether ``a`` and ``b`` pair off one to one (:func:`matched_ious`)."""
    return len(a) == len(b) and len(matched_ious(a, b, iou)) == len(a)


def _f1(a: Any, b: Any, iou) -> float:
    """F1 of the one-to-one matches of shapes ``a`` against ``b``; both empty: 1.0."""
    if not isinstance(a, list) or not isinstance(b, list):
        return 0.0
    if not a and not b:
        return 1.0
    return 2 * len(matched_ious(a, b, iou)) / (len(a) + len(b))


def _label_of(shape: Any) -> Any:
    return shape["label"] if isinstance(shape, dict) else shape[4]


def _clusters(xyxy: list, labels: list, workers: list) -> tuple[np.ndarray, np.ndarray]:
    """The vote baseline's greedy clusters (per class) of one image's shapes, by their
    boxes: the cluster code of each shape, and the votes (distinct answers) per cluster."""
    from assay.quality._boxes_cluster import greedy_clusters  # the boxes' owner clusters shapes

    code = {lab: i for i, lab in enumerate(dict.fromkeys(labels))}
    cluster = greedy_clusters(np.asarray(xyxy, float).reshape(-1, 4), np.array([code[x] for x in labels], np.intp),
                              np.asarray(workers, np.intp), 0.5)
    return cluster, np.bincount(cluster) if len(cluster) else np.zeros(0, np.intp)


def _confidence(votes: np.ndarray, n: int) -> float:
    share = votes / n
    return float(np.prod(np.maximum(share, 1.0 - share))) if len(share) else 1.0


def _ls_region(r: dict, key: str, names: Sequence[str], convert) -> tuple[list, list[str], str | None]:
    """``(shapes, unknown, why)`` of one Label Studio region result of an image:
    ``convert(value, W, H)`` makes its geometry from ``value`` in percent of its
    ``original_width`` x ``original_height``, one shape per known class."""
    v, w, h = r.get("value"), r.get("original_width"), r.get("original_height")
    if not isinstance(v, dict):
        return [], [], f"a {key} region needs a value object"
    if not all(isinstance(d, Real) and not isinstance(d, bool) and d > 0 for d in (w, h)):
        return [], [], f"original_width and original_height (the image's size in pixels) are needed for a {key} region"
    if v.get("rotation") not in (None, 0):
        return [], [], f"a rotated {key} region (value.rotation {str(v.get('rotation'))[:20]})"
    known, unknown, why = region_labels(v, key, names)
    if why or not known:
        return [], unknown, why
    try:
        geometry = convert(v, float(w), float(h))
    except ValueError as e:
        return [], unknown, f"{e} in a {key} region"
    return [geometry(lab) for lab in known], unknown, None


def _num(x: Any, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, Real) or not math.isfinite(x):
        raise ValueError(f"{what} must be a number (percent of the image)")
    return float(x)


def _px(pct: float, side: float) -> float:
    """A percent coordinate as pixels, kept on the image."""
    return min(side, max(0.0, pct * side / 100.0))


def _ls_box(v: dict, w: float, h: float):
    x, y, bw, bh = (_num(v.get(k), f"value.{k}") for k in ("x", "y", "width", "height"))
    box = [_px(x, w), _px(y, h), _px(x + bw, w), _px(y + bh, h)]
    return lambda label: [*box, label]


def _ls_polygon(v: dict, w: float, h: float):
    pts = v.get("points")
    if not isinstance(pts, list) or not all(isinstance(q, list | tuple) and len(q) == 2 for q in pts):
        raise ValueError("value.points must be a list of [x, y] in percent")
    points = [[_px(_num(q[0], f"value.points[{k}] x"), w), _px(_num(q[1], f"value.points[{k}] y"), h)]
              for k, q in enumerate(pts)]
    return lambda label: {"label": label, "points": [list(p) for p in points]}


def _to_pct(v: float, side: float) -> float:
    return round(v / side * 100, 6)


def _ls_sized(size: tuple[int, int] | None) -> tuple[float, float, dict]:
    w, h = size or (1, 1)
    return w, h, {"original_width": w, "original_height": h, "image_rotation": 0}


def _hf_sized(rec: dict, label: Any, objects: list) -> dict:
    return {"width": rec["width"], "height": rec["height"], "objects": None if label is None else objects}


class Boxes(LabelKind):
    """Axis-aligned bounding boxes on an image."""

    name = "boxes"
    widget = "boxes"
    title = "bounding boxes"
    item_kinds = ("image",)
    in_pixels = True
    ls_tag = "RectangleLabels"

    def _ls_region(self, r: dict, names: Sequence[str]) -> tuple[list, list[str], str | None]:
        """Label Studio ``rectanglelabels`` (``x, y, width, height`` in percent of
        ``original_width`` x ``original_height``) as boxes in pixels, kept on the image."""
        return _ls_region(r, "rectanglelabels", names, _ls_box)

    def to_ls_results(self, label: Any, to: str, *, text: str | None = None,
                      size: tuple[int, int] | None = None) -> list[dict]:
        """One ``rectanglelabels`` region per box, in percent of ``size`` (width, height)."""
        w, h, sized = _ls_sized(size)
        return [self._ls_result(to, {"x": _to_pct(x1, w), "y": _to_pct(y1, h), "width": _to_pct(x2 - x1, w),
                                     "height": _to_pct(y2 - y1, h), "rotation": 0, "rectanglelabels": [lab]}, **sized)
                for x1, y1, x2, y2, lab in label]

    def hf_columns(self, ds: Any, cls: Any) -> dict:
        """``width``, ``height`` and ``objects``: ``{category, bbox}``, COCO's ``[x, y, width, height]`` in pixels."""
        return {"width": ds.Value("int32"), "height": ds.Value("int32"),
                "objects": ds.List({"category": cls, "bbox": ds.List(ds.Value("float32"), length=4)})}

    def hf_values(self, label: Any, idx: dict[str, int], rec: dict) -> dict:
        return _hf_sized(rec, label, [{"category": idx[c], "bbox": [x1, y1, x2 - x1, y2 - y1]}
                                      for x1, y1, x2, y2, c in label or ()])

    def validate(self, label: Any, schema: dict) -> list[list]:
        names = class_names(schema)
        out = set()
        for j, b in enumerate(_shape_list(label, "boxes")):
            what = f"box {j}"
            if not isinstance(b, list | tuple) or len(b) != 5:
                raise InvalidInput(f"{what} must be [x1, y1, x2, y2, label], got {str(b)[:80]}")
            x1, y1, x2, y2 = (_coord(b[k], f"{what} {'x1 y1 x2 y2'.split()[k]}") for k in range(4))
            if not (x1 < x2 and y1 < y2):
                raise InvalidInput(f"{what} {[x1, y1, x2, y2]} needs x1 < x2 and y1 < y2 "
                                   "(top-left then bottom-right corner, at least 0.01 px wide and high)")
            out.add((x1, y1, x2, y2, _label(b[4], names, what)))
        return [list(b) for b in sorted(out)]

    def same(self, a: Any, b: Any) -> bool:
        """The same boxes: paired one to one, same class, IoU >= :data:`SAME_IOU`."""
        if not isinstance(a, list) or not isinstance(b, list):
            return False
        return _pair_off(a, b, box_iou)

    def score(self, label: Any, known: Any) -> float:
        """F1 of the boxes paired one to one with the known ones (same class, IoU >= :data:`SAME_IOU`)."""
        return _f1(label, known, box_iou)

    def matches(self, label: list, known: list) -> list[float]:
        """The IoUs of ``label``'s boxes paired with ``known``'s (skills: localisation)."""
        return matched_ious(label, known, box_iou)

    def majority(self, labels: Sequence[Any], classes: Sequence[str] | None = None) -> tuple[Any, float | None]:
        """The boxes at least half of the answers drew (the vote baseline's clusters,
        per-edge medians) and the image's confidence; see the module's docstring."""
        from assay.quality.boxes import fit_boxes

        labels = [lab for lab in labels if isinstance(lab, list)]
        if not labels:
            return None, None
        rows = [{"item": 0, "worker": w, "boxes": lab} for w, lab in enumerate(labels)]
        fit = fit_boxes(rows, method="vote")
        res = fit.results[0]
        kept = [[round(x, DECIMALS) for x in b[:4]] + [b[4]] for b in res["boxes"] if b[5] >= 0.5 - 1e-9]  # share of votes
        return sorted(kept), float(res["confidence"])

    def parse_text(self, cell: str) -> Any:
        """JSON: ``[[x1, y1, x2, y2, "label"], ...]``."""
        return _parse_json_cell(cell, "boxes")

    merges_answers = True

    def item_consensus(self, labels: Sequence[Any], schema: dict) -> tuple[Any, float]:
        """The vote (:meth:`majority`): its confidence is the chance that every
        keep/drop call on the image is right."""
        label, conf = self.majority(labels)
        return ([] if label is None else label), (0.0 if conf is None else conf)

    def fit_consensus(self, rows: Sequence[tuple[int, int, Any]], schema: dict) -> tuple[str, dict]:
        """:func:`assay.quality.boxes.fit_boxes` over every answer (``auto``:
        the EM with each annotator's recall, false rate and localisation from
        ten images with two answers on)."""
        from assay.quality.boxes import fit_boxes

        rows = [{"item": i, "worker": w, "boxes": lab} for i, w, lab in rows if isinstance(lab, list)]
        if not rows:
            return "vote", {}
        fit = fit_boxes(rows, method="auto")
        return fit.method, {r["item"]: (sorted([round(x, DECIMALS) for x in b[:4]] + [b[4]] for b in r["boxes"]),
                                        float(r["confidence"])) for r in fit.results}


def box_iou(a: Sequence, b: Sequence) -> float:
    """IoU of two ``[x1, y1, x2, y2, ...]`` boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _bbox(points: Sequence) -> list[float]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return [min(xs), min(ys), max(xs), max(ys)]


def _inside(points: Sequence, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Even-odd rule: which of the points (x, y) lie inside the polygon."""
    pts = np.asarray(points, float)
    x0, y0 = pts[:, 0], pts[:, 1]
    x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
    inside = np.zeros(x.shape, bool)
    for ax, ay, bx, by in zip(x0.tolist(), y0.tolist(), x1.tolist(), y1.tolist(), strict=True):
        if ay == by:
            continue
        crosses = (ay > y) != (by > y)
        xc = ax + (y - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (x < xc)
    return inside


def polygon_iou(a: Sequence, b: Sequence, grid: int = IOU_GRID) -> float:
    """Mask IoU of two polygons (point lists), measured on a ``grid`` x ``grid``
    raster over their joint bounding box (cell centres; about 1 % of error at 96)."""
    ba, bb = _bbox(a), _bbox(b)
    if box_iou(ba, bb) == 0.0:
        return 0.0
    x_lo, y_lo = min(ba[0], bb[0]), min(ba[1], bb[1])
    x_hi, y_hi = max(ba[2], bb[2]), max(ba[3], bb[3])
    xs = x_lo + (np.arange(grid) + 0.5) * (x_hi - x_lo) / grid
    ys = y_lo + (np.arange(grid) + 0.5) * (y_hi - y_lo) / grid
    x, y = np.meshgrid(xs, ys)
    ma, mb = _inside(a, x, y), _inside(b, x, y)
    union = np.count_nonzero(ma | mb)
    return np.count_nonzero(ma & mb) / union if union else 0.0


def _polygons_iou(x: dict, y: dict) -> float:
    return polygon_iou(x["points"], y["points"])


def _area(points: Sequence) -> float:
    """Shoelace area (absolute)."""
    s = 0.0
    for (ax, ay), (bx, by) in zip(points, [*points[1:], points[0]], strict=True):
        s += ax * by - bx * ay
    return abs(s) / 2


class Polygons(LabelKind):
    """Polygons on an image (outlines of objects)."""

    name = "polygons"
    widget = "polygons"
    title = "polygons"
    item_kinds = ("image",)
    in_pixels = True
    ls_tag = "PolygonLabels"

    def _ls_region(self, r: dict, names: Sequence[str]) -> tuple[list, list[str], str | None]:
        """Label Studio ``polygonlabels`` (``points`` in percent) as polygons in pixels, kept on the image."""
        return _ls_region(r, "polygonlabels", names, _ls_polygon)

    def to_ls_results(self, label: Any, to: str, *, text: str | None = None,
                      size: tuple[int, int] | None = None) -> list[dict]:
        """One closed ``polygonlabels`` region per polygon, in percent of ``size`` (width, height)."""
        w, h, sized = _ls_sized(size)
        return [self._ls_result(to, {"points": [[_to_pct(x, w), _to_pct(y, h)] for x, y in p["points"]],
                                     "closed": True, "polygonlabels": [p["label"]]}, **sized) for p in label]

    def hf_columns(self, ds: Any, cls: Any) -> dict:
        """``width``, ``height`` and ``objects``: ``{category, points}`` (``[x, y]`` pixel pairs)."""
        return {"width": ds.Value("int32"), "height": ds.Value("int32"),
                "objects": ds.List({"category": cls, "points": ds.List(ds.List(ds.Value("float32"), length=2))})}

    def hf_values(self, label: Any, idx: dict[str, int], rec: dict) -> dict:
        return _hf_sized(rec, label, [{"category": idx[p["label"]], "points": p["points"]} for p in label or ()])

    def _polygon(self, p: Any, names: list[str], j: int) -> dict:
        what = f"polygon {j}"
        if not isinstance(p, dict) or set(p) != {"label", "points"}:
            raise InvalidInput(f'{what} must be {{"label": ..., "points": [[x, y], ...]}}, got {str(p)[:80]}')
        label, raw = _label(p["label"], names, what), p["points"]
        if not isinstance(raw, list | tuple) or not 3 <= len(raw) <= MAX_POINTS + 1:
            raise InvalidInput(f"{what} needs 3 to {MAX_POINTS} points [[x, y], ...]")
        points: list[list[float]] = []
        for k, q in enumerate(raw):
            if not isinstance(q, list | tuple) or len(q) != 2:
                raise InvalidInput(f"{what} point {k} must be [x, y], got {str(q)[:40]}")
            xy = [_coord(q[0], f"{what} point {k} x"), _coord(q[1], f"{what} point {k} y")]
            if not points or xy != points[-1]:  # a point clicked twice counts once
                points.append(xy)
        if len(points) > 1 and points[0] == points[-1]:
            points.pop()  # written closed: the outline closes anyway
        if len(points) < 3 or _area(points) == 0.0:
            raise InvalidInput(f"{what} needs 3 distinct points or more that enclose an area")
        if len(points) > MAX_POINTS:
            raise InvalidInput(f"{what} has more than {MAX_POINTS} points")
        return {"label": label, "points": points}

    def validate(self, label: Any, schema: dict) -> list[dict]:
        names = class_names(schema)
        out = [self._polygon(p, names, j) for j, p in enumerate(_shape_list(label, "polygons"))]
        uniq = {orjson.dumps(p): p for p in out}
        return sorted(uniq.values(), key=lambda p: (_bbox(p["points"]), p["label"], p["points"]))

    def same(self, a: Any, b: Any) -> bool:
        """The same polygons: paired one to one, same class, mask IoU >= :data:`SAME_IOU`."""
        if not isinstance(a, list) or not isinstance(b, list):
            return False
        return _pair_off(a, b, _polygons_iou)

    def score(self, label: Any, known: Any) -> float:
        """F1 of the polygons paired one to one with the known ones (same class, mask IoU >= :data:`SAME_IOU`)."""
        return _f1(label, known, _polygons_iou)

    def matches(self, label: list, known: list) -> list[float]:
        """The mask IoUs of ``label``'s polygons paired with ``known``'s (skills: localisation)."""
        return matched_ious(label, known, _polygons_iou)

    def majority(self, labels: Sequence[Any], classes: Sequence[str] | None = None) -> tuple[Any, float | None]:
        """The polygons at least half of the answers drew, each cluster's medoid;
        see the module's docstring."""
        labels = [lab for lab in labels if isinstance(lab, list)]
        if not labels:
            return None, None
        shapes = [(w, p) for w, lab in enumerate(labels) for p in lab]
        cluster, votes = _clusters([_bbox(p["points"]) for _, p in shapes], [p["label"] for _, p in shapes],
                                   [w for w, _ in shapes])
        kept = []
        for c in np.flatnonzero(votes * 2 >= len(labels)).tolist():
            members = [shapes[i][1] for i in np.flatnonzero(cluster == c).tolist()]
            score = [sum(polygon_iou(m["points"], o["points"]) for o in members if o is not m) for m in members]
            kept.append(members[int(np.argmax(score))])
        kept.sort(key=lambda p: (_bbox(p["points"]), p["label"], p["points"]))
        return kept, _confidence(votes, len(labels))

    def parse_text(self, cell: str) -> Any:
        """JSON: ``[{"label": ..., "points": [[x, y], ...]}, ...]``."""
        return _parse_json_cell(cell, "polygons")

    merges_answers = True

    def item_consensus(self, labels: Sequence[Any], schema: dict) -> tuple[Any, float]:
        """The vote (:meth:`majority`); the re-fit merges each image alike (no skill model for polygons yet)."""
        label, conf = self.majority(labels)
        return ([] if label is None else label), (0.0 if conf is None else conf)
