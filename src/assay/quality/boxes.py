"""Consensus for bounding boxes: several annotators' boxes on each image -> one
set of boxes, a confidence for each and for the image, and each annotator's
precision, recall and localisation error.

    from assay.quality.boxes import aggregate_boxes, score_boxes
    out = aggregate_boxes(rows)              # rows: {"item", "worker", "boxes": [[x1, y1, x2, y2, label], ...]}
    out[0] == {"item": ..., "boxes": [[x1, y1, x2, y2, label, confidence], ...], "confidence": ...}
    score_boxes(out, truth)                  # precision / recall / F1 at IoU >= 0.5, mean IoU of matches

Methods (``method=``):

* ``"vote"``: the usual baseline. Per image and class, boxes are grouped
  greedily (a box joins the cluster whose current per-edge median it overlaps
  most, IoU >= 0.5, one box per annotator); a cluster is kept when at least
  half the image's annotators drew it (``n // 2``: 3 of 7); its box is the per-edge
  median. A box's confidence is its share of votes.
* ``"em"``: the skill model. Boxes are matched to cluster centres by an
  optimal one-to-one assignment per annotator (IoU >= 1/3, two passes); EM
  over annotators' recall and false-box rate gives each cluster's posterior
  of being a real object (an empty answer is evidence that there is none);
  clusters with posterior >= 0.5 are kept, their edges the weighted median of
  the boxes, each annotator weighted by 1 / their localisation error².
* ``"auto"`` (default): ``"em"``, or ``"vote"`` when fewer than 10 images
  have two annotators or more (too little to learn the crowd's rates from:
  on a single image EM can rank a lone box above two that agree).

See docs/boxes.md for the model, why the thresholds are what they are, and
the measured results.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from assay.quality._boxes_cluster import assigned_clusters, greedy_clusters, iou_matrix
from assay.quality._boxes_em import existence_em, fuse
from assay.quality._boxes_io import BoxAnswers, BoxInputError, read_answers

METHODS = ("auto", "vote", "em")
#: the vote baseline's cluster threshold (the usual detection criterion)
VOTE_IOU = 0.5
#: the skill model's, looser on purpose: two boxes a quarter width off either way overlap the object
#: at IoU 0.6 each but each other at 1/3 (docs/boxes.md)
EM_IOU = 1.0 / 3.0
#: ``"auto"`` learns skills (``"em"``) from this many images with two or more annotators, or votes
AUTO_MIN_IMAGES = 10

__all__ = ["BoxConsensus", "BoxInputError", "aggregate_boxes", "fit_boxes", "score_boxes"]


@dataclass
class BoxConsensus:
    """What :func:`fit_boxes` found. ``results``: one dict per answered item (see
    :func:`aggregate_boxes`). Per annotator (``workers`` order): ``precision``
    (expected share of their boxes that mark real objects), ``recall`` (chance
    they box a real object on an image they answer), ``false_rate`` (chance
    they put a box in a given false cluster), ``loc_error`` (RMS distance of
    their edges from the consensus, in box widths/heights). ``prior``: share of
    clusters that are real objects. ``"vote"`` has no false rate or localisation
    error (NaN); its precision and recall count kept clusters as the truth.
    ``extra``: ``clusters``, ``dropped_boxes`` (zero width or height), and for
    ``"em"`` ``join`` (chance an annotator's box falls in another's false
    cluster) and ``hard_recall`` (W,) (recall on hard-to-see objects)."""

    method: str
    results: list[dict]
    workers: list
    precision: np.ndarray
    recall: np.ndarray
    false_rate: np.ndarray
    loc_error: np.ndarray
    n_boxes: np.ndarray
    prior: float = float("nan")
    extra: dict = field(default_factory=dict)

    def skills(self) -> dict:
        """worker id -> {"boxes", "precision", "recall", "false_rate", "loc_error"}."""
        return {w: {"boxes": int(self.n_boxes[k]), "precision": float(self.precision[k]),
                    "recall": float(self.recall[k]), "false_rate": float(self.false_rate[k]),
                    "loc_error": float(self.loc_error[k])}
                for k, w in enumerate(self.workers)}


def _groups(ans: BoxAnswers) -> np.ndarray:
    """One code per (item, label) for every box."""
    return ans.box_item * max(len(ans.labels), 1) + ans.box_label


def _cluster_table(ans: BoxAnswers, cluster: np.ndarray):
    k = int(cluster.max(initial=-1)) + 1
    c_item = np.zeros(k, np.intp)
    c_label = np.zeros(k, np.intp)
    c_item[cluster] = ans.box_item
    c_label[cluster] = ans.box_label
    return k, c_item, c_label


def _image_confidence(q: np.ndarray, c_item: np.ndarray, n_items: int, missed: np.ndarray) -> np.ndarray:
    """Chance every keep/drop call on the image is right (clusters independent), times the
    chance that no real object escaped every annotator of the image (``missed``: expected
    number of such objects)."""
    right = np.log(np.clip(np.maximum(q, 1.0 - q), 1e-300, 1.0))
    return np.exp(np.bincount(c_item, weights=right, minlength=n_items) - missed)


def _vote(ans: BoxAnswers) -> BoxConsensus:
    n_items, n_workers = len(ans.items), len(ans.workers)
    bw = ans.box_worker
    cluster = greedy_clusters(ans.xyxy, _groups(ans), bw, VOTE_IOU)
    k, c_item, c_label = _cluster_table(ans, cluster)
    votes = np.bincount(cluster, minlength=k)
    n_ans = np.bincount(ans.ans_item, minlength=n_items)[c_item]
    share = votes / np.maximum(n_ans, 1)
    keep = votes >= np.maximum(n_ans // 2, 1)
    fused = np.zeros((k, 4))
    for d in range(4):  # median: the middle of each cluster's sorted values
        order = np.lexsort((ans.xyxy[:, d], cluster))
        start = np.r_[0, np.cumsum(votes)[:-1]]
        lo = ans.xyxy[order, d][start + (votes - 1) // 2]
        hi = ans.xyxy[order, d][start + votes // 2]
        fused[:, d] = (lo + hi) / 2
    conf = _image_confidence(share, c_item, n_items, np.zeros(n_items))
    n_boxes = np.bincount(bw, minlength=n_workers)
    in_kept = np.bincount(bw, weights=keep[cluster], minlength=n_workers)
    kept_in = np.bincount(c_item, weights=keep, minlength=n_items)
    seen = np.bincount(ans.ans_worker, weights=kept_in[ans.ans_item], minlength=n_workers)
    precision = in_kept / np.maximum(n_boxes, 1)
    recall = in_kept / np.maximum(seen, 1)
    results = _results(ans, fused, share, keep, c_item, c_label, conf)
    return BoxConsensus("vote", results, ans.workers, precision, recall, np.full(n_workers, np.nan),
                        np.full(n_workers, np.nan), n_boxes, extra={"clusters": k, "dropped_boxes": ans.dropped})


def _em(ans: BoxAnswers) -> BoxConsensus:
    n_items, n_workers = len(ans.items), len(ans.workers)
    bw = ans.box_worker
    cluster = assigned_clusters(ans.xyxy, _groups(ans), bw, EM_IOU)
    k, c_item, c_label = _cluster_table(ans, cluster)
    q, recall, false_rate, prior, join, hard = existence_em(cluster, c_item, bw, ans.ans_item, ans.ans_worker, n_workers)
    fused, loc_error = fuse(ans.xyxy, cluster, bw, k, n_workers, q)
    q = np.clip(q, 0.0, 1.0)
    keep = q >= 0.5
    # expected real objects per image that every one of its annotators missed
    real_per_image = q.sum() / max(n_items, 1)
    missed = real_per_image * np.exp(np.bincount(ans.ans_item, weights=np.log1p(-recall)[ans.ans_worker],
                                                 minlength=n_items))
    conf = _image_confidence(q, c_item, n_items, missed)
    n_boxes = np.bincount(bw, minlength=n_workers)
    precision = (np.bincount(bw, weights=q[cluster], minlength=n_workers) + 2 * prior) / (n_boxes + 2)
    results = _results(ans, fused, q, keep, c_item, c_label, conf)
    extra = {"join": join, "hard_recall": hard, "clusters": k, "dropped_boxes": ans.dropped}
    return BoxConsensus("em", results, ans.workers, precision, recall, false_rate, loc_error, n_boxes, prior, extra)


def _results(ans: BoxAnswers, fused, box_conf, keep, c_item, c_label, image_conf) -> list[dict]:
    if ans.sizes is not None and len(fused):
        wh = ans.sizes[c_item]
        fused = np.column_stack([np.clip(fused[:, 0], 0, wh[:, 0]), np.clip(fused[:, 1], 0, wh[:, 1]),
                                 np.clip(fused[:, 2], 0, wh[:, 0]), np.clip(fused[:, 3], 0, wh[:, 1])])
    out = [{"item": it, "boxes": [], "confidence": float(c)} for it, c in zip(ans.items, image_conf.tolist(),
                                                                               strict=True)]
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(-box_conf[idx], kind="stable")]
    labels = ans.labels
    for j, (x1, y1, x2, y2), c in zip(idx.tolist(), fused[idx].tolist(), box_conf[idx].tolist(), strict=True):
        out[c_item[j]]["boxes"].append([x1, y1, x2, y2, labels[c_label[j]], float(c)])
    return out


def fit_boxes(rows: Iterable[Mapping], items: Mapping | None = None, method: str = "auto") -> BoxConsensus:
    """Consensus boxes plus each annotator's skills (see :class:`BoxConsensus`)."""
    if method not in METHODS:
        raise BoxInputError(f"unknown box method {method!r}; choose one of: {', '.join(METHODS)}")
    ans = read_answers(rows, items)
    if method == "auto":
        per_item = np.bincount(ans.ans_item, minlength=len(ans.items))
        method = "em" if (per_item >= 2).sum() >= AUTO_MIN_IMAGES else "vote"
    return _em(ans) if method == "em" else _vote(ans)


