"""First run: the first admin of an empty workspace, claimed with a one-time code.

``assay serve`` on a workspace without users makes a one-time code, keeps
only its hash in ``<home>/setup-code`` (readable by the workspace's owner
alone) and prints the code in the terminal. Whoever opens ``/setup`` in a
browser must type it to become the first admin, so nobody else on the
network can claim a freshly started server. The code is good for one
claim: the first admin is created in the same transaction that checks the
workspace has no users (on PostgreSQL under a transaction-scoped advisory
lock, so two claims at once cannot both win), and the file is removed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from pathlib import Path

from sqlalchemy import func, select, text

from assay.engine import accounts as _accounts
from assay.errors import Conflict
from assay.store.schema import users

CODE_FILE = "setup-code"
#: a code is 4 groups of 4 from an alphabet without look-alikes (I, O, 0, 1): 80 bits
ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_LOCK = 0x61737361795F7375 & 0x7FFFFFFFFFFFFFFF  # "assay_su": one key for the claim


def code_path(home: Path) -> Path:
    return Path(home) / CODE_FILE


def _digest(code: str) -> str:
    plain = "".join(c for c in code.upper() if c.isalnum())
    return hashlib.sha256(plain.encode("ascii", "replace")).hexdigest()


def new_code(home: Path) -> str:
    """A fresh one-time code for ``home`` (any earlier one stops working).
    Only its hash is written, atomically, with owner-only permissions."""
    code = "-".join("".join(secrets.choice(ALPHABET) for _ in range(4)) for _ in range(4))
    path = code_path(home)
    tmp = path.with_name(f".{CODE_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"sha256": _digest(code), "created_at": time.time()}, f)
    os.replace(tmp, path)
    return code


def has_code(home: Path) -> bool:
    return code_path(home).is_file()


def code_matches(home: Path, code) -> bool:
    """Whether ``code`` is the current one-time code (constant time)."""
    try:
        stored = json.loads(code_path(home).read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    given = _digest(code) if isinstance(code, str) and len(code) <= 100 else ""
    return hmac.compare_digest(given, str(stored))


def drop_code(home: Path) -> None:
    try:
        code_path(home).unlink()
    except FileNotFoundError:
        pass


def has_users(conn) -> bool:
    return conn.execute(select(func.count()).select_from(select(users.c.id).limit(1).subquery())).scalar_one() > 0


def claim_first_admin(conn, username: str, key: str, pw_hash: str) -> tuple[int, str]:
    """Create the first admin, or raise Conflict when the workspace already
    has a user. Call inside the write transaction that creates it."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK})
    if has_users(conn):
        raise Conflict("this workspace is already set up: log in, or ask its admin for an account")
    return _accounts.create_user(conn, username, key, "admin", pw_hash)
