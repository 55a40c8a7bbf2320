"""Similarity search over a dataset's item embeddings ("more like this",
text queries), a thin shell over :class:`assay.store.index.SpaceIndex`.

Relies on the core for ``db`` and ``vectors`` and on the data part for
datasets. Per-process state: ``_space_indexes`` (space -> its index, which
checks the stored shards on every search) and ``_query_embedders`` (model
name -> embedder, loaded once), both made on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np
from sqlalchemy import func, select

from assay.errors import InvalidInput, NotFound
from assay.store.index import MAX_K, SpaceIndex
from assay.store.schema import items as items_t
from assay.store.schema import slices as slices_t
from assay.store.schema import tasks as tasks_t

SNIPPET = 200  # characters of an item's text shown with a result
_init_lock = threading.Lock()


def _members(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Which of ``ids`` are in ``sorted_ids`` (sorted, unique)."""
    if sorted_ids.size == 0:
        return np.zeros(len(ids), bool)
    pos = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
    return sorted_ids[pos] == ids


def _any_member(sorted_ids: np.ndarray, ids: np.ndarray, chunk: int = 4096) -> bool:
    """Whether any of ``ids`` is in ``sorted_ids``, looked up a chunk at a time
    (a dataset's first chunk usually answers)."""
    return any(_members(sorted_ids, ids[lo:lo + chunk]).any() for lo in range(0, len(ids), chunk))


def _covers(allowed: np.ndarray, keys: np.ndarray) -> bool:
    """Whether every one of ``keys`` is in ``allowed`` (both sorted, unique)."""
    if allowed.size < keys.size:
        return False
    return bool(np.array_equal(allowed, keys) or _members(allowed, keys).all())


def _keep(allowed: np.ndarray, ids) -> np.ndarray:
    """``allowed`` (sorted, unique) restricted to ``ids``; stays sorted, unique
    (a membership test, no sort of the union as ``np.intersect1d`` does)."""
    return allowed[np.isin(allowed, np.asarray(ids, dtype=np.int64))]


