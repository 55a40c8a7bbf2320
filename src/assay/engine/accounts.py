"""Accounts: users, their roles and passwords, API and session tokens, login.

Functions here take a connection (or, where a use-case spans transactions,
the :class:`~assay.store.Database`) and plain values, never the workspace.
Each change writes its audit record (:mod:`assay.audit`) on the same
connection, so the record commits or rolls back with the change. Password
and token primitives (hashing, the login throttle) are :mod:`assay.security`;
the workspace keeps what is per process: the short cache of authenticated
tokens and the thread that writes a token's ``last_used_at``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import func, insert, select, text

from assay import audit as _audit
from assay import security
from assay.errors import Conflict, InvalidInput, NotFound, TooManyRequests, Unauthorized
from assay.store.schema import tokens, users

ROLES = ("admin", "reviewer", "annotator")

#: a user as most callers want them
USER_COLUMNS = (users.c.id, users.c.username, users.c.role, users.c.active)

# The token's owner, if the token exists: one indexed lookup per (uncached) request.
_TOKEN_OWNER = text(
    "SELECT t.id AS tid, t.expires_at, t.revoked_at, t.last_used_at, "
    "u.id, u.username, u.role, u.active FROM tokens t "
    "JOIN users u ON u.id = t.user_id WHERE t.token_hash = :h"
)


def row_dict(r) -> dict | None:
    # Plain str keys: SQLAlchemy's keys are a str subclass that orjson refuses.
    return {str(k): v for k, v in r._mapping.items()} if r is not None else None


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    return role


def password_hash(password: str, min_length: int) -> str:
    """The stored hash of a new password, after the password rules."""
    return security.hash_password(security.check_password(password, min_length))


def _unencodable(s: str) -> bool:
    try:
        s.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


# ------------------------------------------------------------ users

def create_user(conn, username: str, key: str, role: str, pw_hash: str | None) -> tuple[int, str]:
    """Insert a user (``username`` already normalised, ``key`` its folded
    form) with a first API token; returns ``(user_id, token)``. A taken
    name raises the database's IntegrityError."""
    uid = conn.execute(
        insert(users).values(
            username=username, username_key=key, role=role, created_at=time.time(),
            active=True, password_hash=pw_hash,
        ).returning(users.c.id)
    ).scalar_one()
    _audit.record(conn, "user.create", target_kind="user", target_id=uid, target=username,
                  details={"role": role, "password": pw_hash is not None})
    token, _ = new_token(conn, {"id": uid, "username": username}, "default")
    return uid, token


def user_row(conn, user: int | str, cols: Sequence = USER_COLUMNS):
    """The row of a user given by id or by name (the exact name first — an
    old account whose name folds like another's — then any spelling), or None."""
    if isinstance(user, int) and not isinstance(user, bool):
        return conn.execute(select(*cols).where(users.c.id == user)).first()
    if not isinstance(user, str) or "\x00" in user or not user.isprintable() and _unencodable(user):
        return None  # no stored name has these (and PostgreSQL refuses NUL and lone surrogates)
    r = conn.execute(select(*cols).where(users.c.username == user)).first()
    if r is None:
        r = conn.execute(select(*cols).where(users.c.username_key == security.username_key(user))).first()
    return r


def get_user(conn, user: int | str) -> dict:
    r = user_row(conn, user)
    if r is None:
        raise NotFound(f"user {str(user)[:200]!r} does not exist")
    return row_dict(r)


def list_users(conn) -> list[dict]:
    return [row_dict(r) for r in conn.execute(
        select(users.c.id, users.c.username, users.c.role, users.c.active, users.c.created_at)
        .order_by(users.c.id))]


def set_password(conn, user: dict, pw_hash: str) -> None:
    conn.execute(users.update().where(users.c.id == user["id"]).values(password_hash=pw_hash))
    _audit.record(conn, "user.password", target_kind="user", target_id=user["id"], target=user["username"])


