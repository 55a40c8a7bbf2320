"""Datasets and their items, as stored.

Functions here take a connection and plain values, never the workspace. A
dataset is a named set of items (texts or images with their metadata);
projects label it. Who may read which dataset follows the projects: admins
every one, everyone else those of the projects they are members of.
Importing items is :mod:`assay.engine.imports`.
"""

from __future__ import annotations

import time

from sqlalchemy import String, cast, func, insert, select, text

from assay.errors import InvalidInput
from assay.store.schema import datasets, imports, items, members, projects, tasks

_DELETE_IMPORTS = text("DELETE FROM imports WHERE dataset_id = :d")
#: the kinds of item there are (the items table's check constraint)
ITEM_KINDS = ("text", "image")
# the kind is written into each statement, not bound: PostgreSQL's generic plan for a bound
# kind cannot know that one is absent and scans every item (measured: 150-300 ms at 1M)
_HAS_KIND = {"text": text("SELECT 1 FROM items WHERE dataset_id = :d AND kind = 'text' LIMIT 1"),
             "image": text("SELECT 1 FROM items WHERE dataset_id = :d AND kind = 'image' LIMIT 1")}
_ITEM_CONTENT = text("SELECT kind, text FROM items WHERE id = :i")
# Whether a user is a member of a project that has the item among its tasks.
_SEES_ITEM = text(
    "SELECT 1 FROM tasks t JOIN members m ON m.project_id = t.project_id "
    "WHERE t.item_id = :i AND m.user_id = :u LIMIT 1"
)


def _row(r) -> dict:
    # Plain str keys: SQLAlchemy's keys are a str subclass that orjson refuses.
    return {str(k): v for k, v in r._mapping.items()}


def check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("dataset name must be 1–200 characters")
    return name


def create(conn, name: str) -> int:
    """Insert an empty dataset; a taken name raises the database's IntegrityError."""
    return conn.execute(insert(datasets).values(name=name, created_at=time.time())
                        .returning(datasets.c.id)).scalar_one()


def load(conn, dataset: int | str, *, count: bool = True) -> dict | None:
    """A dataset (by id or name) with its ``item_count`` (not with ``count``
    False), or None; with the count come its ``item_kinds``. The count is the sum of its imports' ``added``: every
    item comes in through an import (:func:`assay.formats.ingest`, which
    counts what it added in the same transaction) and items leave only with
    their dataset, so the imports are the counter's owner and no request
    counts a million rows."""
    col = datasets.c.id if isinstance(dataset, int) else datasets.c.name
    r = conn.execute(select(datasets).where(col == dataset)).first()
    if r is None:
        return None
    if not count:
        return _row(r)
    n = conn.execute(select(func.coalesce(func.sum(imports.c.added), 0))
                     .where(imports.c.dataset_id == r.id)).scalar_one()
    return {**_row(r), "item_count": int(n), "item_kinds": item_kinds(conn, r.id)}


def _member_datasets(user_id: int):
    return (select(projects.c.dataset_id).join(members, members.c.project_id == projects.c.id)
            .where(members.c.user_id == user_id))


def dataset_ids(conn, user: dict | None) -> list[int]:
    """Every dataset's id; with ``user`` (not an admin), those of their projects."""
    q = select(datasets.c.id).order_by(datasets.c.id)
    if user is not None and user["role"] != "admin":
        q = q.where(datasets.c.id.in_(_member_datasets(user["id"])))
    return list(conn.execute(q).scalars())


def in_members_projects(conn, dataset_id: int, user_id: int) -> bool:
    """Whether a project the user is a member of labels the dataset (who
    may read it, but for admins, who read every one)."""
    return conn.execute(_member_datasets(user_id).where(projects.c.dataset_id == dataset_id)
                        .limit(1)).first() is not None


def drop_without_projects(conn, dataset_id: int, journal: list) -> bool:
    """Delete a dataset with its items and imports, unless a project uses
    it; the keys of its blobs go to ``journal`` (a blob-store session, whose
    sweep removes them once no item references them). Returns whether it went."""
    if conn.execute(select(projects.c.id).where(projects.c.dataset_id == dataset_id)).first():
        return False
    for key in conn.execute(select(items.c.blob).where(items.c.dataset_id == dataset_id,
                                                       items.c.blob.is_not(None))).scalars():
        journal.append(key)
    conn.execute(items.delete().where(items.c.dataset_id == dataset_id))
    conn.execute(_DELETE_IMPORTS, {"d": dataset_id})
    conn.execute(datasets.delete().where(datasets.c.id == dataset_id))
    return True


def item_kinds(conn, dataset_id: int) -> list[str]:
    """The kinds of item (``text``, ``image``) the dataset holds: one seek
    of ``ix_items_dataset_kind`` per kind, whatever the dataset's size."""
    return [k for k in ITEM_KINDS if conn.execute(_HAS_KIND[k], {"d": dataset_id}).first() is not None]


# ------------------------------------------------------------ items

#: items a filtered page looks at, at most, per request (at 1M items: ~30-80 ms on a shared 2-core machine)
SCAN_ROWS = 20_000


