"""Curation over a dataset's item embeddings: near-duplicate groups, exact
duplicates (the same content hash in other datasets: a dataset never holds
one content twice), and outlier / uniqueness / representativeness scores.
A thin shell over :mod:`assay.learn.curation`, searching through the
space's :class:`assay.store.index.SpaceIndex`.

One kNN pass gives both (:meth:`Curation.curation_scan`): it runs in the
background through :mod:`assay.jobs.curation` and is cached beside the
space's shards as ``curation-<dataset id>-k<k>-t<threshold>.npz`` (item
ids, the three scores, the pairs at or above the threshold, the version
they were computed for — the embedding map's version: the space's shard
list and the dataset's ids with a vector). :meth:`Curation.duplicates`
and :meth:`Curation.outliers` read a fresh cached pass when there is one
(the same threshold, resp. the same ``k``), else compute in the call.

Relies on the search part for ``space_index``, ``_dataset_item_ids`` and
``_pick_space``, on the core for ``db``.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from sqlalchemy import and_, select

from assay.errors import InvalidInput, NotFound
from assay.jobs import curation as _jobs
from assay.learn import curation as _curation
from assay.store.index import SCAN_EXPANSION
from assay.store.schema import items as items_t

SCAN_K = 10
SCAN_THRESHOLD = 0.95
_ARRAYS = ("ids", "outlier", "uniqueness", "representativeness", "pair_a", "pair_b", "pair_score")


def _check_top(top):
    if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
        raise InvalidInput(f"top must be a whole number of at least 1, not {top!r}")


@contextmanager
def _bar(show: bool, total: int, desc: str):
    """A progress callback drawing a bar on stderr (None when not ``show``)."""
    if not show:
        yield None
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, unit="item", desc=desc, file=sys.stderr, leave=False) as bar:
        yield lambda f: bar.update(round(f * total) - bar.n)


def _load_scan(path: Path, version: str) -> dict | None:
    try:
        with np.load(path) as z:
            if str(z["version"]) != version:
                return None
            out = {name: z[name] for name in _ARRAYS}
            out.update(k=int(z["k"]), threshold=float(z["threshold"]))
            return out
    except (OSError, KeyError, ValueError):
        return None


class Curation:
    """Duplicates and outliers within a dataset."""

    def _curation_inputs(self, dataset, space):
        """The dataset, its item ids with a vector in the space, and the
        vector look-up and the search restricted to those items."""
        ds = self.dataset(dataset)
        ds_ids = self._dataset_item_ids(ds)
        index = self.space_index(self._pick_space(ds, ds_ids, space))
        index.refresh()
        ids = np.intersect1d(ds_ids, index.keys)
        if ids.size == 0:
            raise NotFound(f"dataset {ds['name']!r} has no vectors yet: run `assay embed {ds['name']}` first")
        return ds, ids, index.vectors, self._restricted_search(index, ids)

    @staticmethod
    def _restricted_search(index, ids):
        allowed = None if ids.size == index.keys.size else ids

        def search(q, k):
            return index.search(q, k, allowed=allowed, threads=0, expansion=SCAN_EXPANSION)

        return search

    def _scan_inputs(self, dataset, space):
        """Without building the index: the dataset, space, index, item ids
        with a vector and their version (:func:`assay.jobs.curation.input_version`)."""
        ds = self.dataset(dataset)
        ds_ids = self._dataset_item_ids(ds)
        space = self._pick_space(ds, ds_ids, space)
        index = self.space_index(space)
        sig = index._signature()
        ids = _jobs.with_vectors(ds_ids, index.stored_ids(sig))
        if ids.size == 0:
            raise NotFound(f"dataset {ds['name']!r} has no vectors yet: run `assay embed {ds['name']}` first")
        return ds, space, index, ids, _jobs.input_version(sig, ids)

    def _scan_path(self, space: str, dataset_id: int, k, threshold) -> Path:
        t = "*" if threshold is None else repr(float(threshold))
        return self.vectors.root / space / f"curation-{dataset_id}-k{'*' if k is None else k}-t{t}.npz"

    def curation_scan(self, dataset: int | str, *, space: str | None = None, k: int = SCAN_K,
                      threshold: float = SCAN_THRESHOLD, wait: bool = False, start: bool = True) -> dict:
        """Status of the dataset's cached kNN pass for ``(k, threshold)``
        (``state``: queued, running, done, failed, or missing with
        ``start=False``; ``progress`` 0..1), starting it in the background
        when the cache is missing or stale; ``wait`` blocks until it ends.
        Also ``dataset``, ``space``, ``k``, ``threshold``, ``count`` (items
        with a vector) and ``path`` (the cache file)."""
        k, threshold = _curation.check_k(k), _curation.check_threshold(threshold)
        ds, space, index, ids, version = self._scan_inputs(dataset, space)
        if start and ids.size < 2:
            raise InvalidInput("scores need at least 2 items with vectors")
        path = self._scan_path(space, ds["id"], k, threshold)

        def compute(progress):
            index.refresh()
            r = _curation.scan(ids, index.vectors, self._restricted_search(index, ids), threshold, k,
                               progress=progress)
            s, (a, b, sc) = r["scores"], r["pairs"]
            return {"ids": s["ids"], "outlier": s["outlier"], "uniqueness": s["uniqueness"],
                    "representativeness": s["representativeness"], "pair_a": a, "pair_b": b, "pair_score": sc}

        def store(arrays):
            _jobs.atomic_save(path, lambda f: np.savez(f, version=np.array(version), k=np.array(k),
                                                       threshold=np.array(threshold), **arrays))

        st = _jobs.REGISTRY.request(("scan", ds["id"], space, k, threshold), version,
                                    lambda: _jobs.cached_version(path), compute, store, start=start, wait=wait)
        return {**st, "dataset": ds["id"], "space": space, "k": k, "threshold": threshold,
                "count": int(ids.size), "path": str(path)}

    def curation_cached(self, dataset: int | str, *, space: str | None = None, k: int | None = None,
                        threshold: float | None = None) -> dict | None:
        """A fresh cached pass (:meth:`curation_scan`) with this ``k`` and
        ``threshold`` (None: any), the newest first; None without one.
        ``{"ids", "outlier", "uniqueness", "representativeness", "pair_a",
        "pair_b", "pair_score", "k", "threshold"}`` (numpy arrays)."""
        k = None if k is None else _curation.check_k(k)
        threshold = None if threshold is None else _curation.check_threshold(threshold)
        ds, space, _index, _ids, version = self._scan_inputs(dataset, space)
        pattern = self._scan_path(space, ds["id"], k, threshold)
        found = []
        for p in pattern.parent.glob(pattern.name):
            try:
                found.append((p.stat().st_mtime_ns, p))
            except OSError:
                continue
        for _, p in sorted(found, reverse=True):
            hit = _load_scan(p, version)
            if hit is not None and k in (None, hit["k"]) and threshold in (None, hit["threshold"]):
                return hit
        return None

    def duplicates(self, dataset: int | str, *, threshold: float = SCAN_THRESHOLD, space: str | None = None,
                   top: int | None = None, progress: bool = False) -> list[dict]:
        """Groups of near-duplicate items of ``dataset``: every pair whose
        vectors have cosine similarity ≥ ``threshold`` joins one group
        (``[{"items", "similarities", "size", "max_similarity",
        "min_similarity"}]``, the largest first; ``top``: only that many
        groups). From a fresh cached pass of this threshold when there is
        one, else computed now (``progress``: a bar on stderr)."""
        threshold = _curation.check_threshold(threshold)
        _check_top(top)
        hit = self.curation_cached(dataset, space=space, threshold=threshold)
        if hit is not None:
            groups = _curation.group_pairs(hit["pair_a"], hit["pair_b"], hit["pair_score"])
        else:
            _, ids, vectors, search = self._curation_inputs(dataset, space)
            with _bar(progress, int(ids.size), "duplicates") as cb:
                pairs = _curation.scan(ids, vectors, search, threshold, SCAN_K, scores=False, progress=cb)["pairs"]
            groups = _curation.group_pairs(*pairs)
        return groups if top is None else groups[:top]

    def exact_duplicates(self, dataset: int | str) -> list[dict]:
        """Items of ``dataset`` whose content (its hash) is also in other
        datasets: ``[{"content_hash", "items": [{"item_id", "dataset_id"}]}]``
        (e.g. test items that leaked into a training set)."""
        ds = self.dataset(dataset)
        a, b = items_t.alias("a"), items_t.alias("b")
        q = (select(a.c.id, a.c.dataset_id, b.c.id, b.c.dataset_id, a.c.content_hash)
             .select_from(a.join(b, and_(b.c.content_hash == a.c.content_hash, b.c.id != a.c.id)))
             .where(a.c.dataset_id == ds["id"]))
        where: dict[int, int] = {}
        ids, hashes = [], []
        with self.db.read() as conn:
            for ai, ad, bi, bd, h in conn.execute(q):
                for i, d in ((ai, ad), (bi, bd)):
                    if i not in where:
                        where[i] = d
                        ids.append(i)
                        hashes.append(h)
        groups = _curation.exact_groups(np.asarray(ids, np.int64), np.asarray(hashes, dtype=object))
        return [{"content_hash": g["content_hash"],
                 "items": [{"item_id": i, "dataset_id": where[i]} for i in g["items"]]} for g in groups]

    def outliers(self, dataset: int | str, *, k: int = SCAN_K, top: int | None = 100,
                 space: str | None = None, progress: bool = False) -> list[dict]:
        """The items of ``dataset`` by how unusual they are, most unusual
        first: ``[{"item_id", "outlier", "uniqueness", "representativeness"}]``
        — the mean cosine distance to the ``k`` nearest other items, the
        distance to the nearest, how often the item is among the others'
        ``k`` nearest divided by ``k`` (:mod:`assay.learn.curation`).
        ``top``: only that many (None: every item). From a fresh cached pass
        of this ``k`` when there is one, else computed now."""
        k = _curation.check_k(k)
        _check_top(top)
        s = self.curation_cached(dataset, space=space, k=k)
        if s is None:
            _, ids, vectors, search = self._curation_inputs(dataset, space)
            with _bar(progress, int(ids.size), "outliers") as cb:
                s = _curation.scan(ids, vectors, search, None, k, progress=cb)["scores"]
        order = np.argsort(-s["outlier"], kind="stable")
        if top is not None:
            order = order[:top]
        return [{"item_id": int(s["ids"][i]), "outlier": round(float(s["outlier"][i]), 6),
                 "uniqueness": round(float(s["uniqueness"][i]), 6),
                 "representativeness": round(float(s["representativeness"][i]), 6)} for i in order]
