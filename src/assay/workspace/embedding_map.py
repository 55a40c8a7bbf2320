"""The embedding map: a dataset's items placed in 2-D
(:func:`assay.learn.projection.project`) from one embedding space,
computed in the background by :mod:`assay.jobs.curation` and cached beside
the space's shards as ``map-<dataset id>-<method>.npz`` (item ids,
float32 coordinates, the version they were computed for).

The version is a digest of the space's shard list and the dataset's item
ids with a vector there: adding items (or embedding again) makes the cache
stale, and the next request computes the map again.

Relies on the search part for ``space_index``, ``_dataset_item_ids`` and
``_pick_space``.
"""

from __future__ import annotations

import json

import numpy as np

from assay.errors import InvalidInput, NotFound
from assay.jobs import curation as _jobs
from assay.learn.projection import METHODS


class EmbeddingMap:
    """2-D maps of a dataset's embeddings."""

    def _map_inputs(self, dataset, space, method):
        if method not in METHODS:
            raise InvalidInput(f"unknown projection method {method!r} (one of {', '.join(METHODS)})")
        ds = self.dataset(dataset)
        ds_ids = self._dataset_item_ids(ds)
        space = self._pick_space(ds, ds_ids, space)
        index = self.space_index(space)
        sig = index._signature()
        ids = _jobs.with_vectors(ds_ids, index.stored_ids(sig))
        if ids.size == 0:
            raise NotFound(f"dataset {ds['name']!r} has no vectors yet: run `assay embed {ds['name']}` first")
        path = self.vectors.root / space / f"map-{ds['id']}-{method}.npz"
        return ds, space, index, ids, _jobs.input_version(sig, ids), path

    def embedding_map(self, dataset: int | str, *, space: str | None = None, method: str = "umap",
                      wait: bool = False, start: bool = True) -> dict:
        """Status of the dataset's map (``state``: queued, running, done,
        failed, or missing with ``start=False``), starting its computation
        in the background when the cache is missing or stale; ``wait``
        blocks until it ends."""
        ds, space, index, ids, version, path = self._map_inputs(dataset, space, method)
        key = ("map", ds["id"], space, method)

        def cached():
            return _jobs.cached_version(path)

        def compute(progress):
            from assay.learn.projection import project
            index.refresh()
            progress(0.1)
            return project(index.vectors(ids), method)

        def store(xy):
            _jobs.atomic_save(path, lambda f: np.savez(f, ids=ids, xy=xy, version=np.array(version)))

        st = _jobs.REGISTRY.request(key, version, cached, compute, store, start=start, wait=wait)
        return {**st, "dataset": ds["id"], "space": space, "method": method, "count": int(ids.size),
                "path": str(path)}

    def embedding_map_points(self, dataset: int | str, *, space: str | None = None,
                             method: str = "umap") -> tuple[np.ndarray, np.ndarray]:
        """``(ids, xy)`` of the current map (int64 ``(n,)``, float32 ``(n, 2)``);
        NotFound while it is missing or stale (start it with :meth:`embedding_map`)."""
        ds, _space, _index, _ids, version, path = self._map_inputs(dataset, space, method)
        try:
            with np.load(path) as z:
                if str(z["version"]) == version:
                    return z["ids"].astype(np.int64), z["xy"].astype(np.float32)
        except (OSError, KeyError, ValueError):
            pass
        raise NotFound(f"the embedding map of dataset {ds['name']!r} is not computed yet (or is stale): "
                       f"run `assay map {ds['name']}`")

    def embedding_map_colours(self, dataset: int | str, ids: np.ndarray, *, project: int | str | None = None) -> dict:
        """What a map can be coloured by, parallel to ``ids``: ``slices``
        (``{name: [positions in ids]}`` of the dataset's slices) and, with
        ``project``, ``classes`` (the final labels seen, as JSON text),
        ``label`` (index into ``classes``, -1 without one) and
        ``confidence`` (None without one), from the final labels' owner
        (:mod:`assay.engine.resolver`), and ``errors`` (positions of the
        items flagged as probable label errors by
        :mod:`assay.engine.label_errors`, where the project's kind has them)."""
        ds = self.dataset(dataset)
        ids = np.asarray(ids, dtype=np.int64)
        out: dict = {"slices": {}}
        for s in self.list_slices(ds["id"]):
            member = np.asarray(self.slice_items(ds["id"], s["name"]), dtype=np.int64)
            out["slices"][s["name"]] = np.nonzero(np.isin(ids, member))[0].tolist()
        if project is not None:
            from assay.engine import resolver as _resolver

            p = self.get_project(project)
            pos = {int(i): n for n, i in enumerate(ids.tolist())}
            classes: dict[str, int] = {}
            label, conf = [-1] * ids.size, [None] * ids.size
            for f in _resolver.iter_final(self.db, p):
                n = pos.get(int(f.item_id))
                if n is None or f.label is None:
                    continue
                key = json.dumps(f.label, sort_keys=True)
                label[n] = classes.setdefault(key, len(classes))
                conf[n] = None if f.confidence is None else round(float(f.confidence), 4)
            out.update(classes=list(classes), label=label, confidence=conf)
            # probable label errors (flagged), where the project's kind has them
            try:
                flagged = [r["item_id"] for r in self.label_errors(p["id"], limit=None)["items"] if r["flagged"]]
            except InvalidInput:
                flagged = None
            if flagged is not None:
                out["errors"] = sorted(pos[i] for i in flagged if i in pos)
        return out
