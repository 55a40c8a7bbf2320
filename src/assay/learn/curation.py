"""Curation over item embeddings: near-duplicate groups, exact duplicate
groups (by content hash), and per-item outlier, uniqueness and
representativeness scores. Pure numpy, no database.

Everything is one pass of k-nearest-neighbour queries over the items
(:func:`scan` gives duplicates and scores from the same pass),
``batch`` queries at a time, through two functions the caller gives:

- ``vectors(ids) -> (b, d)`` unit vectors of those ids;
- ``search(queries, k) -> (ids, scores)``, each ``(b, k)``, best first,
  cosine similarities, id -1 padding (:meth:`assay.store.index.SpaceIndex.search`
  restricted to the items fits).

Memory is bounded by the batch (``batch × k`` neighbours at a time) plus
what is kept: the pairs above the threshold for duplicates, ``n`` floats
per score. A query's own id and ids outside ``ids`` are dropped from its
neighbours; a near-duplicate query whose every neighbour is still above
the threshold is asked again with 4× more (up to ``MAX_K``), so a large
group of copies is found whole.

Scores (cosine distance = 1 - similarity):

- ``outlier``: the mean distance to the ``k`` nearest other items (higher
  = more unusual);
- ``uniqueness``: the distance to the nearest other item (0 = an exact copy
  exists);
- ``representativeness``: how often the item is among the others' ``k``
  nearest, divided by ``k`` (1 on average; high = the centre of a dense
  region, a good example of many others).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from assay.errors import InvalidInput

BATCH = 2048  # queries per search call
MAX_K = 1000
Search = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]
Vectors = Callable[[np.ndarray], np.ndarray]


def check_threshold(threshold) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise InvalidInput(f"threshold must be a cosine similarity in (0, 1], not {threshold!r}")
    return float(threshold)


def check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < MAX_K:
        raise InvalidInput(f"k must be a whole number from 1 to {MAX_K - 1}, not {k!r}")
    return int(k)


def _sorted_ids(ids) -> np.ndarray:
    ids = np.asarray(ids, dtype=np.int64).ravel()
    s = np.sort(ids)
    if s.size > 1 and (s[1:] == s[:-1]).any():
        raise InvalidInput("item ids must be unique")
    return s


def _neighbours(ids: np.ndarray, q_pos: np.ndarray, keys: np.ndarray, scores: np.ndarray):
    """Search results as positions in ``ids``: ``(positions, scores)``, each
    row's own position and foreign ids dropped, the rest moved to the front
    (position -1, score -inf after them)."""
    pos = np.minimum(np.searchsorted(ids, keys), ids.size - 1)
    ok = (keys >= 0) & (ids[pos] == keys) & (pos != q_pos[:, None])
    order = np.argsort(~ok, axis=1, kind="stable")
    ok = np.take_along_axis(ok, order, axis=1)
    pos = np.where(ok, np.take_along_axis(pos, order, axis=1), -1)
    sc = np.where(ok, np.take_along_axis(scores, order, axis=1), -np.inf).astype(np.float32)
    return pos, sc


def _full_above(pos: np.ndarray, sc: np.ndarray, fetch: int, threshold: float) -> np.ndarray:
    """Rows that came back full (all ``fetch`` but the query itself) with
    their last neighbour still at or above ``threshold``: there may be more."""
    n_ok = (pos >= 0).sum(axis=1)
    last = sc[np.arange(sc.shape[0]), np.maximum(n_ok - 1, 0)]
    return (n_ok >= fetch - 1) & (n_ok > 0) & (last >= threshold)


def knn_batches(ids, vectors: Vectors, search: Search, k: int, *, batch: int = BATCH,
                grow_above: float | None = None):
    """Yield ``(first position, neighbour positions, scores)`` per batch of
    queries: each item's nearest other items among ``ids`` (sorted), at
    least ``k`` wide; with ``grow_above`` a row whose neighbours all score
    at or above it is asked again wider (4×, up to ``MAX_K``)."""
    ids = _sorted_ids(ids)
    for lo in range(0, ids.size, batch):
        q_pos = np.arange(lo, min(lo + batch, ids.size))
        q = np.asarray(vectors(ids[q_pos]), dtype=np.float32)
        fetch = min(k + 1, MAX_K)
        pos, sc = _neighbours(ids, q_pos, *search(q, fetch))
        if grow_above is not None:
            todo = np.flatnonzero(_full_above(pos, sc, fetch, grow_above))
            while todo.size and fetch < MAX_K and fetch < ids.size:
                fetch = min(fetch * 4, MAX_K)
                p2, s2 = _neighbours(ids, q_pos[todo], *search(q[todo], fetch))
                wide_p = np.full((q_pos.size, fetch), -1, np.int64)
                wide_s = np.full((q_pos.size, fetch), -np.inf, np.float32)
                wide_p[:, :pos.shape[1]], wide_s[:, :sc.shape[1]] = pos, sc
                wide_p[todo, :p2.shape[1]], wide_s[todo, :s2.shape[1]] = p2, s2
                pos, sc = wide_p, wide_s
                todo = todo[_full_above(p2, s2, fetch, grow_above)]
        yield lo, pos, sc


def _components(a: np.ndarray, b: np.ndarray, n: int) -> np.ndarray:
    """Connected components of the graph with edges ``a[i] - b[i]`` over
    ``n`` nodes: each node's label, the smallest node of its component
    (union by minimum with pointer jumping, vectorised)."""
    label = np.arange(n)
    while True:
        m = np.minimum(label[a], label[b])
        new = label.copy()
        np.minimum.at(new, a, m)
        np.minimum.at(new, b, m)
        while True:  # pointer jumping: every node points at its root
            nxt = new[new]
            if np.array_equal(nxt, new):
                break
            new = nxt
        if np.array_equal(new, label):
            return label
        label = new


def near_duplicate_pairs(ids, vectors: Vectors, search: Search, threshold: float, *,
                         batch: int = BATCH, k: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of ``ids`` with cosine similarity at or above ``threshold``
    that the search finds: ``(a, b, score)`` with ``a < b`` (ids), each pair once."""
    return scan(ids, vectors, search, threshold, k, batch=batch, scores=False)["pairs"]


