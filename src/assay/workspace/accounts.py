"""Users, API tokens, login and logout, authentication and the audit log.

Relies on the core (:class:`assay.workspace.core.Core`, which lists the
caches and who drops them) for ``db``, ``accounts`` (the password and
login rules), ``_lock``, ``_toucher``, ``_auth_cache`` (this part fills and
drops it) and ``_member_cache`` (``add_user`` with projects clears it); on
:class:`~assay.workspace.projects.Projects` for ``get_project``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError

from assay import audit as _audit
from assay import security
from assay.engine import accounts as _accounts
from assay.engine import projects as _proj
from assay.engine import setup as _setup
from assay.errors import Conflict, Forbidden, TooManyRequests, Unauthorized


class Accounts:
    """Who may use the workspace: users, tokens, sessions, the audit log."""

    def add_user(self, username: str, role: str = "annotator", password: str | None = None, *,
                 projects: Sequence[int | str] = ()) -> tuple[dict, str]:
        """Create a user; returns ``(user, api_token)``. The token is shown only once.

        The name is normalised (NFKC, trimmed; invisible and control
        characters refused) and unique however it is cased. With
        ``projects`` the user joins them in the same transaction: an unknown
        project creates nothing."""
        username, key = security.normalize_username(username)
        _accounts.check_role(role)
        pw_hash = None if password is None else _accounts.password_hash(password, self.accounts.min_password_length)
        joined = {p["id"]: p for p in (self.get_project(p) for p in projects)}
        try:
            with self.db.write() as conn:
                uid, token = _accounts.create_user(conn, username, key, role, pw_hash)
                for p in joined.values():
                    _proj.add_member(conn, p, {"id": uid, "username": username})
        except IntegrityError:
            raise Conflict(f"user {username!r} already exists") from None
        if joined:
            self._member_cache_clear()
        return {"id": uid, "username": username, "role": role}, token

    def create_token(self, user: int | str, name: str = "token", *, expires_days: float | None = None) -> str:
        """A new API token for ``user`` (shown only once); it never expires
        unless ``expires_days`` is given."""
        u = self.get_user(user)
        name = _accounts.token_name(name)
        expires_at = _accounts.token_expiry(expires_days, time.time())
        with self.db.write() as conn:
            return _accounts.new_token(conn, u, name, expires_at=expires_at)[0]

    def list_tokens(self, user: int | str | None = None, *, include_inactive: bool = False) -> list[dict]:
        """Tokens (never their secret): id, user, name, kind, created, last
        used (to the minute), expires, revoked. Only live ones unless
        ``include_inactive``."""
        user_id = None if user is None else self.get_user(user)["id"]
        with self.db.read() as conn:
            return _accounts.list_tokens(conn, user_id, include_inactive=include_inactive, now=time.time())

    def revoke_token(self, token_id: int, *, user: dict | None = None) -> dict:
        """Revoke a token at once (this process stops accepting it now;
        other server processes within their ``cache_seconds``, 5 s). A
        non-admin ``user`` may revoke only their own tokens."""
        with self.db.write() as conn:
            out = _accounts.revoke_token(conn, token_id, user)
        self._forget_auth(token_id=token_id)
        return out

    def logout(self, token: str) -> None:
        """Revoke the token that was presented (the browser's "Log out")."""
        user = self.authenticate(token, cache_seconds=0)
        with self.db.read() as conn:
            tid = _accounts.token_id(conn, token)
        with _audit.acting(user, _audit.actor().get("address")):
            self.revoke_token(tid)

    def _forget_auth(self, *, token_id: int | None = None, user_id: int | None = None) -> None:
        """Drop cached authentications, so a revocation or a role change takes effect at once here."""
        for tok, hit in list(self._auth_cache.items()):
            if hit[2] == token_id or hit[1]["id"] == user_id:
                self._auth_cache.pop(tok, None)

    def set_password(self, user: int | str, password: str) -> None:
        u = self.get_user(user)
        pw_hash = _accounts.password_hash(password, self.accounts.min_password_length)
        with self.db.write() as conn:
            _accounts.set_password(conn, u, pw_hash)

    def set_role(self, user: int | str, role: str) -> dict:
        u = self.get_user(user)
        _accounts.check_role(role)
        with self.db.write() as conn:
            _accounts.set_role(conn, u, role)
        self._forget_auth(user_id=u["id"])
        return {**u, "role": role}

    def get_user(self, user: int | str) -> dict:
        with self.db.read() as conn:
            return _accounts.get_user(conn, user)

    def list_users(self) -> list[dict]:
        with self.db.read() as conn:
            return _accounts.list_users(conn)

    def login(self, username: str, password: str, *, address: str | None = None) -> tuple[dict, str]:
        """Check a password and issue an expiring session token for the browser.

        Failed attempts are counted per username and per client ``address``
        in the database (shared by every server process); past the limits
        each further attempt waits an exponentially growing time
        (TooManyRequests, 429 with Retry-After). Unknown names cost the same
        time as wrong passwords."""
        user, token, revoked = _accounts.login(self.db, self.accounts, username, password, address)
        for tid in revoked:
            self._forget_auth(token_id=tid)
        return user, token

    # ------------------------------------------------ first run

    def needs_setup(self) -> bool:
        """True while the workspace has no user at all: the first run, when
        ``/setup`` lets the holder of the one-time code create the first admin."""
        if self._set_up:
            return False
        with self.db.read() as conn:
            self._set_up = _setup.has_users(conn)
        return not self._set_up

    def setup_code(self, *, renew: bool = True) -> str | None:
        """A fresh one-time setup code (printed by ``assay serve``) while the
        workspace has no user, else None (and any old code is removed).
        ``renew=False`` keeps a code that already exists (returns None)."""
        if not self.needs_setup():
            _setup.drop_code(self.home)
            return None
        if not renew and _setup.has_code(self.home):
            return None
        return _setup.new_code(self.home)

    def claim_setup(self, code: str, username: str, password: str, *,
                    address: str | None = None) -> tuple[dict, str]:
        """Create the first admin with the one-time ``code`` and log them in:
        ``(user, session_token)``. A wrong code is Forbidden and counted like
        a failed login per client address; a workspace with users is Conflict."""
        if not self.needs_setup():
            raise Conflict("this workspace is already set up: log in, or ask its admin for an account")
        username, key = security.normalize_username(username)
        pw_hash = _accounts.password_hash(password if isinstance(password, str) else "",
                                          self.accounts.min_password_length)
        keys = [(security.throttle_key("setup", address or "-"), self.accounts.max_failures)]
        with self.db.write() as conn:
            wait, _ = security.charge(conn, keys, self.accounts, time.time())
        if wait:
            raise TooManyRequests(f"too many wrong setup codes: try again in {wait} s", retry_after=wait)
        if not _setup.code_matches(self.home, code):
            raise Forbidden("wrong setup code: use the one-time code that `assay serve` printed in its "
                            "terminal (restart the server for a new one)")
        with self.db.write() as conn:
            security.refund(conn, keys[0][0], [])
            _setup.claim_first_admin(conn, username, key, pw_hash)
        _setup.drop_code(self.home)
        self._set_up = True
        return self.login(username, password, address=address)

    def audit_log(self, *, before: int | None = None, limit: int = 100, action: str | None = None,
                  actor: int | str | None = None, target_kind: str | None = None, target_id: int | None = None,
                  since: float | None = None, until: float | None = None) -> tuple[list[dict], int | None]:
        """A page of the audit log, newest first (see :func:`assay.audit.read`);
        ``actor`` is a user id, a username or a recorded actor name (``cli:…``)."""
        with self.db.read() as conn:
            actor_id, actor_name = _accounts.actor_filter(conn, actor)
            return _audit.read(conn, before=before, limit=limit, action=action, actor_id=actor_id,
                               actor_name=actor_name, target_kind=target_kind, target_id=target_id,
                               since=since, until=until)

    #: seconds between two writes of a token's ``last_used_at``
    token_touch_seconds = 60.0

    def authenticate(self, token: str | None, cache_seconds: float = 5.0) -> dict:
        """The user a live token belongs to, or Unauthorized. Cached for a few
        seconds (never past the token's expiry); revoking a token through
        this workspace drops it from the cache at once."""
        if not token:
            raise Unauthorized("missing token: send 'Authorization: Bearer <token>'")
        now = time.monotonic()
        hit = self._auth_cache.get(token)
        if hit is not None and hit[0] > now:
            return hit[1]
        if len(token) > 500:
            raise Unauthorized("invalid, expired or revoked token")
        with self.db.read() as conn:
            r = _accounts.token_owner(conn, token)
        wall = time.time()
        if not _accounts.is_live(r, wall):
            self._auth_cache.pop(token, None)
            raise Unauthorized("invalid, expired or revoked token")
        if r.last_used_at is None or wall - r.last_used_at >= self.token_touch_seconds:
            self._touch_token(r.tid, wall)
        user = {"id": r.id, "username": r.username, "role": r.role}
        if len(self._auth_cache) > 10000:
            self._auth_cache.clear()
        ttl = cache_seconds if r.expires_at is None else min(cache_seconds, r.expires_at - wall)
        self._auth_cache[token] = (now + ttl, user, r.tid)
        return user

    def _touch_token(self, token_id: int, when: float) -> None:
        # Off the caller's thread (authenticate runs on the server's event loop): one small write.
        with self._lock:
            if self._toucher is None:
                from concurrent.futures import ThreadPoolExecutor

                self._toucher = ThreadPoolExecutor(1, thread_name_prefix="assay-token-touch")
            toucher = self._toucher
        toucher.submit(_accounts.touch_token, self.db, token_id, when)