def aggregate_boxes(rows: Iterable[Mapping], items: Mapping | None = None, method: str = "auto") -> list[dict]:
    """One consensus per answered item, in order of first appearance::

        {"item": id, "boxes": [[x1, y1, x2, y2, label, confidence], ...], "confidence": float}

    ``rows``: ``{"item", "worker", "boxes": [[x1, y1, x2, y2, label], ...]}``
    in pixels (an empty list: the annotator saw nothing to mark). ``items``:
    optional item -> ``{"width", "height"}``; fused boxes are then clipped to
    the image. A box's confidence is the posterior that it marks a real object
    (``"vote"``: its share of votes); the image's, the chance that every
    keep/drop call on it is right and no object escaped all its annotators.
    Raises ValueError (:class:`BoxInputError`) on a bad row.
    """
    return fit_boxes(rows, items, method).results


def _by_item(rows, what: str) -> dict:
    if isinstance(rows, Mapping):
        return {k: list(v) for k, v in rows.items()}
    out = {}
    for n, r in enumerate(rows):
        if not isinstance(r, Mapping) or "item" not in r or "boxes" not in r:
            raise BoxInputError(f"{what} row {n}: needs 'item' and 'boxes'")
        out[r["item"]] = list(r["boxes"])
    return out


def _match(p: list, t: list, thr: float) -> list[float]:
    """Greedy one-to-one match by IoU (highest first), same label only: the matched IoUs."""
    if not p or not t:
        return []
    m = iou_matrix(np.asarray([b[:4] for b in p], float), np.asarray([b[:4] for b in t], float))
    lp = [b[4] if len(b) > 4 else None for b in p]
    lt = [b[4] if len(b) > 4 else None for b in t]
    m[np.asarray([[a != b for b in lt] for a in lp])] = 0.0
    pairs = np.argwhere(m >= thr)
    pairs = pairs[np.argsort(-m[pairs[:, 0], pairs[:, 1]], kind="stable")]
    used_p, used_t, got = set(), set(), []
    for i, j in pairs.tolist():
        if i not in used_p and j not in used_t:
            used_p.add(i)
            used_t.add(j)
            got.append(float(m[i, j]))
    return got


def score_boxes(pred, truth, iou: float = 0.5) -> dict:
    """Precision, recall and F1 of ``pred`` boxes against ``truth`` (greedy match
    at IoU >= ``iou``, same label), plus the mean IoU of the matched boxes, over
    the items in ``truth``. Both: rows ``{"item", "boxes"}`` or a dict item -> boxes."""
    p_by, t_by = _by_item(pred, "pred"), _by_item(truth, "truth")
    n_pred = n_true = 0
    ious: list[float] = []
    for item, t in t_by.items():
        p = p_by.get(item, [])
        n_pred += len(p)
        n_true += len(t)
        ious += _match(p, t, iou)
    tp = len(ious)
    precision = tp / n_pred if n_pred else math.nan
    recall = tp / n_true if n_true else math.nan
    f1 = 2 * tp / (n_pred + n_true) if n_pred + n_true else math.nan
    return {"precision": precision, "recall": recall, "f1": f1,
            "mean_iou": float(np.mean(ious)) if ious else math.nan,
            "matched": tp, "predicted": n_pred, "true": n_true, "items": len(t_by)}