def _unique_pairs(sids: np.ndarray, parts_a: list, parts_b: list, parts_s: list):
    if not parts_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    a, b, s = np.concatenate(parts_a), np.concatenate(parts_b), np.concatenate(parts_s)
    _, first = np.unique(a * sids.size + b, return_index=True)
    return sids[a[first]], sids[b[first]], s[first]


def scan(ids, vectors: Vectors, search: Search, threshold: float | None, k: int = 10, *,
         batch: int = BATCH, scores: bool = True, progress: Callable[[float], None] | None = None) -> dict:
    """One kNN pass for both: ``{"pairs": (a, b, score)}`` (with a
    ``threshold``: :func:`near_duplicate_pairs`) and, with ``scores``,
    ``{"scores": ...}`` (:func:`knn_scores`: each item's ``k`` nearest).
    ``progress(fraction)`` is called after each batch."""
    threshold = None if threshold is None else check_threshold(threshold)
    k = check_k(k)
    sids = _sorted_ids(ids)
    if scores and sids.size < 2:
        raise InvalidInput("scores need at least 2 items with vectors")
    parts_a, parts_b, parts_s = [], [], []
    outlier = np.empty(sids.size, np.float32)
    unique = np.empty(sids.size, np.float32)
    indegree = np.zeros(sids.size, np.int64)
    for lo, pos, sc in knn_batches(sids, vectors, search, k, batch=batch, grow_above=threshold):
        if threshold is not None:
            rows, cols = np.nonzero(sc >= threshold)
            a, b = lo + rows, pos[rows, cols]
            parts_a.append(np.minimum(a, b))
            parts_b.append(np.maximum(a, b))
            parts_s.append(sc[rows, cols])
        if scores:
            p, s = pos[:, :k], sc[:, :k]
            ok = p >= 0
            dist = np.where(ok, 1.0 - s, 0.0)
            hi = lo + p.shape[0]
            outlier[lo:hi] = dist.sum(axis=1) / np.maximum(ok.sum(axis=1), 1)
            unique[lo:hi] = np.where(ok[:, 0], dist[:, 0], 1.0)
            indegree += np.bincount(p[ok], minlength=sids.size)
        if progress is not None:
            progress(min(lo + pos.shape[0], sids.size) / sids.size)
    out: dict = {}
    if threshold is not None:
        out["pairs"] = _unique_pairs(sids, parts_a, parts_b, parts_s)
    if scores:
        out["scores"] = {"ids": sids, "outlier": outlier, "uniqueness": unique,
                         "representativeness": (indegree / k).astype(np.float32)}
    return out


