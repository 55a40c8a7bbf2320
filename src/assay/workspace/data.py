"""Datasets, imports (files, data frames, zips), items and embeddings.

Relies on the core (:class:`assay.workspace.core.Core`) for ``db``,
``blobs`` and ``vectors``; keeps no cache.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from assay.engine import datasets as _datasets
from assay.engine import imports as _imports
from assay.errors import Conflict, InvalidInput, NotFound
from assay.formats import ingest


class Data:
    """What is labeled: datasets, their items and the items' vectors."""

    def create_dataset(self, name: str) -> dict:
        name = _datasets.check_name(name)
        try:
            with self.db.write() as conn:
                did = _datasets.create(conn, name)
        except IntegrityError:
            raise Conflict(f"dataset {name!r} already exists") from None
        return self.get_dataset(did)

    def get_dataset(self, dataset: int | str, *, count: bool = True) -> dict:
        """The dataset (by id or name); with ``count``, its ``item_count``."""
        with self.db.read() as conn:
            ds = _datasets.load(conn, dataset, count=count)
        if ds is None:
            raise NotFound(f"dataset {dataset!r} does not exist")
        return ds

    def dataset(self, dataset: int | str, create: bool = False) -> dict:
        try:
            return self.get_dataset(dataset)
        except NotFound:
            if create and isinstance(dataset, str):
                return self.create_dataset(dataset)
            raise

    def list_datasets(self, user: dict | None = None) -> list[dict]:
        """Every dataset; with ``user`` (not an admin), only those of their projects."""
        with self.db.read() as conn:
            ids = _datasets.dataset_ids(conn, user)
        return [self.get_dataset(i) for i in ids]

    def require_dataset_access(self, dataset: int | str, user: dict, *, count: bool = True) -> dict:
        """The dataset, if ``user`` may read it: admins every one, others only
        the datasets of projects they are members of (else reported missing);
        with ``count``, its ``item_count``."""
        ds = self.get_dataset(dataset, count=count)
        if user["role"] != "admin":
            with self.db.read() as conn:
                ok = _datasets.in_members_projects(conn, ds["id"], user["id"])
            if not ok:
                raise NotFound(f"dataset {dataset!r} does not exist")
        return ds

    def _drop_dataset_without_projects(self, dataset_id: int) -> None:
        """Undo a dataset just made (quickstart's, when a later step fails):
        its items, imports and now unreferenced blobs. Not if a project uses it."""
        with self.blobs.session() as journal:  # its blobs go through the sweep's reference check
            with self.db.write() as conn:
                dropped = _datasets.drop_without_projects(conn, dataset_id, journal)
        if dropped:
            self.sweep_litter()

    def sweep_litter(self) -> int:
        """Remove what an import killed mid-way left: blobs no item references
        (written before the rows that never committed) and half-written blob
        files. Never touches a running import's blobs; runs when a workspace
        opens. Returns the number of blobs removed."""
        return _imports.sweep_litter(self.db, self.blobs)

    # ------------------------------------------------------------ ingest

    def import_file(self, dataset: int | str, path: str | os.PathLike, *, text_column: str = "text",
                    source: str | None = None, license: str | None = None, consent: str | None = None,
                    progress: bool = False, on_invalid: str = "error", create: bool = False,
                    source_uri: str | None = None) -> dict:
        """Import a CSV / JSONL / Parquet file of texts, a zip or a folder of images.

        ``create=True`` makes the dataset (by name) if it does not exist; if
        the import then fails, the new dataset is removed again.

        Re-importing the same content adds nothing. The import is all or
        nothing. Returns ``{"added", "skipped", "dataset_id", "import_id"}``.
        """
        try:
            target = self.get_dataset(dataset)["id"]
        except NotFound:
            if not (create and isinstance(dataset, str)):
                raise
            target = _datasets.check_name(dataset)  # the import creates it, in its own transaction
        return _imports.import_path(self.db, self.blobs, target, Path(path), text_column=text_column,
                                    source=source, license=license, consent=consent, progress=progress,
                                    on_invalid=on_invalid, source_uri=source_uri)

    def import_dataframe(self, dataset: int | str, df, *, text_column: str = "text",
                         source: str | None = None, license: str | None = None,
                         consent: str | None = None, progress: bool = False) -> dict:
        """Import a pandas DataFrame with a text column; other columns become metadata."""
        ds = self.dataset(dataset)
        prov = ingest.Provenance(source or "dataframe", license, consent)
        return _imports.import_dataframe(self.db, ds["id"], df, text_column=text_column, prov=prov,
                                         progress=progress)

    def import_zip(self, dataset: int | str, path: str | os.PathLike, *, source: str | None = None,
                   license: str | None = None, consent: str | None = None, progress: bool = False,
                   on_invalid: str = "error") -> dict:
        """Import a zip archive of images (with an optional ``metadata.csv``).

        Bounded against zip bombs (:class:`assay.formats.ingest.Limits`): entry count,
        declared and actually unpacked size, each member's compression ratio.
        """
        p = Path(path)
        return _imports.import_zip(self.db, self.blobs, self.dataset(dataset)["id"], p,
                                   ingest.Provenance(source or p.name, license, consent), progress, on_invalid)

    # ------------------------------------------------------------ items

    def list_items(self, dataset: int | str, *, after: int | None = None, limit: int = 100,
                   q: str | None = None, meta: dict[str, str] | None = None,
                   scanned: dict | None = None) -> tuple[list[dict], int | None]:
        """A keyset page of items: ``(items, next_after)``; ``q`` filters on
        the text (contains, case-insensitive), ``meta`` on metadata values
        (key -> value, compared as text). A filtered page looks at the next
        :data:`assay.engine.datasets.SCAN_ROWS` items at most: it may be
        short with a ``next_after`` (keep asking); pass a dict as
        ``scanned`` to learn ``scanned_to``, the last id looked at when the
        page stopped there (else None)."""
        ds = self.get_dataset(dataset, count=False)
        q, meta = _check_item_filter(q, meta)
        with self.db.read() as conn:
            rows, nxt, upto = _datasets.list_items(conn, ds["id"], after=after, limit=limit, q=q, meta=meta)
        if scanned is not None:
            scanned.update(scanned_to=upto, scan_rows=_datasets.SCAN_ROWS)
        return rows, nxt

    def list_imports(self, dataset: int | str) -> list[dict]:
        """The dataset's imports (newest first) with their provenance: source,
        license, consent, what was added and its kind."""
        ds = self.get_dataset(dataset, count=False)
        with self.db.read() as conn:
            return _datasets.list_imports(conn, ds["id"])

    def get_item(self, item_id: int) -> dict:
        with self.db.read() as conn:
            it = _datasets.get_item(conn, item_id)
        if it is None:
            raise NotFound(f"item {item_id} does not exist")
        return it

    #: ids one :meth:`items_for` call may ask for
    items_batch_max = 100

    def items_for(self, item_ids: list[int], user: dict) -> dict:
        """Several items at once, for ``user``, each seen exactly as
        :meth:`can_see_item` and :meth:`get_item` would one by one: ``{"items":
        [...], "missing": [...]}`` in the order asked (duplicates once); an
        id that does not exist or that the user may not see is ``missing``
        (the two are not told apart). At most :attr:`items_batch_max` ids."""
        ids = list(dict.fromkeys(item_ids))
        if not ids:
            raise InvalidInput("give at least one item id")
        if len(ids) > self.items_batch_max:
            raise InvalidInput(f"at most {self.items_batch_max} item ids at once, not {len(ids)}")
        if any(isinstance(i, bool) or not isinstance(i, int) or i < 1 for i in ids):
            raise InvalidInput("item ids are whole numbers from 1")
        with self.db.read() as conn:
            found = _datasets.get_items(conn, ids)
            seen = set(found) if user["role"] == "admin" else _datasets.members_items(conn, list(found), user["id"])
        return {"items": [found[i] for i in ids if i in seen], "missing": [i for i in ids if i not in seen]}

    def item_content(self, item_id: int) -> tuple[bytes, str]:
        """The raw bytes and media type of an item (image bytes or UTF-8 text)."""
        it = self.get_item(item_id)
        if it["kind"] == "image":
            return self.blobs.get(it["blob"]), it["media_type"]
        return (it["text"] or "").encode(), "text/plain; charset=utf-8"

    def can_see_item(self, item_id: int, user: dict) -> bool:
        """Admins see every item; reviewers and annotators only items of their projects."""
        if user["role"] == "admin":
            return True
        with self.db.read() as conn:
            return _datasets.in_members_tasks(conn, item_id, user["id"])

    # ------------------------------------------------------------ embeddings

    def embed(self, dataset: int | str, *, model: str | None = None, embedder=None,
              progress: bool = True, **model_kw) -> dict:
        """Embed the dataset's items that have no vector yet in the model's
        space (``model``: a name for :func:`assay.learn.get_embedder`; default
        the text or image model matching the dataset's items) and store them
        under ``vectors/``. Returns counts, the space and the seconds taken."""
        from assay.learn.embedding import embed_dataset, pending
        from assay.learn.embedders import get_embedder, model_name

        ds = self.dataset(dataset)
        if embedder is None:
            with self.db.read() as conn:
                found = _datasets.item_kinds(conn, ds["id"])
            if not found:
                raise InvalidInput(f"dataset {ds['name']!r} has no items to embed")
            kind = "image" if found == ["image"] else "text"
            done = pending(self, ds["id"], model_name(model, kind), kind)
            if done is not None:
                return done  # nothing new: don't load the model
            embedder = get_embedder(model, kind=kind, **model_kw)
        return embed_dataset(self, ds["id"], embedder, progress=progress)

    def vectors_for(self, space: str, item_ids=None):
        """``(item_ids, vectors)`` stored in an embedding space."""
        return self.vectors.load(space, item_ids)


_META_KEY = re.compile(r"^[A-Za-z0-9_. -]{1,64}$")


def _check_item_filter(q: str | None, meta: dict[str, str] | None) -> tuple[str | None, dict[str, str]]:
    """The item filter, checked: a text of at most 200 characters, at most 5
    metadata keys of letters, digits, ``_ . -`` and spaces."""
    q = (q or "").strip() or None
    if q is not None and len(q) > 200:
        raise InvalidInput("the text filter q is longer than 200 characters")
    meta = dict(meta or {})
    if len(meta) > 5:
        raise InvalidInput(f"at most 5 metadata filters, got {len(meta)}")
    for key, value in meta.items():
        if not _META_KEY.match(key):
            raise InvalidInput(f"metadata filter key {key!r}: use 1-64 letters, digits, _ . - or spaces")
        if len(str(value)) > 200:
            raise InvalidInput(f"metadata filter {key!r}: the value is longer than 200 characters")
    return q, {k: str(v) for k, v in meta.items()}
