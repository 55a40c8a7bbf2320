"""Tags on items: put on and take off a set of a dataset's items, read an
item's tags, list a dataset's tags and the items with one.

Relies on the data part for datasets and on the slices part for checking
that item ids belong to the dataset. Stored by :mod:`assay.engine.tags`.
Staff-only: the HTTP layer keeps annotators out, and nothing an annotator
is served reads tags. No per-process state.
"""

from __future__ import annotations

from collections.abc import Iterable

from assay import audit as _audit
from assay.engine import slices as _slices
from assay.engine import tags as _tags


class Tags:
    """Tag and untag items; read tags."""

    def _tag_args(self, dataset: int | str, items: Iterable[int], tag) -> tuple[dict, list[int], str]:
        ds = self.get_dataset(dataset)
        tag = _tags.check_tag(tag)
        ids = _slices.parse_ids(list(items or []), "items")
        _tags.check_count(ids)
        with self.db.read() as conn:
            ids = _slices.check_items(conn, ds["id"], ids)
        return ds, ids, tag

    def tag_items(self, dataset: int | str, items: Iterable[int], tag: str) -> dict:
        """Put ``tag`` (1–64 characters) on ``items`` (ids of the dataset):
        ``{"tag", "items", "added"}`` (already tagged items stay as they are)."""
        ds, ids, tag = self._tag_args(dataset, items, tag)
        with self.db.write() as conn:
            n = _tags.add(conn, ids, tag, by=_audit.actor()["username"])
            _audit.record(conn, "tag.add", target_kind="dataset", target_id=ds["id"], target=ds["name"],
                          details={"tag": tag, "items": len(ids), "added": n})
        return {"tag": tag, "items": len(ids), "added": n}

    def untag_items(self, dataset: int | str, items: Iterable[int], tag: str) -> dict:
        """Take ``tag`` off ``items``: ``{"tag", "items", "removed"}``."""
        ds, ids, tag = self._tag_args(dataset, items, tag)
        with self.db.write() as conn:
            n = _tags.remove(conn, ids, tag)
            _audit.record(conn, "tag.remove", target_kind="dataset", target_id=ds["id"], target=ds["name"],
                          details={"tag": tag, "items": len(ids), "removed": n})
        return {"tag": tag, "items": len(ids), "removed": n}

    def check_dataset_items(self, dataset: int | str, items: Iterable[int]) -> list[int]:
        """The ids (sorted, unique), all items of ``dataset``, else InvalidInput."""
        ds = self.get_dataset(dataset)
        with self.db.read() as conn:
            return _slices.check_items(conn, ds["id"], list(items))

    def item_tags(self, item_ids: Iterable[int]) -> dict[int, list[str]]:
        """``{item_id: [tags]}`` for those of ``item_ids`` that have tags (staff only)."""
        ids = [int(i) for i in item_ids]
        if not ids:
            return {}
        with self.db.read() as conn:
            return _tags.of_items(conn, ids)

    def list_tags(self, dataset: int | str) -> list[dict]:
        """The dataset's tags: ``[{"tag", "items"}]``, by tag."""
        ds = self.get_dataset(dataset)
        with self.db.read() as conn:
            return _tags.in_dataset(conn, ds["id"])

    def tagged_items(self, dataset: int | str, tag: str) -> list[int]:
        """The dataset's items with ``tag``, sorted (an unknown tag: none)."""
        ds = self.get_dataset(dataset)
        tag = _tags.check_tag(tag)
        with self.db.read() as conn:
            return _tags.items_with(conn, ds["id"], tag)