def group_pairs(a: np.ndarray, b: np.ndarray, scores: np.ndarray) -> list[dict]:
    """Pairs joined into groups (union-find): ``[{"items": [ids, sorted],
    "similarities", "size", "max_similarity", "min_similarity"}]`` (each
    item's highest pair score, parallel to ``items``; the highest and lowest
    pair score inside), the largest groups first, then the closest."""
    if len(a) == 0:
        return []
    nodes, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    ia, ib = inv[:len(a)], inv[len(a):]
    label = _components(ia, ib, nodes.size)
    roots, gi = np.unique(label, return_inverse=True)
    hi = np.full(roots.size, -np.inf)
    lo = np.full(roots.size, np.inf)
    np.maximum.at(hi, gi[ia], scores)
    np.minimum.at(lo, gi[ia], scores)
    best = np.full(nodes.size, -np.inf)
    np.maximum.at(best, ia, scores)
    np.maximum.at(best, ib, scores)
    order = np.argsort(gi, kind="stable")
    bounds = np.searchsorted(gi[order], np.arange(roots.size + 1))
    groups = [{"items": [int(x) for x in nodes[order[bounds[g]:bounds[g + 1]]]],
               "similarities": [round(float(x), 6) for x in best[order[bounds[g]:bounds[g + 1]]]],
               "size": int(bounds[g + 1] - bounds[g]),
               "max_similarity": round(float(hi[g]), 6), "min_similarity": round(float(lo[g]), 6)}
              for g in range(roots.size)]
    groups.sort(key=lambda g: (-g["size"], -g["max_similarity"], g["items"][0]))
    return groups


def near_duplicates(ids, vectors: Vectors, search: Search, threshold: float = 0.95, *,
                    batch: int = BATCH, k: int = 10) -> list[dict]:
    """Groups of near-duplicate items (see :func:`group_pairs`)."""
    return group_pairs(*near_duplicate_pairs(ids, vectors, search, threshold, batch=batch, k=k))


def exact_groups(ids, hashes) -> list[dict]:
    """Items sharing a content hash: ``[{"content_hash", "items"}]`` (groups
    of two or more, ids sorted; largest first)."""
    ids = np.asarray(ids, dtype=np.int64)
    hashes = np.asarray(hashes, dtype=object)
    if ids.shape != hashes.shape:
        raise InvalidInput("give one hash per item id")
    by: dict[str, list[int]] = {}
    for i, h in zip(ids.tolist(), hashes.tolist()):
        by.setdefault(h, []).append(i)
    out = [{"content_hash": h, "items": sorted(v)} for h, v in by.items() if len(v) > 1]
    out.sort(key=lambda g: (-len(g["items"]), g["items"][0]))
    return out


def knn_scores(ids, vectors: Vectors, search: Search, k: int = 10, *, batch: int = BATCH) -> dict:
    """Per item (``ids`` sorted): ``{"ids", "outlier", "uniqueness",
    "representativeness"}``, arrays of ``n`` (see the module doc)."""
    return scan(ids, vectors, search, None, k, batch=batch)["scores"]
