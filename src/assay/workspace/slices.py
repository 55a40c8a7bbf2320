"""Slices (saved, named sets of a dataset's items) and sending a set of
items to the front of a project's hand-out queue.

Relies on the data part for datasets, the search part for evaluating a
query slice (:meth:`Search.similar`) and the projects part for projects.
Stored by :mod:`assay.engine.slices`; task priorities are written by
:func:`assay.engine.ledger.prioritize_items`. No per-process state.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.exc import IntegrityError

from assay import audit as _audit
from assay.engine import ledger as _ledger
from assay.engine import slices as _slices
from assay.engine import tags as _tags
from assay.errors import Conflict, InvalidInput, NotFound

#: the priority :meth:`Slices.prioritize` gives when none is named
DEFAULT_PRIORITY = 10.0


class Slices:
    """Create, list, show, delete and evaluate slices; prioritize items."""

    def create_slice(self, dataset: int | str, name: str, *, items: Iterable[int] | None = None,
                     query: dict | None = None) -> dict:
        """A slice of ``dataset``: either ``items`` (explicit item ids, all of
        the dataset) or ``query`` (``similar_to`` item ids or ``text``, with
        ``k`` and optionally ``space``; and/or ``meta`` ``{key: value}``
        filters and/or a ``tag``), evaluated when used. Names are unique per dataset."""
        ds = self.get_dataset(dataset)
        name = _slices.check_name(name)
        if (items is None) == (query is None):
            raise InvalidInput("give a slice either items (item ids) or a query, not both")
        if query is not None:
            query = _slices.check_query(query)
            if "similar_to" in query:  # the query's own items must be the dataset's
                with self.db.read() as conn:
                    _slices.check_items(conn, ds["id"], query["similar_to"])
        try:
            with self.db.write() as conn:
                if _slices.find(conn, ds["id"], name) is not None:
                    raise Conflict(f"dataset {ds['name']!r} already has a slice named {name!r}")
                ids = None if items is None else _slices.check_items(conn, ds["id"], list(items))
                sid = _slices.create(conn, ds["id"], name, items=ids, query=query,
                                     by=_audit.actor()["username"])
                _audit.record(conn, "slice.create", target_kind="slice", target_id=sid, target=name,
                              details={"dataset_id": ds["id"], "kind": "items" if ids is not None else "query",
                                       **({"items": len(ids)} if ids is not None else {"query": query})})
        except IntegrityError:
            raise Conflict(f"dataset {ds['name']!r} already has a slice named {name!r}") from None
        return self.get_slice(ds["id"], name)

    def list_slices(self, dataset: int | str) -> list[dict]:
        ds = self.get_dataset(dataset)
        with self.db.read() as conn:
            return _slices.list_for(conn, ds["id"])

    def get_slice(self, dataset: int | str, name: str) -> dict:
        ds = self.get_dataset(dataset)
        with self.db.read() as conn:
            s = _slices.find(conn, ds["id"], str(name))
        if s is None:
            raise NotFound(f"dataset {ds['name']!r} has no slice named {name!r}")
        return s

    def delete_slice(self, dataset: int | str, name: str) -> None:
        s = self.get_slice(dataset, name)
        with self.db.write() as conn:
            _slices.remove(conn, s["id"])
            _audit.record(conn, "slice.delete", target_kind="slice", target_id=s["id"], target=s["name"],
                          details={"dataset_id": s["dataset_id"]})

    def slice_items(self, dataset: int | str, name: str) -> list[int]:
        """The slice's item ids, sorted: an explicit slice's list, or its
        query evaluated now (tag and metadata filters first, then the k most
        similar among the matching items)."""
        s = self.get_slice(dataset, name)
        if s["kind"] == "items":
            with self.db.read() as conn:
                return _slices.explicit_items(conn, s["id"])
        q = s["query"] or {}
        within = None
        if q.get("tag") is not None:
            with self.db.read() as conn:
                within = _tags.items_with(conn, s["dataset_id"], q["tag"])
            if not within:
                return []
        if q.get("meta"):
            matches = _slices.meta_matches(self.db, s["dataset_id"], q["meta"])
            within = list(matches) if within is None else sorted(set(within).intersection(matches))
            if not within:
                return []
        if "similar_to" not in q and "text" not in q:
            return sorted(within or [])
        hits = self.similar(s["dataset_id"], items=q.get("similar_to"), text=q.get("text"), k=q["k"],
                            space=q.get("space"), within=within)
        return sorted(h["item_id"] for h in hits)

    def _item_set(self, dataset_id: int, slice_or_items) -> list[int]:
        if isinstance(slice_or_items, str):
            return self.slice_items(dataset_id, slice_or_items)
        if isinstance(slice_or_items, dict) and "name" in slice_or_items:
            return self.slice_items(dataset_id, slice_or_items["name"])
        with self.db.read() as conn:
            return _slices.check_items(conn, dataset_id, list(slice_or_items or []))

    def prioritize(self, project: int | str, slice_or_items, *, priority: float = DEFAULT_PRIORITY) -> dict:
        """Send a slice (its name) or a list of item ids (of the project's
        dataset) to the front of the project's hand-out queue: their tasks
        get ``priority`` (higher goes first; the others are usually 0; 0
        sends them back). Returns ``{"items", "tasks"}``: how many items were
        asked for and how many tasks changed."""
        p = self.get_project(project)
        if isinstance(priority, bool) or not isinstance(priority, (int, float)) or not -1e6 <= priority <= 1e6:
            raise InvalidInput(f"priority must be a number from -1000000 to 1000000, not {priority!r}")
        ids = self._item_set(p["dataset_id"], slice_or_items)
        with self.db.write() as conn:
            n = _ledger.prioritize_items(conn, p["id"], ids, float(priority))
            _audit.record(conn, "queue.prioritize", target_kind="project", target_id=p["id"], target=p["name"],
                          details={"items": len(ids), "tasks": n, "priority": float(priority),
                                   **({"slice": slice_or_items} if isinstance(slice_or_items, str) else {})})
        return {"items": len(ids), "tasks": n, "priority": float(priority)}
