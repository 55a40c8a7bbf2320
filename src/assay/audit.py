"""The audit log: who did what, when, to what — append-only.

Every change worth answering for is written here (by the workspace or the
:mod:`assay.engine` module it calls) in the same transaction as the change
itself (a rolled-back change leaves no record; a committed one always has
one). There is no code path that updates or deletes a record, and database
triggers refuse both (and TRUNCATE on PostgreSQL).

The actor is whoever the current context acts for: the HTTP edge sets the
authenticated user (and the client address) per request, the CLI sets
``cli:<os user>``; plain Python use records ``local``.
"""

from __future__ import annotations

import contextlib
import time
from contextvars import ContextVar
from typing import Any

from sqlalchemy import insert, or_, select

from assay.errors import InvalidInput
from assay.store.schema import audit

ACTIONS = (
    "user.create", "user.role", "user.password", "token.create", "token.revoke", "login.locked",
    "project.create", "project.update", "member.add", "member.remove", "gold.import", "gold.remove",
    "review.decide", "pause.lift", "exam.pass", "exam.fail", "exam.reset", "export", "dataset.import",
    "slice.create", "slice.delete", "queue.prioritize",
)

_LOCAL = {"id": None, "username": "local", "address": None}
_actor: ContextVar[dict | None] = ContextVar("assay_actor", default=None)


def set_actor(user: dict | None, address: str | None = None) -> None:
    """Act for ``user`` (``{"id", "username"}``) in this context from now on."""
    _actor.set(None if user is None else {"id": user.get("id"), "username": user.get("username"),
                                          "address": address})


@contextlib.contextmanager
def acting(user: dict | None, address: str | None = None):
    token = _actor.set(None if user is None else {"id": user.get("id"), "username": user.get("username"),
                                                  "address": address})
    try:
        yield
    finally:
        _actor.reset(token)


def actor() -> dict:
    return _actor.get() or _LOCAL


def _cut(value, n: int) -> str | None:
    return None if value is None else str(value)[:n]


def record(conn, action: str, *, target_kind: str | None = None, target_id: int | None = None,
           target: Any = None, details: dict | None = None, by: dict | None = None,
           address: str | None = None) -> None:
    """Append one record inside the caller's transaction. ``by`` overrides
    the context's actor (e.g. a login, before anybody is authenticated)."""
    a = actor() if by is None else {"id": by.get("id"), "username": by.get("username"), "address": None}
    conn.execute(insert(audit).values(
        created_at=time.time(), actor_id=a["id"], actor=_cut(a["username"], 200),
        address=_cut(address or a.get("address"), 100), action=action, target_kind=target_kind,
        target_id=target_id, target=_cut(target, 200), details=details or {},
    ))


def read(conn, *, before: int | None = None, limit: int = 100, action: str | None = None,
         actor_id: int | None = None, actor_name: str | None = None, target_kind: str | None = None,
         target_id: int | None = None, since: float | None = None,
         until: float | None = None) -> tuple[list[dict], int | None]:
    """A keyset page, newest first: records with id < ``before``. ``action``
    is exact, or a prefix when it ends with '.' (``token.``). Returns
    ``(records, next_before)``; ``next_before`` is None on the last page."""
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
        raise InvalidInput("limit must be an integer from 1 to 1000")
    q = select(audit).order_by(audit.c.id.desc()).limit(limit + 1)
    if before is not None:
        q = q.where(audit.c.id < before)
    if action:
        q = q.where(audit.c.action.startswith(action, autoescape=True) if action.endswith(".")
                    else audit.c.action == action)
    if actor_id is not None or actor_name is not None:
        q = q.where(or_(*([audit.c.actor_id == actor_id] if actor_id is not None else []),
                        *([audit.c.actor == actor_name] if actor_name is not None else [])))
    if target_kind is not None:
        q = q.where(audit.c.target_kind == target_kind)
    if target_id is not None:
        q = q.where(audit.c.target_id == target_id)
    if since is not None:
        q = q.where(audit.c.created_at >= since)
    if until is not None:
        q = q.where(audit.c.created_at < until)
    rows = [{str(k): v for k, v in r._mapping.items()} for r in conn.execute(q)]
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["id"] if more else None)
