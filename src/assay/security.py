"""Passwords, usernames, API tokens and login throttling: the account rules.

Tokens are random, shown once, stored as SHA-256. Passwords are scrypt
hashes. A login for a name that does not exist verifies against a dummy
hash, so it costs the same time as a wrong password for a real user.

Settings come from the environment (read when a workspace opens; a test or
an embedding program may change ``ws.accounts`` fields afterwards):

==================================  =======  ==========================================
``ASSAY_MIN_PASSWORD_LENGTH``       8        new passwords; existing ones keep working
``ASSAY_TOKEN_TTL_DAYS``            7        lifetime of a password login's session token
``ASSAY_LOGIN_MAX_FAILURES``        5        failures per username before backoff starts
``ASSAY_LOGIN_MAX_FAILURES_PER_ADDRESS`` 50  failures per client address before backoff
``ASSAY_LOGIN_BACKOFF_SECONDS``     15       first lockout; doubles with each further failure
``ASSAY_LOGIN_MAX_BACKOFF_SECONDS`` 900      longest lockout (15 min)
==================================  =======  ==========================================

A failure counter is forgotten after 4 × the longest lockout without a
failure (an hour with the defaults).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import math
import os
import secrets
import unicodedata

from sqlalchemy import text

from assay.errors import InvalidInput

SESSION_LIMIT = 20  # live session tokens per user; a new login revokes the oldest beyond this


@dataclasses.dataclass
class AccountSettings:
    min_password_length: int = 8
    token_ttl_days: float = 7.0
    max_failures: int = 5
    max_failures_per_address: int = 50
    backoff_seconds: float = 15.0
    max_backoff_seconds: float = 900.0

    @classmethod
    def from_env(cls) -> AccountSettings:
        """The account rules of :func:`assay.config.config` (``ASSAY_MIN_PASSWORD_LENGTH``, ...)."""
        from assay.config import config

        c = config()
        return cls(
            min_password_length=c.min_password_length,
            token_ttl_days=c.token_ttl_days,
            max_failures=max(1, c.login_max_failures),
            max_failures_per_address=max(1, c.login_max_failures_per_address),
            backoff_seconds=c.login_backoff_seconds,
            max_backoff_seconds=c.login_max_backoff_seconds,
        )


# ---------------------------------------------------------------- usernames


def username_key(name: str) -> str:
    """The key two spellings of one name share: NFKC, then casefold."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).strip().casefold())


def normalize_username(name) -> tuple[str, str]:
    """``(username, key)`` for a new account, or InvalidInput saying why not.

    The name is NFKC-normalised and trimmed; control, format (bidi
    overrides, zero-width characters), surrogate, private-use and
    unassigned characters and line separators are refused."""
    if not isinstance(name, str):
        raise InvalidInput("username must be 1–200 characters")
    name = unicodedata.normalize("NFKC", name).strip()
    if not name or len(name) > 200:
        raise InvalidInput("username must be 1–200 characters")
    for ch in name:
        cat = unicodedata.category(ch)
        if cat[0] == "C" or cat in ("Zl", "Zp"):
            raise InvalidInput(f"username may not contain U+{ord(ch):04X} (control, bidi, zero-width "
                               "or other invisible characters are refused)")
    key = username_key(name)
    if len(key) > 200:
        raise InvalidInput("username must be 1–200 characters")
    return name, key


# ---------------------------------------------------------------- passwords


def check_password(password, min_length: int) -> str:
    if not isinstance(password, str) or len(password) < min_length:
        raise InvalidInput(f"password must be at least {min_length} characters")
    if len(password) > 1000:
        raise InvalidInput("password must be at most 1000 characters")
    return password