def set_role(conn, user: dict, role: str) -> None:
    """Change ``user``'s role; the last active admin stays an admin."""
    if user["role"] == "admin" and role != "admin":
        admins = conn.execute(select(func.count()).select_from(users).where(
            users.c.role == "admin", users.c.active)).scalar_one()
        if admins <= 1:
            raise Conflict(f"{user['username']!r} is the only admin; make someone else an admin first")
    conn.execute(users.update().where(users.c.id == user["id"]).values(role=role))
    _audit.record(conn, "user.role", target_kind="user", target_id=user["id"], target=user["username"],
                  details={"from": user["role"], "to": role})


def actor_filter(conn, actor: int | str | None) -> tuple[int | None, str | None]:
    """``(actor_id, actor_name)`` for :func:`assay.audit.read` from a user
    id, a username or a recorded actor name (``cli:…``)."""
    actor_id = actor_name = None
    if isinstance(actor, int) and not isinstance(actor, bool):
        actor_id = actor
    elif isinstance(actor, str) and actor:
        actor_name = actor
        if actor.isascii() and actor.isdigit() and len(actor) <= 18:
            actor_id = int(actor)
        else:
            r = user_row(conn, actor)
            if r is not None:
                actor_id = r.id
    return actor_id, actor_name


# ------------------------------------------------------------ tokens

def new_token(conn, user: dict, name: str, *, kind: str = "api", expires_at: float | None = None,
              by: dict | None = None) -> tuple[str, int]:
    """Issue a token for ``user``: ``(secret, token_id)``; only its hash is stored."""
    token = security.new_token()
    tid = conn.execute(insert(tokens).values(
        user_id=user["id"], token_hash=security.token_hash(token), name=name, created_at=time.time(),
        kind=kind, expires_at=expires_at,
    ).returning(tokens.c.id)).scalar_one()
    _audit.record(conn, "token.create", target_kind="token", target_id=tid, target=name, by=by,
                  details={"user_id": user["id"], "username": user["username"], "kind": kind,
                           "expires_at": expires_at})
    return token, tid


def token_name(name) -> str:
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > 200:
        raise InvalidInput("token name must be 1–200 characters")
    return name


def token_expiry(expires_days: float | None, now: float) -> float | None:
    """When a token made ``now`` for ``expires_days`` expires (None: never)."""
    if expires_days is None:
        return None
    if not isinstance(expires_days, (int, float)) or isinstance(expires_days, bool) \
            or not 0 < expires_days <= 3650:
        raise InvalidInput("expires_days must be a number of days from 0 to 3650 (exclusive of 0)")
    return now + expires_days * 86400


def list_tokens(conn, user_id: int | None, *, include_inactive: bool, now: float) -> list[dict]:
    q = (select(tokens.c.id, tokens.c.user_id, users.c.username, tokens.c.name, tokens.c.kind,
                tokens.c.created_at, tokens.c.last_used_at, tokens.c.expires_at, tokens.c.revoked_at)
         .join(users, users.c.id == tokens.c.user_id).order_by(tokens.c.id))
    if user_id is not None:
        q = q.where(tokens.c.user_id == user_id)
    out = []
    for r in conn.execute(q):
        d = row_dict(r)
        d["active"] = d["revoked_at"] is None and (d["expires_at"] is None or d["expires_at"] > now)
        if d["active"] or include_inactive:
            out.append(d)
    return out


def revoke_token(conn, token_id: int, user: dict | None) -> dict:
    """Revoke a token (once; revoking again changes nothing). A non-admin
    ``user`` may revoke only their own tokens: others are reported missing."""
    if not isinstance(token_id, int) or isinstance(token_id, bool):
        raise InvalidInput("token id must be an integer")
    r = conn.execute(select(tokens.c.id, tokens.c.user_id, tokens.c.name, tokens.c.revoked_at)
                     .where(tokens.c.id == token_id)).first()
    if r is None or (user is not None and user["role"] != "admin" and r.user_id != user["id"]):
        raise NotFound(f"token {token_id} does not exist")
    revoked_at = r.revoked_at
    if revoked_at is None:
        revoked_at = time.time()
        conn.execute(tokens.update().where(tokens.c.id == token_id).values(revoked_at=revoked_at))
        _audit.record(conn, "token.revoke", target_kind="token", target_id=token_id, target=r.name,
                      details={"user_id": r.user_id})
    return {"id": token_id, "user_id": r.user_id, "name": r.name, "revoked_at": revoked_at}


