"""Grouping the annotators' boxes of one image and class into clusters, one
per object they might mark, for :mod:`assay.quality.boxes`.

A cluster holds at most one box per annotator. Two ways:

* :func:`greedy_clusters` (the vote baseline): in input order, each box joins
  the cluster whose current per-edge median it overlaps most (IoU >= ``thr``)
  and that has no box of its annotator yet; otherwise it starts a new cluster.
* :func:`assigned_clusters` (the skill model): annotators are taken from the
  one with the most boxes down; each annotator's boxes are matched to the
  current cluster centres by an optimal one-to-one assignment on IoU (a box
  matches only at IoU >= ``thr``); unmatched boxes start clusters. A second
  pass repeats the assignment against the first pass's centres (the mean of
  their boxes), so the result hardly depends on who came first.

Both return, for every box (in the order of the input arrays), a cluster code
unique over the whole input. Plain Python over small lists: an image holds a
handful of boxes, where numpy's per-call cost would dominate.
"""

from __future__ import annotations

import numpy as np


def _iou(a, b) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    if iw <= 0:
        return 0.0
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4): (n, m)."""
    a = np.asarray(a, float).reshape(-1, 4)[:, None, :]
    b = np.asarray(b, float).reshape(-1, 4)[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area_a + area_b - inter)


def _assign(boxes: list, centres: list, thr: float) -> list[int]:
    """One-to-one match of ``boxes`` to ``centres`` maximising the summed IoU
    (pairs under ``thr`` never match): the centre index per box, -1 if none."""
    if not centres:
        return [-1] * len(boxes)
    ious = [[_iou(b, c) for c in centres] for b in boxes]
    best = [max(range(len(centres)), key=row.__getitem__) for row in ious]
    picked = [j if ious[k][j] >= thr else -1 for k, j in enumerate(best)]
    taken = [j for j in picked if j >= 0]
    if len(taken) == len(set(taken)):  # every box's best centre is its own: that is the optimum
        return picked
    from scipy.optimize import linear_sum_assignment  # scipy on first use: importing assay stays light

    m = np.asarray(ious)
    m[m < thr] = 0.0
    rows, cols = linear_sum_assignment(m, maximize=True)
    out = [-1] * len(boxes)
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        if m[r, c] >= thr:
            out[r] = c
    return out


def _pass(by_worker: list[list], seeds: list, thr: float) -> tuple[list[list[int]], list]:
    """One sequential pass: seeds stay fixed, clusters started in the pass follow their mean."""
    centres = [list(s) for s in seeds]
    sums = [[0.0, 0.0, 0.0, 0.0] for _ in seeds]
    counts = [0] * len(seeds)
    n_seeds = len(seeds)
    labels = []
    for boxes in by_worker:
        got = _assign(boxes, centres, thr)
        for k, j in enumerate(got):
            b = boxes[k]
            if j < 0:
                j = len(centres)
                got[k] = j
                centres.append(list(b))
                sums.append([0.0, 0.0, 0.0, 0.0])
                counts.append(0)
            s = sums[j]
            for d in range(4):
                s[d] += b[d]
            counts[j] += 1
            if j >= n_seeds:
                centres[j] = [v / counts[j] for v in s]
        labels.append(got)
    means = [[v / n for v in s] if n else None for s, n in zip(sums, counts, strict=True)]
    return labels, means


def _cluster_one(by_worker: list[list], thr: float) -> list[list[int]]:
    order = sorted(range(len(by_worker)), key=lambda w: -len(by_worker[w]))
    ordered = [by_worker[w] for w in order]
    labels, means = _pass(ordered, [], thr)
    seeds = [m for m in means if m is not None]
    labels, _ = _pass(ordered, seeds, thr)
    used = sorted({j for got in labels for j in got})
    renum = {j: k for k, j in enumerate(used)}
    out: list[list[int]] = [[]] * len(by_worker)
    for pos, w in enumerate(order):
        out[w] = [renum[j] for j in labels[pos]]
    return out


def _groups(group: np.ndarray, worker: np.ndarray):
    """Yield (box indices by worker) for every group, boxes sorted by group then worker."""
    if not len(group):
        return
    order = np.lexsort((worker, group))
    g, w = group[order], worker[order]
    cut = np.flatnonzero((g[1:] != g[:-1]) | (w[1:] != w[:-1])) + 1
    starts = np.r_[0, cut]
    ends = np.r_[cut, len(order)]
    gstart = g[starts]
    new_group = np.r_[True, gstart[1:] != gstart[:-1]] if len(starts) else np.zeros(0, bool)
    order_l = order.tolist()
    current: list = []
    for s, e, new in zip(starts.tolist(), ends.tolist(), new_group.tolist(), strict=True):
        if new and current:
            yield current
            current = []
        current.append(order_l[s:e])
    if current:
        yield current


def _pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of row i of ``a`` with row i of ``b``."""
    iw = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = iw * ih
    return inter / ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter)