def new_token() -> str:
    return "asy_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    n, r, p = 2**14, 8, 1
    digest = hashlib.scrypt(password.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


_DUMMY: list[str] = []


def dummy_hash() -> str:
    """A hash no password matches, made like a real one (same cost)."""
    if not _DUMMY:
        _DUMMY.append(hash_password(secrets.token_urlsafe(32)))
    return _DUMMY[0]


def verify_password(password: str, stored: str | None) -> bool:
    """Constant work: a missing or malformed hash is checked against the dummy."""
    ok_shape = False
    try:
        algo, n, r, p, salt, digest = (stored or "").split("$")
        ok_shape = algo == "scrypt"
    except ValueError:
        pass
    if not ok_shape:
        algo, n, r, p, salt, digest = dummy_hash().split("$")
    got = hashlib.scrypt(
        (password or "").encode("utf-8", "surrogatepass"), salt=bytes.fromhex(salt),
        n=int(n), r=int(r), p=int(p), dklen=32,
    )
    return hmac.compare_digest(got.hex(), digest) and ok_shape


# ---------------------------------------------------------------- throttling


def throttle_key(kind: str, value: str) -> str:
    return f"{kind}:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def backoff(settings: AccountSettings, over: int) -> float:
    """Lockout after the ``over``-th failure past the threshold (0 = the first)."""
    return min(settings.max_backoff_seconds, settings.backoff_seconds * 2 ** min(over, 40))


def charge(conn, keys: list[tuple[str, int]], settings: AccountSettings, now: float) -> tuple[int, list]:
    """Count one login attempt against each ``(key, threshold)`` before the
    password is checked (so parallel guesses cannot outrun the counter).

    Returns ``(retry_after, locks)``: ``retry_after`` > 0 means a key is
    locked and nothing was counted; ``locks`` lists the keys this attempt
    locked (each as ``(key, failures, seconds)``)."""
    forget = 4 * settings.max_backoff_seconds
    if secrets.randbelow(64) == 0:  # now and then, drop counters nobody will read again
        conn.execute(text("DELETE FROM login_throttle WHERE last_failure < :old AND locked_until < :now"),
                     {"old": now - forget, "now": now})
    rows = {}
    lock = "" if conn.dialect.name == "sqlite" else " FOR UPDATE"
    for key, _ in keys:
        row = None
        while row is None:  # a success elsewhere may delete the row between the two statements
            conn.execute(text("INSERT INTO login_throttle (key, failures, last_failure, locked_until) "
                              "VALUES (:k, 0, 0, 0) ON CONFLICT (key) DO NOTHING"), {"k": key})
            row = conn.execute(text(
                f"SELECT failures, last_failure, locked_until FROM login_throttle WHERE key = :k{lock}"),
                {"k": key}).one_or_none()
        rows[key] = row
    wait = max(r.locked_until - now for r in rows.values())
    if wait > 0:
        return math.ceil(wait), []
    locks = []
    for key, threshold in keys:
        r = rows[key]
        failures = (r.failures if now - r.last_failure < forget else 0) + 1
        until = 0.0
        if failures >= threshold:
            seconds = backoff(settings, failures - threshold)
            until = now + seconds
            locks.append((key, failures, seconds))
        conn.execute(text("UPDATE login_throttle SET failures = :f, last_failure = :n, locked_until = :u "
                          "WHERE key = :k"), {"f": failures, "n": now, "u": until, "k": key})
    return 0, locks


def refund(conn, user_key: str, other_keys: list[tuple[str, int]]) -> None:
    """A successful login: the username's counter is cleared; the attempt
    is taken back from the others (a busy office address is not punished
    for its good logins)."""
    conn.execute(text("DELETE FROM login_throttle WHERE key = :k"), {"k": user_key})
    for key, threshold in other_keys:
        conn.execute(text(
            "UPDATE login_throttle SET failures = CASE WHEN failures > 0 THEN failures - 1 ELSE 0 END, "
            "locked_until = CASE WHEN failures - 1 < :t THEN 0 ELSE locked_until END WHERE key = :k"),
            {"k": key, "t": threshold})