def list_items(conn, dataset_id: int, *, after: int | None, limit: int, q: str | None = None,
               meta: dict[str, str] | None = None, scan: int | None = None) -> tuple[list[dict], int | None, int | None]:
    """A keyset page of items in id order: ``(items, next_after,
    scanned_to)``; ``limit`` is clamped to 1–1000. ``q`` keeps items whose
    text contains it (case-insensitive), ``meta`` those whose metadata has
    each key equal to the value (compared as text). Walks the (dataset_id,
    id) index and stops at ``limit`` matches: no count, no offset.

    A filtered page looks at no more than the next ``scan`` items (default
    :data:`SCAN_ROWS`): when
    they hold fewer than ``limit`` matches and the dataset goes on, the page
    is short, ``scanned_to`` is the last id looked at and ``next_after`` is
    it (ask again to keep looking), so a filter that matches little never
    walks a million rows in one request. Else ``scanned_to`` is None."""
    limit = max(1, min(int(limit), 1000))
    scan = SCAN_ROWS if scan is None else scan
    cond = [items.c.dataset_id == dataset_id, items.c.id > (after or 0)]
    filtered = False
    if q:
        cond.append(items.c.text.icontains(q, autoescape=True))
        filtered = True
    for key, value in (meta or {}).items():
        cond.append(cast(items.c.meta[key].as_string(), String) == value)
        filtered = True
    bound = None
    if filtered:  # the id of the scan-th next item, an index-only walk; None: fewer items are left
        bound = conn.execute(select(items.c.id).where(items.c.dataset_id == dataset_id, items.c.id > (after or 0))
                             .order_by(items.c.id).offset(max(1, int(scan)) - 1).limit(1)).scalar()
        if bound is not None:
            cond.append(items.c.id <= bound)
    sel = select(items).where(*cond).order_by(items.c.id).limit(limit)
    rows = [_row(r) for r in conn.execute(sel)]
    if len(rows) == limit:
        return rows, rows[-1]["id"], None
    return rows, bound, bound


def list_imports(conn, dataset_id: int, *, limit: int = 200) -> list[dict]:
    """The dataset's imports, newest first, with their provenance (source,
    license, consent), counts and the ``kind`` of what they added (one
    indexed lookup each: an import is all texts or all images; None when it
    added nothing)."""
    kind = (select(items.c.kind).where(items.c.import_id == imports.c.id).limit(1)
            .scalar_subquery().label("kind"))
    sel = (select(imports.c.id, imports.c.source_uri, imports.c.source, imports.c.license,
                  imports.c.consent, imports.c.added, imports.c.skipped, imports.c.created_at, kind)
           .where(imports.c.dataset_id == dataset_id).order_by(imports.c.id.desc()).limit(limit))
    return [_row(r) for r in conn.execute(sel)]


def get_item(conn, item_id: int) -> dict | None:
    r = conn.execute(select(items).where(items.c.id == item_id)).first()
    return None if r is None else _row(r)


def get_items(conn, item_ids: list[int]) -> dict[int, dict]:
    """The items with these ids that exist: id -> row (one query)."""
    if not item_ids:
        return {}
    return {r.id: _row(r) for r in conn.execute(select(items).where(items.c.id.in_(item_ids)))}


def members_items(conn, item_ids: list[int], user_id: int) -> set[int]:
    """Those of ``item_ids`` that are tasks of a project the user is a member
    of: :func:`in_members_tasks` for many items in one query."""
    if not item_ids:
        return set()
    q = (select(tasks.c.item_id).distinct().join(members, members.c.project_id == tasks.c.project_id)
         .where(tasks.c.item_id.in_(item_ids), members.c.user_id == user_id))
    return set(conn.execute(q).scalars())


def check_fits(conn, label_kind, label, item_id: int) -> None:
    """Refuse a (validated) label that does not fit its item, for kinds that
    check answers against their item (spans: inside the text); one lookup by
    key, none for other kinds."""
    if not label_kind.checks_item:
        return
    r = conn.execute(_ITEM_CONTENT, {"i": item_id}).first()
    label_kind.check_item(label, {} if r is None else {"kind": r.kind, "text": r.text})


def items_by_text(conn, dataset_id: int, texts: list[str]) -> dict[str, int]:
    """The dataset's text items whose text is one of ``texts``: text -> item
    id (by content hash, an indexed lookup)."""
    from assay.formats.ingest import content_hash

    by_hash = {content_hash(t): t for t in texts}
    out: dict[str, int] = {}
    keys = list(by_hash)
    for i in range(0, len(keys), 500):
        q = select(items.c.id, items.c.content_hash).where(
            items.c.dataset_id == dataset_id, items.c.kind == "text", items.c.content_hash.in_(keys[i:i + 500]))
        out.update({by_hash[h]: iid for iid, h in conn.execute(q)})
    return out


def referenced_blobs(conn, keys: list[str]) -> list[str]:
    """Those of ``keys`` some item references."""
    return list(conn.execute(select(items.c.blob).where(items.c.blob.in_(keys))).scalars())


def in_members_tasks(conn, item_id: int, user_id: int) -> bool:
    """Whether the item is a task of a project the user is a member of (who
    may see it, but for admins, who see every one)."""
    return conn.execute(_SEES_ITEM, {"i": item_id, "u": user_id}).first() is not None