def _overlap_edges(xyxy, group, worker, thr, max_group: int, chunk: int = 2_000_000):
    """Every pair of boxes of one group (of at most ``max_group`` boxes) from different
    annotators with IoU >= ``thr``: (a, b) box indices. Built in chunks of pairs."""
    n = len(xyxy)
    order = np.argsort(group, kind="stable")
    g = group[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if n else np.zeros(0, np.intp)
    sizes = np.diff(np.r_[starts, n])
    gid = np.repeat(np.arange(len(starts)), sizes)
    pos = np.arange(n) - starts[gid]
    cnt = np.where(sizes[gid] <= max_group, sizes[gid] - pos - 1, 0)  # partners after each box
    cum = np.cumsum(cnt)
    edges_a, edges_b = [], []
    lo = 0
    while lo < n:
        hi = max(int(np.searchsorted(cum, (cum[lo - 1] if lo else 0) + chunk, side="right")), lo + 1)
        c = cnt[lo:hi]
        i = np.repeat(np.arange(lo, hi), c)
        j = i + 1 + (np.arange(len(i)) - np.repeat(np.cumsum(c) - c, c))
        a, b = order[i], order[j]
        a, b = a[worker[a] != worker[b]], b[worker[a] != worker[b]]
        hit = _pair_iou(xyxy[a], xyxy[b]) >= thr
        edges_a.append(a[hit])
        edges_b.append(b[hit])
        lo = hi
    big = np.zeros(n, bool)
    big[order] = sizes[gid] > max_group
    return np.concatenate(edges_a or [np.zeros(0, np.intp)]), np.concatenate(edges_b or [np.zeros(0, np.intp)]), big


def _clean_components(xyxy, group, worker, thr, max_group: int = 200):
    """The clusters that need no assignment: in a group where every set of boxes linked by
    IoU >= ``thr`` is a clique (all pairs overlap that much) of different annotators' boxes,
    each such set is one cluster. Returns a component code per box, -1 for the boxes of
    every other group (they go through :func:`_cluster_one`)."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    n = len(xyxy)
    a, b, big = _overlap_edges(xyxy, group, worker, thr, max_group)
    graph = sparse.coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    size = np.bincount(comp, minlength=n)
    n_edges = np.bincount(comp[a], minlength=n)
    # distinct annotators per component
    cw = np.unique(comp.astype(np.int64) * (int(worker.max(initial=0)) + 1) + worker)
    distinct = np.bincount(cw // (int(worker.max(initial=0)) + 1), minlength=n)
    clean = (distinct == size) & (n_edges == size * (size - 1) // 2)
    bad_group = np.zeros(int(group.max(initial=-1)) + 1, bool)
    bad_group[group[~clean[comp] | big]] = True
    return np.where(bad_group[group], -1, comp)


def assigned_clusters(xyxy: np.ndarray, group: np.ndarray, worker: np.ndarray, thr: float) -> np.ndarray:
    """Cluster code per box; boxes cluster only within their ``group`` (image and class).

    Groups whose overlapping boxes form clean cliques (see :func:`_clean_components`) are
    clustered at once with numpy; the rest box by box (:func:`_cluster_one`)."""
    out = np.empty(len(xyxy), np.intp)
    comp = _clean_components(xyxy, group, worker, thr) if len(xyxy) else np.zeros(0, np.intp)
    fast = comp >= 0
    _, out[fast] = np.unique(comp[fast], return_inverse=True)
    base = int(out[fast].max(initial=-1)) + 1
    slow = np.flatnonzero(~fast)
    coords = xyxy.tolist()
    for by_worker in _groups(group[slow], worker[slow]):
        by_worker = [[int(slow[i]) for i in idx] for idx in by_worker]
        boxes = [[coords[i] for i in idx] for idx in by_worker]
        labels = _cluster_one(boxes, thr)
        top = 0
        for idx, lab in zip(by_worker, labels, strict=True):
            for i, j in zip(idx, lab, strict=True):
                out[i] = base + j
                top = max(top, j + 1)
        base += top
    return out


def _median4(boxes: list) -> list:
    n = len(boxes)
    out = []
    for d in range(4):
        v = sorted(b[d] for b in boxes)
        out.append(v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2)
    return out


def greedy_clusters(xyxy: np.ndarray, group: np.ndarray, worker: np.ndarray, thr: float) -> np.ndarray:
    """The baseline's clusters: in input order, each box joins the cluster whose current
    per-edge median it overlaps most (IoU >= ``thr``) among those without a box of its annotator."""
    out = np.empty(len(xyxy), np.intp)
    coords = xyxy.tolist()
    open_: dict[int, list] = {}  # group -> [[median, cluster code, workers, boxes]]
    n = 0
    for i, (g, w) in enumerate(zip(group.tolist(), worker.tolist(), strict=True)):
        cands = open_.setdefault(g, [])
        best, best_iou = None, thr
        for c in cands:
            if w in c[2]:
                continue
            v = _iou(coords[i], c[0])
            if v >= best_iou:
                best, best_iou = c, v
        if best is None:
            best = [coords[i], n, set(), []]
            cands.append(best)
            n += 1
        best[2].add(w)
        best[3].append(coords[i])
        best[0] = _median4(best[3])
        out[i] = best[1]
    return out
