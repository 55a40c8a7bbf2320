"""Slices: saved, named sets of a dataset's items, as stored.

A slice is a name (unique within its dataset) and a definition, one of:

- ``items``: an explicit list of item ids (a search's selection), kept in
  ``slice_items``;
- ``query``: a stored query, evaluated each time the slice is used (by
  :meth:`assay.workspace.Workspace.slice_items`): ``similar_to`` (item ids)
  or ``text`` with ``k`` (and optionally ``space``) for "the k items most
  like these", and/or ``meta`` (``{key: value}``: items whose metadata has
  each key at that value) and/or ``tag`` (items with that tag,
  :mod:`assay.engine.tags`). With filters only, every matching item.

Functions here take a connection and plain values, never the workspace;
:func:`check_query` and :func:`check_items` refuse bad input before
anything is written.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from sqlalchemy import bindparam, delete, insert, select, text

from assay.engine.tags import check_tag
from assay.errors import InvalidInput
from assay.store.index import MAX_K
from assay.store.schema import items, slice_items, slices

MAX_ITEMS = 1_000_000  # items in one explicit slice
MAX_META = 20  # metadata filters in one query
_QUERY_KEYS = {"similar_to", "text", "k", "space", "meta", "tag"}
_ITEMS_IN_DATASET = text("SELECT id FROM items WHERE dataset_id = :d AND id IN :ids").bindparams(
    bindparam("ids", expanding=True))


def check_name(name) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > 200:
        raise InvalidInput("a slice name must be 1–200 characters")
    return name


def _ids(values, what: str) -> list[int]:
    if isinstance(values, (str, bytes, dict)) or not isinstance(values, Sequence):
        raise InvalidInput(f"{what} must be a list of item ids")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int):
            if not (isinstance(v, str) and v.strip().isdigit()):
                raise InvalidInput(f"{what} must be item ids (whole numbers), not {v!r}")
            v = int(v)
        out.append(int(v))
    return sorted(set(out))


def parse_ids(values, what: str) -> list[int]:
    """``values`` as item ids, sorted and unique (whole numbers or their text), else InvalidInput."""
    return _ids(values, what)


def check_query(query) -> dict:
    """The query, cleaned: refuses unknown keys, a similarity without k or
    with both items and text, metadata filters that are not ``{key: scalar}``
    and a query that selects nothing in particular."""
    if not isinstance(query, dict) or not query:
        raise InvalidInput("a slice query must be an object: similar_to (item ids) or text, k, meta, tag")
    unknown = set(query) - _QUERY_KEYS
    if unknown:
        raise InvalidInput(f"unknown slice query field(s): {', '.join(sorted(map(str, unknown)))}; "
                           f"known: {', '.join(sorted(_QUERY_KEYS))}")
    out: dict = {}
    similar, txt = query.get("similar_to"), query.get("text")
    if similar is not None and txt is not None:
        raise InvalidInput("a slice query is similar to items or to a text, not both")
    if similar is not None:
        out["similar_to"] = _ids(similar, "similar_to")
        if not out["similar_to"]:
            raise InvalidInput("similar_to needs at least one item id")
    if txt is not None:
        if not isinstance(txt, str) or not txt.strip():
            raise InvalidInput("the slice query's text is empty")
        out["text"] = txt
    k = query.get("k")
    if "similar_to" in out or "text" in out:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise InvalidInput(f"a similarity slice needs k, a whole number from 1 to {MAX_K}, not {k!r}")
        out["k"] = k
        if query.get("space") is not None:
            out["space"] = str(query["space"])
    elif k is not None or query.get("space") is not None:
        raise InvalidInput("k and space go with similar_to or text")
    meta = query.get("meta")
    if meta is not None:
        if not isinstance(meta, dict) or not meta or len(meta) > MAX_META:
            raise InvalidInput(f"meta must be an object of 1–{MAX_META} key: value filters")
        for key, v in meta.items():
            if not isinstance(v, (str, int, float, bool)) and v is not None:
                raise InvalidInput(f"meta filter {key!r} must be a plain value (text, number, true/false, null)")
        out["meta"] = {str(key): v for key, v in meta.items()}
    if query.get("tag") is not None:
        out["tag"] = check_tag(query["tag"])
    if not out:
        raise InvalidInput("a slice query needs similar_to or text (with k), or meta or tag filters")
    return out


def check_items(conn, dataset_id: int, item_ids) -> list[int]:
    """The ids (sorted, unique), all items of the dataset, else InvalidInput."""
    ids = _ids(item_ids, "items")
    if not ids:
        raise InvalidInput("an explicit slice needs at least one item id")
    if len(ids) > MAX_ITEMS:
        raise InvalidInput(f"an explicit slice holds at most {MAX_ITEMS} items")
    found: set[int] = set()
    for i in range(0, len(ids), 500):
        found.update(r[0] for r in conn.execute(_ITEMS_IN_DATASET, {"d": dataset_id, "ids": ids[i:i + 500]}))
    missing = [i for i in ids if i not in found]
    if missing:
        raise InvalidInput(f"item {missing[0]} is not in this dataset"
                           + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    return ids


def find(conn, dataset_id: int, name: str) -> dict | None:
    r = conn.execute(select(slices).where(slices.c.dataset_id == dataset_id, slices.c.name == name)).first()
    return None if r is None else _row(conn, r)


def _row(conn, r) -> dict:
    out = {str(k): v for k, v in r._mapping.items()}
    if r.kind == "items":
        out["item_count"] = conn.execute(text("SELECT count(*) FROM slice_items WHERE slice_id = :s"),
                                         {"s": r.id}).scalar_one()
    return out


def create(conn, dataset_id: int, name: str, *, items: list[int] | None = None, query: dict | None = None,
           by: str | None = None) -> int:
    """Insert a checked slice (a taken name raises the database's IntegrityError)."""
    sid = conn.execute(insert(slices).values(
        dataset_id=dataset_id, name=name, kind="items" if items is not None else "query", query=query,
        created_at=time.time(), created_by=by).returning(slices.c.id)).scalar_one()
    if items is not None:
        for i in range(0, len(items), 5000):
            conn.execute(insert(slice_items), [{"slice_id": sid, "item_id": x} for x in items[i:i + 5000]])
    return sid


def list_for(conn, dataset_id: int) -> list[dict]:
    rows = conn.execute(select(slices).where(slices.c.dataset_id == dataset_id).order_by(slices.c.name)).all()
    return [_row(conn, r) for r in rows]


def remove(conn, slice_id: int) -> None:
    conn.execute(delete(slice_items).where(slice_items.c.slice_id == slice_id))
    conn.execute(delete(slices).where(slices.c.id == slice_id))


def explicit_items(conn, slice_id: int) -> list[int]:
    return list(conn.execute(select(slice_items.c.item_id).where(slice_items.c.slice_id == slice_id)
                             .order_by(slice_items.c.item_id)).scalars())


def _matches(meta, want: dict) -> bool:
    if not isinstance(meta, dict):
        return False
    for key, v in want.items():
        have = meta.get(key)
        if have != v and not (have is not None and v is not None and str(have) == str(v)):
            return False
    return True


def meta_matches(db, dataset_id: int, want: dict, page: int = 5000) -> Iterator[int]:
    """The dataset's item ids whose metadata has every ``key: value`` of
    ``want`` (a value also matches its text form: ``"3"`` matches ``3``),
    read a page at a time."""
    after = 0
    while True:
        with db.read() as conn:
            rows = conn.execute(select(items.c.id, items.c.meta)  # the JSON column decodes the metadata
                                .where(items.c.dataset_id == dataset_id, items.c.id > after)
                                .order_by(items.c.id).limit(page)).all()
        if not rows:
            return
        after = rows[-1].id
        yield from (r.id for r in rows if _matches(r.meta, want))
