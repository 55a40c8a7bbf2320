"""Tags on items, as stored: free words staff put on items while curating
("hard", "blurry", "gold-candidate"), one row per (item, tag) in
``item_tags`` with who put it there and when.

Tags are staff-only: nothing here is part of what an annotator is served
(the hand-out builds its task payloads from ``items`` alone), so a tag such
as "gold" or "hard" never reaches the person answering.

Functions here take a connection and plain values, never the workspace;
:func:`check_tag` refuses a bad tag before anything is written.
"""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Sequence

from sqlalchemy import bindparam, text

from assay.errors import InvalidInput

MAX_TAG = 64  # characters in a tag
MAX_ITEMS = 100_000  # items tagged or untagged in one call

# ``tag || ''``: looked up through the primary key (item_id, tag) by the ids, never by
# scanning every item with the tag through ix_item_tags_tag (a planner without
# statistics yet on a freshly filled table picks that: 0.4 s a call at 100k tagged items).
_HAVE = text("SELECT item_id FROM item_tags WHERE item_id IN :ids AND tag || '' = :t").bindparams(
    bindparam("ids", expanding=True))
_ADD = text("INSERT INTO item_tags (item_id, tag, created_by, created_at) VALUES (:i, :t, :by, :now) "
            "ON CONFLICT DO NOTHING")
_REMOVE = text("DELETE FROM item_tags WHERE item_id IN :ids AND tag || '' = :t").bindparams(
    bindparam("ids", expanding=True))
_OF_ITEMS = text("SELECT item_id, tag FROM item_tags WHERE item_id IN :ids ORDER BY item_id, tag").bindparams(
    bindparam("ids", expanding=True))
_IN_DATASET = text(
    "SELECT g.tag, count(*) AS items FROM item_tags g JOIN items i ON i.id = g.item_id "
    "WHERE i.dataset_id = :d GROUP BY g.tag ORDER BY g.tag")
_WITH_TAG = text(
    "SELECT g.item_id FROM item_tags g JOIN items i ON i.id = g.item_id "
    "WHERE g.tag = :t AND i.dataset_id = :d ORDER BY g.item_id")


def check_tag(tag) -> str:
    """The tag, trimmed (NFC): 1–64 characters, no control characters; else InvalidInput."""
    if not isinstance(tag, str):
        raise InvalidInput(f"a tag must be text, not {type(tag).__name__}")
    tag = unicodedata.normalize("NFC", tag.strip())
    if not tag:
        raise InvalidInput("a tag must not be empty")
    if len(tag) > MAX_TAG:
        raise InvalidInput(f"a tag is at most {MAX_TAG} characters, not {len(tag)}")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in tag):
        raise InvalidInput("a tag must not contain control characters or line breaks")
    return tag


def check_count(ids: Sequence[int]) -> None:
    if not ids:
        raise InvalidInput("give at least one item id to tag")
    if len(ids) > MAX_ITEMS:
        raise InvalidInput(f"tag at most {MAX_ITEMS} items at a time")


def add(conn, item_ids: Sequence[int], tag: str, *, by: str | None = None) -> int:
    """Tag the items (already tagged ones are left as they are): how many were new
    (as read in this transaction: a concurrent tagger's rows are left alone, not counted twice)."""
    now, n = time.time(), 0
    for i in range(0, len(item_ids), 1000):
        part = list(item_ids[i:i + 1000])
        had = set(conn.execute(_HAVE, {"t": tag, "ids": part}).scalars())
        rows = [{"i": x, "t": tag, "by": by, "now": now} for x in part if x not in had]
        if rows:
            conn.execute(_ADD, rows)
            n += len(rows)
    return n


def remove(conn, item_ids: Sequence[int], tag: str) -> int:
    """Take the tag off the items: how many had it."""
    n = 0
    for i in range(0, len(item_ids), 500):
        n += max(conn.execute(_REMOVE, {"t": tag, "ids": list(item_ids[i:i + 500])}).rowcount, 0)
    return n


def of_items(conn, item_ids: Sequence[int]) -> dict[int, list[str]]:
    """``{item_id: [tags, sorted]}`` for the items that have any."""
    out: dict[int, list[str]] = {}
    ids = list(item_ids)
    for i in range(0, len(ids), 500):
        for r in conn.execute(_OF_ITEMS, {"ids": ids[i:i + 500]}):
            out.setdefault(r.item_id, []).append(r.tag)
    return out


def in_dataset(conn, dataset_id: int) -> list[dict]:
    """The dataset's tags with how many items have each: ``[{tag, items}]`` by tag."""
    return [{"tag": r.tag, "items": r.items} for r in conn.execute(_IN_DATASET, {"d": dataset_id})]


def items_with(conn, dataset_id: int, tag: str) -> list[int]:
    """The dataset's items with the tag, sorted."""
    return list(conn.execute(_WITH_TAG, {"t": tag, "d": dataset_id}).scalars())
