"""Curation over a dataset's item embeddings: near-duplicate groups, exact
duplicates (the same content hash in other datasets: a dataset never holds
one content twice), and outlier / uniqueness / representativeness scores.
A thin shell over :mod:`assay.learn.curation`, searching through the
space's :class:`assay.store.index.SpaceIndex`.

Relies on the search part for ``space_index``, ``_dataset_item_ids`` and
``_pick_space``, on the core for ``db``.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import and_, select

from assay.errors import InvalidInput, NotFound
from assay.learn import curation as _curation
from assay.store.index import SCAN_EXPANSION
from assay.store.schema import items as items_t


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
        allowed = None if ids.size == index.keys.size else ids

        def search(q, k):
            return index.search(q, k, allowed=allowed, threads=0, expansion=SCAN_EXPANSION)

        return ds, ids, index.vectors, search

    def duplicates(self, dataset: int | str, *, threshold: float = 0.95, space: str | None = None,
                   top: int | None = None) -> list[dict]:
        """Groups of near-duplicate items of ``dataset``: every pair whose
        vectors have cosine similarity ≥ ``threshold`` joins one group
        (``[{"items", "size", "max_similarity", "min_similarity"}]``, the
        largest first; ``top``: only that many groups)."""
        threshold = _curation.check_threshold(threshold)
        if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
            raise InvalidInput(f"top must be a whole number of at least 1, not {top!r}")
        _, ids, vectors, search = self._curation_inputs(dataset, space)
        groups = _curation.near_duplicates(ids, vectors, search, threshold)
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

    def outliers(self, dataset: int | str, *, k: int = 10, top: int | None = 100,
                 space: str | None = None) -> list[dict]:
        """The items of ``dataset`` by how unusual they are, most unusual
        first: ``[{"item_id", "outlier", "uniqueness", "representativeness"}]``
        — the mean cosine distance to the ``k`` nearest other items, the
        distance to the nearest, how often the item is among the others'
        ``k`` nearest divided by ``k`` (:mod:`assay.learn.curation`).
        ``top``: only that many (None: every item)."""
        k = _curation.check_k(k)
        if top is not None and (isinstance(top, bool) or not isinstance(top, int) or top < 1):
            raise InvalidInput(f"top must be a whole number of at least 1, not {top!r}")
        _, ids, vectors, search = self._curation_inputs(dataset, space)
        s = _curation.knn_scores(ids, vectors, search, k)
        order = np.argsort(-s["outlier"], kind="stable")
        if top is not None:
            order = order[:top]
        return [{"item_id": int(s["ids"][i]), "outlier": round(float(s["outlier"][i]), 6),
                 "uniqueness": round(float(s["uniqueness"][i]), 6),
                 "representativeness": round(float(s["representativeness"][i]), 6)} for i in order]
