"""Nearest-neighbour search over one embedding space's stored vectors.

The float32 shards of :class:`assay.store.vectors.VectorStore` are the
source of truth; what this module keeps is a cache built from them:

- below ``exact_below`` vectors (200,000): exact search, the space's
  vectors L2-normalised in memory, scored block by block (bounded memory,
  any number of queries);
- from ``exact_below`` up: a usearch HNSW graph (inner product on
  normalised vectors, i.e. cosine), saved beside the shards as
  ``hnsw.usearch`` with ``hnsw.json`` naming the shards it holds (name,
  size, mtime). On open the saved graph is used if those shards are still
  the first shards of the space, and the shards written since are added to
  it (an item embedded again is removed and re-added: its latest vector
  wins, as in the store; the file is rewritten once 5 % of the graph is
  new, a smaller tail is added again on the next open); otherwise (file missing, unreadable, shard list
  changed) it is rebuilt from the shards. Every search first checks the
  shard list, so a result always covers every stored vector.

Scores are cosine similarities (higher is closer). Restricted searches
(``allowed``: a set of item ids): exact over those vectors when the space
is exact anyway or the set is small (≤ ``filter_exact_below``, 50,000, and
no more than reading the graph would cost: ``FILTER_EXACT_RATIO``);
otherwise the graph is asked for more neighbours than ``k`` (``k`` divided
by the allowed fraction, times 2) and filtered, asking again with 4× more
until ``k`` allowed neighbours are found; a query still short after that
is answered exactly over the allowed set. usearch is imported only when a
graph is needed.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import numpy as np

from assay.errors import InvalidInput, NotFound

EXACT_BELOW = 200_000
FILTER_EXACT_BELOW = 50_000
# a filtered search over the graph asks for 2 k / fraction candidates at twice
# that width (FILTER_WIDTH: recall@10 >= 0.98 down to 0.5 % of 1M items); an
# exact one reads every allowed vector (in HNSW mode from the graph, several µs
# each). Exact while allowed² <= FILTER_EXACT_RATIO · k · n, where the two cost
# about the same (benchmarks/bench_filtered.py measures both at 1M)
FILTER_EXACT_RATIO = 2
FILTER_WIDTH = 2
BLOCK = 32_768  # vectors scored (or added) per step
MAX_K = 1000
SAVE_EVERY = 0.05  # re-save the graph once this share of it was added since the last save
# HNSW settings (benchmarks/bench_search.py measures them): vectors kept as
# float16 (half the memory of float32, recall unchanged on unit vectors)
CONNECTIVITY, EXPANSION_ADD, EXPANSION_SEARCH, DTYPE = 16, 96, 160, "f16"
# the search width of a curation pass over every item (near-duplicates, outliers:
# assay.learn.curation), narrower than an interactive search's: near-duplicates
# are the closest neighbours, found at any width; benchmarks/bench_curation.py
# measures pair recall and the outlier ranking against exact search per width
SCAN_EXPANSION = 24
INDEX_FILE = "hnsw.usearch"
INDEX_META = "hnsw.json"


def normalize(v: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32; all-zero rows stay zero)."""
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n > 0, n, 1.0)