class Search:
    """Find items like given items or like a text, within a dataset."""

    def space_index(self, space: str) -> SpaceIndex:
        """The (cached, per-process) index over an embedding space."""
        with _init_lock:
            cache = self.__dict__.setdefault("_space_indexes", {})
            if space not in cache:
                cache[space] = SpaceIndex(self.vectors, space)
            return cache[space]

    def _dataset_item_ids(self, ds: dict) -> np.ndarray:
        """The dataset's item ids (sorted), kept while the dataset (its
        creation time) and its largest item id stay the same: items are only
        added, with ids above every earlier one, or dropped with the dataset
        (a dataset made again is a new row). The probe is one index seek, not
        a count (tens of ms at a million items)."""
        dataset_id = ds["id"]
        with self.db.read() as conn:
            probe = (ds["created_at"], conn.execute(select(func.max(items_t.c.id))
                                                    .where(items_t.c.dataset_id == dataset_id)).scalar())
            cache = self.__dict__.setdefault("_dataset_ids", {})
            hit = cache.get(dataset_id)
            if hit is not None and hit[0] == probe:
                return hit[1]
            rows = conn.execute(select(items_t.c.id).where(items_t.c.dataset_id == dataset_id)
                                .order_by(items_t.c.id))
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64)
        if len(cache) >= 8:
            cache.clear()
        cache[dataset_id] = (probe, ids)
        return ids

    def _pick_space(self, ds: dict, ids: np.ndarray, space: str | None) -> str:
        if space is not None:
            self.vectors.meta(space)  # NotFound when nothing was embedded there
            return space
        names = [d.name for d in sorted(self.vectors.root.iterdir()) if (d / "meta.json").is_file()] \
            if self.vectors.root.is_dir() else []
        found = [s for s in names if _any_member(self.space_index(s).stored_ids(), ids)]
        if not found:
            raise NotFound(f"dataset {ds['name']!r} has no vectors yet: run `assay embed {ds['name']}` first")
        if len(found) > 1:
            raise InvalidInput(f"dataset {ds['name']!r} has vectors in several spaces ({', '.join(found)}): "
                               "name one with space=")
        return found[0]

    def _project_filter(self, project, label, confidence: tuple | None = None) -> np.ndarray:
        """The project's items; with ``label``, those whose final label is it; with
        ``confidence`` ``(low, high)``, those whose final label's confidence is in it
        (the final label's owner, :mod:`assay.engine.resolver`, says both)."""
        from assay import kinds
        from assay.engine import resolver as _resolver

        p = self.get_project(project)
        if label is None and confidence is None:
            with self.db.read() as conn:
                rows = conn.execute(select(tasks_t.c.item_id).where(tasks_t.c.project_id == p["id"]))
                return np.fromiter((r[0] for r in rows), dtype=np.int64)
        kind, (lo, hi) = kinds.of(p), confidence or (0.0, 1.0)
        return np.fromiter((f.item_id for f in _resolver.iter_final(self.db, p) if f.label is not None
                            and (label is None or kind.same(f.label, label))
                            and (confidence is None or (f.confidence is not None and lo <= f.confidence <= hi))),
                           dtype=np.int64)

    def _slice_ids(self, dataset_id: int, name: str) -> np.ndarray:
        """A slice's item ids (sorted). An explicit slice's list never changes
        once saved, so it is kept, by the slice's id and creation time (a
        slice saved again under the name is a new row); a query slice is
        evaluated each time."""
        with self.db.read() as conn:
            row = conn.execute(select(slices_t.c.id, slices_t.c.kind, slices_t.c.created_at)
                               .where(slices_t.c.dataset_id == dataset_id, slices_t.c.name == str(name))).first()
        if row is None or row.kind != "items":  # NotFound, or a query to evaluate now
            return np.asarray(self.slice_items(dataset_id, name), dtype=np.int64)
        key = (row.id, row.created_at)
        cache = self.__dict__.setdefault("_slice_id_cache", {})
        hit = cache.get(key)
        if hit is None:
            hit = np.asarray(self.slice_items(dataset_id, name), dtype=np.int64)
            if len(cache) >= 8:
                cache.clear()
            cache[key] = hit
        return hit

    def _query_vector(self, index: SpaceIndex, items: Sequence[int] | None, text: str | None,
                      ds_ids: np.ndarray) -> np.ndarray:
        if (items is None or len(items) == 0) == (text is None):
            raise InvalidInput("give either items (one or more item ids) or a text query, not both")
        if text is not None:
            if not isinstance(text, str) or not text.strip():
                raise InvalidInput("the text query is empty")
            meta = self.vectors.meta(index.space)
            if meta.get("kind") not in (None, "text"):
                raise InvalidInput(f"space {index.space!r} holds {meta.get('kind')} vectors from "
                                   f"{meta.get('model')}, which embeds no text: search by items instead")
            v = self._query_embedder(meta.get("model") or index.space).embed([text])
            return np.asarray(v, dtype=np.float32)[0]
        try:
            want = np.asarray([int(i) for i in items], dtype=np.int64)
        except (TypeError, ValueError):
            raise InvalidInput("items must be item ids (whole numbers)") from None
        missing = want[~_members(ds_ids, want)]
        if missing.size:
            raise NotFound(f"item {int(missing[0])} is not in this dataset")
        # "more like these": the mean of the items' unit vectors
        return index.vectors(want).mean(axis=0)

    def _query_embedder(self, model: str):
        from assay.learn.embedders import get_embedder

        with _init_lock:
            cache = self.__dict__.setdefault("_query_embedders", {})
            if model not in cache:
                cache[model] = get_embedder(model)
            return cache[model]

    def similar(self, dataset: int | str, *, items: Sequence[int] | None = None, text: str | None = None,
                k: int = 20, space: str | None = None, within: Iterable[int] | None = None,
                project: int | str | None = None, label=None, slice: str | None = None,
                min_confidence: float | None = None, max_confidence: float | None = None,
                tag: str | None = None) -> list[dict]:
        """The ``k`` items of ``dataset`` most like ``items`` (several: like
        the mean of their normalised vectors; the items themselves are left
        out) or like ``text`` (embedded offline with the space's model):
        ``[{"item_id", "score"}]``, best first, score the cosine similarity.

        Filters: ``within`` (item ids), ``slice`` (a slice of the dataset, by
        name), ``tag`` (items with that tag), ``project`` (its items) and with
        it ``label`` (items whose final label is that label) and ``min_confidence``/``max_confidence`` (the
        final label's confidence in that range: the unsure ones). A small filtered
        set is searched exactly; a large one through the index, over-fetched
        and filtered (:mod:`assay.store.index`)."""
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
            raise InvalidInput(f"k must be a whole number from 1 to {MAX_K}, not {k!r}")
        confidence = _confidence_range(min_confidence, max_confidence)
        if (label is not None or confidence is not None) and project is None:
            raise InvalidInput("a label or confidence filter needs the project whose labels to use")
        ds = self.get_dataset(dataset, count=False)
        ds_ids = self._dataset_item_ids(ds)
        index = self.space_index(self._pick_space(ds, ds_ids, space))
        q = self._query_vector(index, items, text, ds_ids)
        index.refresh()
        allowed = ds_ids
        if within is not None:
            allowed = _keep(allowed, np.fromiter((int(i) for i in within), dtype=np.int64))
        if slice is not None:
            allowed = _keep(allowed, self._slice_ids(ds["id"], slice))
        if tag is not None:
            allowed = _keep(allowed, self.tagged_items(ds["id"], tag))
        if project is not None:
            allowed = _keep(allowed, self._project_filter(project, label, confidence))
        if _covers(allowed, index.keys):
            allowed = None  # the whole space qualifies: no filter
        exclude = None if items is None else np.asarray([int(i) for i in items], dtype=np.int64)
        keys, scores = index.search(q[None, :], k, allowed=allowed, exclude=exclude)
        return [{"item_id": int(i), "score": round(float(s), 6)}
                for i, s in zip(keys[0], scores[0]) if i >= 0]

    def describe_items(self, item_ids: Sequence[int]) -> dict[int, dict]:
        """``{item_id: {kind, snippet, media_type, content_url}}`` for showing results."""
        ids = [int(i) for i in item_ids]
        if not ids:
            return {}
        with self.db.read() as conn:
            rows = conn.execute(select(items_t.c.id, items_t.c.kind, items_t.c.text, items_t.c.media_type)
                                .where(items_t.c.id.in_(ids))).all()
        return {r.id: {"kind": r.kind, "snippet": (r.text or "")[:SNIPPET] if r.kind == "text" else None,
                       "media_type": r.media_type, "content_url": f"/api/items/{r.id}/content"} for r in rows}


def _confidence_range(low, high) -> tuple[float, float] | None:
    """``(low, high)`` of a confidence filter (None: no filter); each a number in [0, 1]."""
    if low is None and high is None:
        return None
    for name, v in (("min_confidence", low), ("max_confidence", high)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or not 0.0 <= v <= 1.0):
            raise InvalidInput(f"{name} must be a number from 0 to 1, not {v!r}")
    lo, hi = 0.0 if low is None else float(low), 1.0 if high is None else float(high)
    if lo > hi:
        raise InvalidInput(f"min_confidence {lo} is above max_confidence {hi}")
    return lo, hi