def token_id(conn, token: str) -> int:
    return conn.execute(select(tokens.c.id).where(tokens.c.token_hash == security.token_hash(token))).scalar_one()


def token_owner(conn, token: str):
    """The token's row joined with its user's (``tid``, ``expires_at``,
    ``revoked_at``, ``last_used_at``, ``id``, ``username``, ``role``,
    ``active``), or None."""
    return conn.execute(_TOKEN_OWNER, {"h": security.token_hash(token)}).first()


def is_live(r, now: float) -> bool:
    """Whether a :func:`token_owner` row lets its user in at ``now``."""
    return (r is not None and r.active and r.revoked_at is None
            and (r.expires_at is None or r.expires_at > now))


def touch_token(db, token_id: int, when: float) -> None:
    """Write a token's ``last_used_at``; never fails (it is a convenience)."""
    try:
        with db.write() as conn:
            conn.execute(tokens.update().where(tokens.c.id == token_id).values(last_used_at=when))
    except Exception:  # noqa: BLE001 - "last used" is a convenience; never fail a request over it
        pass


# ------------------------------------------------------------ login

def login(db, s: security.AccountSettings, username: str, password: str,
          address: str | None) -> tuple[dict, str, list[int]]:
    """Check a password and issue a session token: ``(user, token,
    revoked_token_ids)`` — the old sessions beyond
    :data:`assay.security.SESSION_LIMIT` it revoked.

    Failed attempts are counted per username and per client ``address`` in
    the database (shared by every server process); past the limits each
    further attempt waits an exponentially growing time (TooManyRequests).
    Unknown names cost the same time as wrong passwords."""
    name = username if isinstance(username, str) else ""
    keys = [(security.throttle_key("user", security.username_key(name)), s.max_failures)]
    if address:
        keys.append((security.throttle_key("addr", address), s.max_failures_per_address))
    now = time.time()
    with db.write() as conn:
        wait, locks = security.charge(conn, keys, s, now)
    if wait:
        raise TooManyRequests(f"too many failed logins: try again in {wait} s", retry_after=wait)
    with db.read() as conn:
        r = user_row(conn, name, (*USER_COLUMNS, users.c.password_hash))
    ok = security.verify_password(password if isinstance(password, str) else "",
                                  r.password_hash if r is not None else None)
    if not (ok and r is not None and r.active):
        if locks:
            with db.write() as conn:
                _record_locks(conn, locks, name, address)
        raise Unauthorized("wrong username or password")
    user = {"id": r.id, "username": r.username, "role": r.role}
    with db.write() as conn:
        security.refund(conn, keys[0][0], keys[1:])
        token, old = _open_session(conn, user, s.token_ttl_days * 86400, now)
    return user, token, old


def _record_locks(conn, locks, name: str, address: str | None) -> None:
    for key, failures, seconds in locks:
        by_user = key.startswith("user:")
        _audit.record(conn, "login.locked", target_kind="user" if by_user else "address",
                      target=name if by_user else address, address=address,
                      by={"id": None, "username": "anonymous"},
                      details={"failures": failures, "seconds": seconds})


def _open_session(conn, user: dict, ttl: float, now: float) -> tuple[str, list[int]]:
    """A new session token; expired sessions are dropped (useless) and live
    ones beyond SESSION_LIMIT revoked, oldest first (their ids returned)."""
    conn.execute(tokens.delete().where(tokens.c.user_id == user["id"], tokens.c.kind == "session",
                                       tokens.c.expires_at < now))
    token, _ = new_token(conn, user, "login", kind="session", expires_at=now + ttl if ttl > 0 else None, by=user)
    old = conn.execute(select(tokens.c.id).where(
        tokens.c.user_id == user["id"], tokens.c.kind == "session", tokens.c.revoked_at.is_(None))
        .order_by(tokens.c.id.desc()).offset(security.SESSION_LIMIT)).scalars().all()
    if old:
        conn.execute(tokens.update().where(tokens.c.id.in_(old)).values(revoked_at=now))
    return token, list(old)