def exact_topk(queries: np.ndarray, blocks, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best (highest inner product) of ``blocks`` — an iterable of
    ``(keys, vectors)`` — for each query: ``(keys, scores)``, each ``(m, k)``,
    best first, padded with key -1 and score -inf where fewer exist."""
    m = queries.shape[0]
    best_k = np.full((m, 0), -1, np.int64)
    best_s = np.full((m, 0), -np.inf, np.float32)
    for keys, vecs in blocks:
        if len(keys) == 0:
            continue
        s = queries @ np.asarray(vecs, dtype=np.float32).T
        if s.shape[1] > k:
            part = np.argpartition(-s, k - 1, axis=1)[:, :k]
            s = np.take_along_axis(s, part, axis=1)
            kk = np.asarray(keys)[part]
        else:
            kk = np.broadcast_to(np.asarray(keys), s.shape)
        best_s = np.concatenate([best_s, s], axis=1)
        best_k = np.concatenate([best_k, kk], axis=1)
        if best_s.shape[1] > k:
            part = np.argpartition(-best_s, k - 1, axis=1)[:, :k]
            best_s = np.take_along_axis(best_s, part, axis=1)
            best_k = np.take_along_axis(best_k, part, axis=1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    best_s = np.take_along_axis(best_s, order, axis=1)
    best_k = np.take_along_axis(best_k, order, axis=1)
    if best_s.shape[1] < k:
        pad = k - best_s.shape[1]
        best_s = np.concatenate([best_s, np.full((m, pad), -np.inf, np.float32)], axis=1)
        best_k = np.concatenate([best_k, np.full((m, pad), -1, np.int64)], axis=1)
    return best_k, best_s


def _sorted_unique(ids) -> np.ndarray:
    """``ids`` as a sorted int64 array without repeats (no sort when they
    already are, as a filter built from sorted ids usually is)."""
    ids = np.asarray(ids, dtype=np.int64).ravel()
    if ids.size > 1 and not bool((ids[1:] > ids[:-1]).all()):
        ids = np.unique(ids)
    return ids


def _in_sorted(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Which of ``ids`` (any shape) are in ``sorted_ids`` (sorted, unique): a
    binary search each, not the sort of both that ``np.isin`` may do."""
    if sorted_ids.size == 0:
        return np.zeros(np.shape(ids), bool)
    pos = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
    return sorted_ids[pos] == ids


def _usearch():
    try:
        from usearch.index import Index
    except ImportError:
        raise InvalidInput("approximate search over large spaces needs usearch: pip install usearch") from None
    return Index


def _latest_in_shard(ids: np.ndarray) -> np.ndarray:
    """Positions of each id's last occurrence in a shard (its latest vector)."""
    uniq, first_rev = np.unique(ids[::-1], return_index=True)
    return np.sort(ids.size - 1 - first_rev)


def _matches(found, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """usearch results as ``(keys, cosine scores, valid)``, each ``(m, width)``
    (one query comes back as ``Matches``, several as ``BatchMatches``)."""
    got_k = np.asarray(found.keys).astype(np.int64).reshape(m, -1)
    got_s = 1.0 - np.asarray(found.distances, dtype=np.float32).reshape(m, -1)
    counts = np.asarray(getattr(found, "counts", [got_k.shape[1]])).reshape(-1, 1)
    return got_k, got_s, np.arange(got_k.shape[1])[None, :] < counts


class SpaceIndex:
    """Search one space of ``store``; safe to share between threads."""

    def __init__(self, store, space: str, *, exact_below: int = EXACT_BELOW,
                 filter_exact_below: int = FILTER_EXACT_BELOW, connectivity: int = CONNECTIVITY,
                 expansion_add: int = EXPANSION_ADD, expansion_search: int = EXPANSION_SEARCH,
                 dtype: str = DTYPE) -> None:
        self.store, self.space = store, space
        self.exact_below, self.filter_exact_below = exact_below, filter_exact_below
        self.params = {"connectivity": connectivity, "expansion_add": expansion_add, "dtype": dtype}
        self.expansion_search = expansion_search
        self._lock = threading.RLock()
        self._sig: list | None = None  # the shards the cache covers
        self._keys = np.zeros(0, np.int64)  # sorted ids covered
        self._mat: np.ndarray | None = None  # exact mode: normalised vectors aligned with _keys
        self._graph = None  # HNSW mode: the usearch index
        self.last_refresh: dict = {}
        self._unsaved = 0  # vectors added to the graph since it was last saved
        self._ids_cache: tuple | None = None  # (shard list, sorted stored ids)

    # ------------------------------------------------------------ state

    @property
    def mode(self) -> str:
        return "hnsw" if self._graph is not None else "exact"

    def __len__(self) -> int:
        return int(self._keys.size)

    @property
    def keys(self) -> np.ndarray:
        """Every item id with a vector (sorted)."""
        return self._keys

    def _signature(self) -> list:
        out = []
        for ids_f, _ in self.store.shard_paths(self.space):
            st = ids_f.stat()
            out.append([ids_f.name, st.st_size, st.st_mtime_ns])
        return out

    def stored_ids(self, sig: list | None = None) -> np.ndarray:
        """Every item id with a stored vector (sorted), read again only when
        the shard list changed (no index is built for it)."""
        with self._lock:
            sig = self._signature() if sig is None else sig
            if self._ids_cache is None or self._ids_cache[0] != sig:
                parts = [np.load(p) for p, _ in self.store.shard_paths(self.space)[:len(sig)]]
                self._ids_cache = (sig, np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64))
            return self._ids_cache[1]

    def refresh(self) -> dict:
        """Bring the cache up to the stored shards; what was done."""
        with self._lock:
            sig = self._signature()
            if sig == self._sig:
                return {"mode": self.mode, "count": len(self), "changed": False}
            self.store.meta(self.space)  # NotFound for a space nobody embedded into
            n = self.stored_ids(sig).size
            if n < self.exact_below:
                self._graph = None
                self._keys, vecs = self.store.load(self.space)
                self._mat = normalize(vecs)
                self.last_refresh = {"mode": "exact", "count": int(n), "changed": True}
            else:
                self._mat = None
                self.last_refresh = {"mode": "hnsw", "count": int(n), "changed": True,
                                     **self._sync_graph(sig)}
            self._sig = sig
            return self.last_refresh

    # ------------------------------------------------------------ the HNSW cache

    def _paths(self) -> tuple[Path, Path]:
        d = self.store.root / self.space
        return d / INDEX_FILE, d / INDEX_META

    def _load_graph(self, sig: list):
        """The saved graph and how many shards it covers, if it is still valid."""
        path, meta_f = self._paths()
        if self._graph is not None and self._sig is not None and sig[:len(self._sig)] == self._sig:
            return self._graph, len(self._sig)
        try:
            meta = json.loads(meta_f.read_text())
            covered = meta["shards"]
            if (meta.get("params") != self.params or sig[:len(covered)] != covered
                    or not path.is_file()):
                return None, 0
            graph = _usearch().restore(str(path))
            if graph is None or len(graph) != meta["count"]:
                return None, 0
            return graph, len(covered)
        except (OSError, ValueError, KeyError, RuntimeError):
            return None, 0

    def _sync_graph(self, sig: list) -> dict:
        graph, start = self._load_graph(sig)
        rebuilt = graph is None
        if graph is None:
            dim = int(self.store.meta(self.space)["dim"])
            graph = _usearch()(ndim=dim, metric="ip", dtype=self.params["dtype"],
                               connectivity=self.params["connectivity"],
                               expansion_add=self.params["expansion_add"])
        added = 0
        for ids_f, vec_f in self.store.shard_paths(self.space)[start:len(sig)]:
            ids = np.load(ids_f)
            vecs = np.load(vec_f, mmap_mode="r")
            keep = _latest_in_shard(ids)
            for lo in range(0, keep.size, BLOCK):
                pos = keep[lo:lo + BLOCK]
                keys = ids[pos].astype(np.uint64)
                again = keys[np.asarray(graph.contains(keys), dtype=bool)] if len(graph) else keys[:0]
                if again.size:
                    graph.remove(again)  # embedded again: the latest vector wins
                graph.add(keys, normalize(vecs[pos]), threads=0)
                added += pos.size
        graph.expansion_search = self.expansion_search
        self._graph = graph
        self._keys = np.sort(np.asarray(graph.keys, dtype=np.int64)) if len(graph) else np.zeros(0, np.int64)
        # saved after a build and once the unsaved tail is large (SAVE_EVERY of the
        # graph): a smaller tail is cheaper to add again on the next open than to write
        self._unsaved = (0 if rebuilt else self._unsaved) + added
        if rebuilt or self._unsaved >= max(BLOCK, SAVE_EVERY * len(graph)):
            self._save(graph, sig)
            self._unsaved = 0
        return {"rebuilt": rebuilt, "added": int(added)}

    def _save(self, graph, sig: list) -> None:
        """Write the graph and the shards it holds (atomic renames)."""
        path, meta_f = self._paths()
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        graph.save(str(tmp))
        os.replace(tmp, path)
        tmp_meta = meta_f.with_name(meta_f.name + f".{os.getpid()}.tmp")
        tmp_meta.write_text(json.dumps({"shards": sig, "count": len(graph), "params": self.params}))
        os.replace(tmp_meta, meta_f)

    # ------------------------------------------------------------ search

    def vectors(self, ids) -> np.ndarray:
        """The normalised vectors of ``ids`` as the cache holds them (the graph
        keeps float16); NotFound if one has none."""
        ids = np.asarray(ids, dtype=np.int64)
        with self._lock:
            return self._vectors(ids)

    def _vectors(self, ids: np.ndarray, refresh: bool = True) -> np.ndarray:
        if refresh:  # not when the caller just did, holding the lock
            self.refresh()
        pos = np.searchsorted(self._keys, ids)
        ok = (pos < self._keys.size) & (self._keys[np.minimum(pos, max(self._keys.size - 1, 0))] == ids)
        if not ok.all():
            raise NotFound(f"{int((~ok).sum())} item(s) have no vector in space {self.space!r} "
                           f"(first: {int(ids[~ok][0])}); embed them first")
        if self._mat is not None:
            return self._mat[pos]
        got = self._graph.get(ids.astype(np.uint64), dtype=np.float32)
        rows = [got] if isinstance(got, np.ndarray) and got.ndim == 1 else list(got)
        return normalize(np.stack(rows).reshape(ids.size, -1))

    def _blocks(self, keys: np.ndarray | None = None):
        """``(keys, normalised vectors)`` blocks of the whole space or of ``keys``."""
        if self._mat is not None:
            if keys is None:
                for lo in range(0, self._keys.size, BLOCK):
                    yield self._keys[lo:lo + BLOCK], self._mat[lo:lo + BLOCK]
            else:
                rows = np.searchsorted(self._keys, keys)
                for lo in range(0, rows.size, BLOCK):
                    yield keys[lo:lo + BLOCK], self._mat[rows[lo:lo + BLOCK]]
            return
        keys = self._keys if keys is None else keys
        for lo in range(0, keys.size, BLOCK):
            part = keys[lo:lo + BLOCK]
            with self._lock:
                yield part, self._vectors(part, refresh=False)

    def search(self, queries: np.ndarray, k: int = 10, *, allowed=None, exclude=None,
               threads: int = 1, expansion: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest stored vectors to each query (cosine):
        ``(item ids, scores)``, each ``(m, k)``, best first; id -1 / score
        -inf pad rows with fewer than ``k`` candidates. ``allowed``: only
        these item ids; ``exclude``: never these (e.g. the query items).
        ``expansion``: the graph's search width for this call (default
        ``expansion_search``; never below the number of neighbours asked)."""
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise InvalidInput(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")
        if expansion is not None and (isinstance(expansion, bool) or not isinstance(expansion, (int, np.integer))
                                      or expansion < 1):
            raise InvalidInput(f"expansion must be a whole number of at least 1, not {expansion!r}")
        q = normalize(np.atleast_2d(queries))
        with self._lock:  # exact searches hold it: a refresh never swaps the matrix under them
            self.refresh()
            if q.shape[1] != int(self.store.meta(self.space)["dim"]):
                raise InvalidInput(f"queries have dimension {q.shape[1]}, the space {self.space!r} "
                                   f"{self.store.meta(self.space)['dim']}")
            keys = self._keys
            if allowed is not None:
                allowed = _sorted_unique(allowed)
                keys = allowed[np.isin(allowed, self._keys)]
            if exclude is not None and len(exclude):
                keys = keys[~np.isin(keys, np.asarray(exclude, dtype=np.int64))]
            restricted = keys.size < self._keys.size
            if self._graph is None or (restricted and self._filter_exact(keys.size, k)):
                return exact_topk(q, self._blocks(keys if restricted else None), k)
        return self._graph_search(q, k, keys if restricted else None, threads,
                                  self.expansion_search if expansion is None else int(expansion))

    def _filter_exact(self, allowed: int, k: int) -> bool:
        """Whether a search restricted to ``allowed`` items goes exact (in
        HNSW mode; the exact mode always is)."""
        return allowed <= self.filter_exact_below and allowed * allowed <= FILTER_EXACT_RATIO * k * self._keys.size

    def _graph_search(self, q: np.ndarray, k: int, keys: np.ndarray | None, threads: int, width: int):
        n = self._keys.size
        frac = 1.0 if keys is None else max(keys.size / n, 1e-9)
        fetch = min(n, max(k, int(np.ceil(2 * k / frac))) if keys is not None else k)
        m = q.shape[0]
        out_k = np.full((m, k), -1, np.int64)
        out_s = np.full((m, k), -np.inf, np.float32)
        todo = np.arange(m)
        while todo.size:
            with self._lock:  # the search width follows the fetch size
                self._graph.expansion_search = max(width, fetch * (FILTER_WIDTH if keys is not None else 1))
                found = self._graph.search(q[todo], fetch, threads=threads)
                self._graph.expansion_search = self.expansion_search
            got_k, got_s, valid = _matches(found, todo.size)
            if keys is not None:
                valid &= _in_sorted(keys, got_k)
            short = []
            for row, i in enumerate(todo):
                kk, ss = got_k[row][valid[row]][:k], got_s[row][valid[row]][:k]
                if kk.size < k and fetch < n and keys is not None:
                    short.append(i)
                    continue
                out_k[i, :kk.size], out_s[i, :kk.size] = kk, ss
            todo = np.array(short, dtype=np.int64)
            if todo.size and fetch * 4 > 4 * self.filter_exact_below:
                ek, es = exact_topk(q[todo], self._blocks(keys), k)
                out_k[todo], out_s[todo] = ek, es
                break
            fetch = min(n, fetch * 4)
        return out_k, out_s
