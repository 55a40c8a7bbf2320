"""The workspace: assay's front door.

A workspace is a folder (``ASSAY_HOME``, default ``./assay-data``) holding
``assay.db`` (SQLite) — or a PostgreSQL URL in ``ASSAY_DATABASE_URL`` — plus
``blobs/`` for images. Every use-case is a method here: it resolves ids,
checks who may do it, opens the transaction and calls the module that owns
the rule (:mod:`assay.engine` — accounts, datasets, imports, projects, the
hand-out, the ledger, settings, gold, redundancy, the resolver, reports;
files in :mod:`assay.formats`; backend prediction runs in
:mod:`assay.learn.predict`; the pure algorithms in :mod:`assay.quality` and
:mod:`assay.learn`), which writes the change and its audit record on that
connection. It keeps the per-process caches (projects, memberships,
authenticated tokens). The HTTP server and the CLI are thin shells over it.
"""

from __future__ import annotations

import copy
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, func, select, text
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from assay import audit as _audit
from assay.learn import ml_backend as _ml_backend
from assay.learn import predict as _predict
from assay.formats import export as _export
from assay.engine import gold as _gold
from assay.engine import ledger
from assay.jobs import events as _events
from assay.jobs import webhooks as _webhooks
from assay.engine import resolver as _resolver
from assay.config import SCHEDULE, config
from assay.engine import settings as _settings
from assay import kinds, security
from assay.formats import gold as _gold_file
from assay.formats import ingest
from assay.engine import handout
from assay.engine import redundancy
from assay.engine import accounts as _accounts
from assay.engine import datasets as _datasets
from assay.engine import imports as _imports
from assay.engine import projects as _proj
from assay.engine import reports as _reports
from assay.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized, Unavailable
from assay.store import BlobStore, Database
from assay.store import migrate
from assay.store.vectors import VectorStore
from assay.store.schema import (
    answers, datasets, items, projects, users,
)

ROLES = _accounts.ROLES
DEFAULT_HOME = "assay-data"


# The item and the model's prediction for it (pre-label), one indexed lookup each side.
_TASK_ITEM_PREDICTION = text(
    "SELECT i.id, i.kind, i.text, i.meta, pr.label AS s_label, pr.confidence AS s_confidence, "
    "pr.model_version AS s_version FROM items i "
    "LEFT JOIN predictions pr ON pr.project_id = :p AND pr.item_id = i.id WHERE i.id = :i"
).columns(meta=JSON, s_label=JSON)
_ANSWER_PROJECT = text("SELECT project_id FROM answers WHERE id = :a")


def _connect_problem(db: Database, exc: Exception) -> str:
    """One line: which database could not be opened, why, and what to check."""
    where = db.url.render_as_string(hide_password=True)
    orig = getattr(exc, "orig", None) or exc
    why = " ".join(str(orig).split())  # psycopg's messages span lines
    if len(why) > 300:
        why = why[:300] + "…"
    if db.is_sqlite:
        return f"cannot open the database {where}: {why}"
    why = why.rstrip(".?! ")
    return (f"cannot connect to PostgreSQL at {where}: {why}. Check ASSAY_DATABASE_URL, that the server "
            "is running and reachable, and that the database and role exist (createdb NAME)")


class Workspace:
    """Open (creating if needed) the workspace at ``home``.

    >>> ws = Workspace("assay-data")
    >>> ds = ws.create_dataset("reviews")
    >>> ws.import_file(ds["id"], "reviews.csv", text_column="review")
    """

    progress_cache_min_tasks = 10_000

    def __init__(self, home: str | os.PathLike | None = None, *, database_url: str | None = None,
                 migrate_db: bool = True) -> None:
        cfg = config()  # ASSAY_HOME, ASSAY_DATABASE_URL, the account rules: read when a workspace opens
        self.home = Path(home or cfg.home or DEFAULT_HOME).resolve()
        self.home.mkdir(parents=True, exist_ok=True)
        url = database_url or cfg.database_url or f"sqlite:///{self.home / 'assay.db'}"
        self.db = Database(url)
        self.blobs = BlobStore(self.home / "blobs")
        self.vectors = VectorStore(self.home / "vectors")
        if migrate_db:
            try:
                migrate.upgrade(self.db)
            except (OperationalError, InterfaceError) as exc:
                self.db.dispose()
                raise Unavailable(_connect_problem(self.db, exc)) from None
            self.sweep_litter()  # what an import killed mid-way left behind
        self._projects: dict[int, tuple[float, dict]] = {}
        self._auth_cache: dict[str, tuple[float, dict, int]] = {}
        self._toucher = None  # thread that writes tokens' last_used_at
        self.accounts = security.AccountSettings.from_env()
        self._progress_cache: dict[int, tuple[float, dict]] = {}
        self._member_cache: dict[tuple[int, int], tuple[float, bool]] = {}
        self._lock = threading.Lock()
        _webhooks.install()  # answers reach ML backends from the answer.created event

    def close(self) -> None:
        notifier = self.__dict__.get("_backend_notifier_obj")
        if notifier is not None:  # queued webhooks go out first (bounded)
            notifier.wait(_webhooks.FLUSH_SECONDS)
        if self._toucher is not None:
            self._toucher.shutdown(wait=True)
            self._toucher = None
        self.db.dispose()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Workspace({str(self.home)!r}, database={self.db.dialect})"

    # ------------------------------------------------------------ users

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

    # ------------------------------------------------------------ datasets

    def create_dataset(self, name: str) -> dict:
        name = _datasets.check_name(name)
        try:
            with self.db.write() as conn:
                did = _datasets.create(conn, name)
        except IntegrityError:
            raise Conflict(f"dataset {name!r} already exists") from None
        return self.get_dataset(did)

    def get_dataset(self, dataset: int | str) -> dict:
        with self.db.read() as conn:
            ds = _datasets.load(conn, dataset)
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

    def require_dataset_access(self, dataset: int | str, user: dict) -> dict:
        """The dataset, if ``user`` may read it: admins every one, others only
        the datasets of projects they are members of (else reported missing)."""
        ds = self.get_dataset(dataset)
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

    def list_items(self, dataset: int | str, *, after: int | None = None, limit: int = 100) -> tuple[list[dict], int | None]:
        """A keyset page of items: ``(items, next_after)``."""
        ds = self.dataset(dataset)
        with self.db.read() as conn:
            return _datasets.list_items(conn, ds["id"], after=after, limit=limit)

    def get_item(self, item_id: int) -> dict:
        with self.db.read() as conn:
            it = _datasets.get_item(conn, item_id)
        if it is None:
            raise NotFound(f"item {item_id} does not exist")
        return it

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

    # ------------------------------------------------------------ projects

    def create_project(self, name: str, dataset: int | str, classes: Sequence[str | dict], *,
                       kind: str = "single", instructions: str = "", overlap: int = 1,
                       lease_seconds: int = 600, show_fields: Sequence[str] = (),
                       target_confidence: float | None = None, max_answers: int | None = None,
                       gold_rate: float | None = None, gold_min_accuracy: float | None = None,
                       gold_min_answers: int | None = None) -> dict:
        """Create a labeling project over a dataset; every item becomes a task.

        ``target_confidence`` (e.g. 0.95) turns on adaptive redundancy: each
        item starts with ``overlap`` answers and gets one more, from another
        annotator, while its posterior is below the target, up to
        ``max_answers`` (default max(overlap, 5)); see :mod:`assay.engine.redundancy`.

        Gold questions (:mod:`assay.engine.gold`): ``gold_rate`` is the share of each
        annotator's tasks that are gold once gold is imported (default 0.05);
        ``gold_min_accuracy`` pauses an annotator whose gold accuracy falls
        below it after ``gold_min_answers`` (default 5) gold answers.
        """
        s = _settings.validate_new(
            kind=kind, instructions=instructions, overlap=overlap, lease_seconds=lease_seconds,
            show_fields=show_fields,
            target_confidence=target_confidence, max_answers=max_answers, gold_rate=gold_rate,
            gold_min_accuracy=gold_min_accuracy, gold_min_answers=gold_min_answers)
        name = _proj.check_name(name)
        spec = kinds.get(kind).normalize_schema({"classes": list(classes), "instructions": s.instructions})
        ds = self.dataset(dataset)
        try:
            with self.db.write() as conn:
                pid = _proj.create(conn, name, ds["id"], spec, s)
        except IntegrityError:
            raise Conflict(f"project {name!r} already exists") from None
        return self.get_project(pid)

    #: seconds a project's settings are reused before they are read again
    #: (settings changed by another process show up within this time)
    project_cache_seconds = 5.0

    def get_project(self, project: int | str) -> dict:
        if isinstance(project, int):
            hit = self._projects.get(project)
            if hit is not None and hit[0] > time.monotonic():
                return hit[1]
        with self.db.read() as conn:
            p = _proj.load(conn, project)
        if p is None:
            raise NotFound(f"project {project!r} does not exist")
        self._projects[p["id"]] = (time.monotonic() + self.project_cache_seconds, p)
        return p

    #: what an annotator sees of a project: what labeling needs, nothing of
    #: gold, pauses, the model or its backend
    ANNOTATOR_PROJECT_KEYS = _proj.ANNOTATOR_KEYS

    def project_view(self, project: dict, user: dict) -> dict:
        """``project`` as ``user`` may see it: all of it for admins and
        reviewers, :data:`ANNOTATOR_PROJECT_KEYS` for annotators."""
        return _proj.view(project, user["role"])

    def forget_project(self, project_id: int) -> None:
        """Drop the cached settings of a project changed behind this
        workspace's back (the ML loop moving its target): read them again."""
        self._projects.pop(project_id, None)

    def update_project(self, project: int | str, **settings: Any) -> dict:
        """Change a project's settings: any of
        :data:`assay.engine.settings.CHANGEABLE` (described in
        :class:`~assay.engine.settings.ProjectSettings`), checked together
        with the unchanged ones; a bad value changes nothing. ``ml_backend_url``
        is a Label Studio compatible ML backend or ``python:<name>`` (see
        :meth:`connect_backend`, which also checks it answers)."""
        p = self.get_project(project)
        with self.db.write() as conn:
            _proj.update(conn, p, settings, vectors=self.vectors)
        self._projects.pop(p["id"], None)
        self._backends_seen = (0.0, True)
        return self.get_project(p["id"])

    def project_settings(self, project: int | str) -> _settings.ProjectSettings:
        """The project's settings as the typed model (``get_project`` gives
        them as a dict, the backend URL without its password)."""
        pid = self.get_project(project)["id"]
        with self.db.read() as conn:
            return _proj.settings_of(conn, pid)

    def list_projects(self, user: dict | None = None) -> list[dict]:
        with self.db.read() as conn:
            ids = _proj.project_ids(conn, user)
        got = [self.get_project(i) for i in ids]
        return got if user is None else [self.project_view(p, user) for p in got]

    # ------------------------------------------------------------ members

    def add_member(self, project: int | str, user: int | str) -> None:
        p, u = self.get_project(project), self.get_user(user)
        try:
            with self.db.write() as conn:
                _proj.add_member(conn, p, u)
        except IntegrityError:
            pass  # already a member: adding twice is harmless
        self._member_cache_clear()

    def remove_member(self, project: int | str, user: int | str) -> None:
        p, u = self.get_project(project), self.get_user(user)
        with self.db.write() as conn:
            _proj.remove_member(conn, p, u)
        self._member_cache_clear()

    def list_members(self, project: int | str) -> list[dict]:
        p = self.get_project(project)
        with self.db.read() as conn:
            return _proj.list_members(conn, p["id"])

    def _member_cache_clear(self) -> None:
        self._member_cache = {}

    def is_member(self, project_id: int, user_id: int) -> bool:
        cache = self._member_cache
        key = (project_id, user_id)
        hit = cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.db.read() as conn:
            ok = _proj.is_member(conn, project_id, user_id)
        cache[key] = (now + 5.0, ok)
        return ok

    def require_access(self, project_id: int, user: dict, *, roles: Sequence[str] = ROLES) -> dict:
        """The project, if ``user`` may act on it with one of ``roles``.

        Admins may act on every project; others must be members. A project a
        user may not see is reported as missing, so ids don't leak.
        """
        p = self.get_project(project_id)
        if user["role"] == "admin":
            return p
        if not self.is_member(p["id"], user["id"]):
            raise NotFound(f"project {project_id} does not exist")
        if user["role"] not in roles:
            raise Forbidden(f"a {user['role']} may not do this in project {project_id}")
        return p

    # ------------------------------------------------------------ hand-out

    def next_task(self, project: int | str, user: int | str | dict, *, exclude: Sequence[int] = ()) -> dict | None:
        """Lease the next task of ``project`` to ``user`` (an annotator who is a member).

        Returns a task dict with the item to show, or None when nothing is left
        for this user.
        """
        p = self.get_project(project)
        u = user if isinstance(user, dict) else self.get_user(user)
        if u["role"] != "admin" and not self.is_member(p["id"], u["id"]):
            raise Forbidden(f"{u['username']} is not a member of project {p['name']!r}")
        for attempt in range(2):
            # db.fast: the hand-out's text() statements go straight to the
            # driver, and the lease and the item it shows are one transaction.
            with self.db.fast_write():
                got = handout.next_task(self.db.fast, p["id"], u["id"], p["lease_seconds"], exclude, project=p)
                if got is not None:
                    return self._task_view(p, *got)
            # Expired leases may be holding the last tasks: give them back and retry once.
            if attempt or not handout.reclaim_expired(self.db):
                return None

    def _task_view(self, p: dict, task_id: int, item_id: int, exp: float) -> dict:
        with self.db.fast_read() as conn:
            r = conn.execute(_TASK_ITEM_PREDICTION, {"p": p["id"], "i": item_id}).one()
        meta = r.meta or {}
        return {
            "id": task_id, "project_id": p["id"], "lease_expires_at": exp,
            "item": {
                "id": r.id, "kind": r.kind, "text": r.text,
                "content_url": f"/api/items/{r.id}/content" if r.kind == "image" else None,
                "fields": {k: meta.get(k) for k in p["show_fields"] if k in meta},
            },
            # the model's pre-label (same for every task, gold included), or None
            "suggestion": None if r.s_version is None else {
                "label": r.s_label, "confidence": float(r.s_confidence), "model_version": int(r.s_version)},
        }

    def submit(self, task_id: int, user: int | str | dict, label: Any, *, suggestion: Any = None) -> dict:
        """Store ``user``'s answer to a task they hold on a live lease (from
        :meth:`next_task` or :meth:`undo`); a paused annotator is refused.

        ``suggestion``: the model's pre-label shown with the task (a class
        name; multi-label: a list), validated like a label; the answer
        records it and whether the label accepted it (same class / set)."""
        u = user if isinstance(user, dict) else self.get_user(user)
        with self.db.fast_write():  # the task lookup and the answer: one transaction
            t = handout.task_row(self.db.fast, task_id)
            p = self.get_project(t.project_id)
            if u["role"] != "admin" and not self.is_member(p["id"], u["id"]):
                raise NotFound(f"task {task_id} does not exist")
            label_kind = kinds.of(p)
            label = label_kind.validate(label, p["schema"])
            if suggestion is not None:
                try:
                    suggestion = label_kind.validate(suggestion, p["schema"])
                except InvalidInput as e:
                    raise InvalidInput(f"suggestion: {e.message}") from None
            got = handout.submit(self.db.fast, task_id, p["id"], t.item_id, u["id"], label,
                                 suggestion=suggestion, project=p)
            with self.db.fast_write() as conn:  # same transaction
                # every answer goes through the same steps, gold or not
                known = _gold.score_answer(conn, p, t.item_id, u["id"], label, got["created_at"])
                if p["target_confidence"] is not None:  # adaptive redundancy (a known label stays)
                    redundancy.after_answer(conn, p, task_id, t.item_id, u["id"], label, got["created_at"],
                                            known=known)
                _gold.maybe_pause(conn, p, u["id"], got["created_at"])
        if _events.wanted("answer.created"):  # committed: tell subscribers (webhooks, …)
            _events.emit("answer.created", {"workspace": self, "answer": got})
        return got

    def skip(self, task_id: int, user: int | str | dict) -> None:
        u = user if isinstance(user, dict) else self.get_user(user)
        t = handout.task_row(self.db, task_id)
        if u["role"] != "admin" and not self.is_member(t.project_id, u["id"]):
            raise NotFound(f"task {task_id} does not exist")
        handout.skip(self.db, task_id, t.project_id, u["id"], project=self.get_project(t.project_id))

    def undo(self, answer_id: int, user: int | str | dict) -> dict:
        """Take back one's own answer; the task is leased back to relabel."""
        u = user if isinstance(user, dict) else self.get_user(user)
        with self.db.read() as conn:
            pid = conn.execute(_ANSWER_PROJECT, {"a": answer_id}).scalar()
        if pid is None:
            raise NotFound(f"answer {answer_id} does not exist")
        p = self.get_project(pid)
        if u["role"] != "admin" and not self.is_member(p["id"], u["id"]):
            raise NotFound(f"answer {answer_id} does not exist")
        # the gold record keeps the undone answer: undo never changes it
        task_id, _, item_id, exp = handout.undo(self.db, answer_id, u["id"], p["lease_seconds"], project=p)
        return self._task_view(p, task_id, item_id, exp)

    def reclaim_expired(self, now: float | None = None) -> int:
        """Return the slots of expired leases to the pool; how many were freed."""
        return handout.reclaim_expired(self.db, now)

    def doctor(self, project: int | str | None = None, *, fix: bool = False) -> dict:
        """Recount task counters and consensus rows (of one project, or all)
        from answers and leases: ``{"drift": [{project_id, task_id, item_id,
        column, stored, expected}, …], "fixed": fix}``; with ``fix`` the drift
        is repaired in one transaction and recorded in the audit log
        (:mod:`assay.engine.ledger`)."""
        pid = None if project is None else self.get_project(project)["id"]
        found = (ledger.fix if fix else ledger.check)(self.db, pid)
        return {"project_id": pid, "drift": [d.as_dict() for d in found], "fixed": bool(fix and found)}

    # ------------------------------------------------------------ adaptive redundancy

    def refit_quality(self, project: int | str) -> dict:
        """Re-estimate annotator skills (Dawid-Skene over all answers) and every
        item's posterior and status. Slow on big projects: the server runs it
        in the background; the fit itself holds no transaction open."""
        return redundancy.refit(self.db, self.get_project(project))

    def refits_due(self, *, growth: float = SCHEDULE.refit_growth, min_new: int = SCHEDULE.refit_min_new) -> list[int]:
        """Projects of an aggregatable kind (adaptive or fixed overlap) whose
        answers grew by ``growth`` (25 %) and at least ``min_new`` answers
        since their last re-fit (or that have ``min_new`` answers and were
        never fitted): what the server's background re-fitter runs next. A
        fixed-overlap project is fitted too: its final labels are its
        aggregation (:mod:`assay.engine.resolver`), not a plain vote."""
        return redundancy.refits_due(self.db, kinds.aggregatable(), growth=growth, min_new=min_new)

    def item_consensus(self, project: int | str, *, status: str | None = None, after: int | None = None,
                       limit: int = 100) -> tuple[list[dict], int | None]:
        """A keyset page of items' running consensus: label, confidence, answers, status."""
        p = self.get_project(project)
        if status not in (None, "open", "resolved", "review"):
            raise InvalidInput("status must be one of open, resolved, review")
        return redundancy.consensus(self.db, p["id"], status=status, after=after, limit=limit)

    def final_labels(self, project: int | str, *, after: int | None = None,
                     limit: int = 100) -> tuple[list[dict], int | None]:
        """A keyset page of the items' final labels, in task order: ``{item_id,
        label, source, confidence}`` (:mod:`assay.engine.resolver`, what an
        export holds) and the ``after`` of the next page (None: the last)."""
        return _resolver.labels_page(self.db, self.get_project(project), after=after, limit=limit)

    def review_queue(self, project: int | str, *, after: int | None = None, limit: int = 100):
        """Items that reached ``max_answers`` below the target confidence."""
        return self.item_consensus(project, status="review", after=after, limit=limit)

    # ------------------------------------------------------------ reports (assay.engine.reports)

    def quality_report(self, project: int | str, *, page_size: int = 5000) -> dict:
        """How good the labels are: per annotator accuracy (with a 95 % Wilson
        interval and what it rests on) and confusion, Krippendorff's alpha, a
        histogram of consensus confidence, items per consensus status and
        final labels by source. Single-label projects only; see
        :func:`assay.engine.reports.quality_report`."""
        return _reports.quality_report(self.db, self.get_project(project), page_size=page_size)

    def model_report(self, project: int | str) -> dict:
        """The in-loop model's learning curve: one row per version (answers
        spent when it was trained, verified labels, out-of-fold and
        validation accuracy, auto-label threshold and state) plus counts of
        predictions and auto-labels."""
        return _reports.model_report(self.db, self.get_project(project))

    def suggestion_stats(self, project: int | str, *, page_size: int = 5000) -> dict:
        """How answers treated the model's pre-labels (anchoring): answers
        shown a suggestion, how many accepted it, and — where the item's true
        label is known (gold, a review, or a resolved consensus) — the
        accuracy of accepted against overridden answers and of the
        suggestions themselves."""
        return _reports.suggestion_stats(self.db, self.get_project(project), page_size=page_size)

    # ------------------------------------------------------------ gold and reviews

    def import_gold(self, project: int | str, rows: Sequence[dict], *, key: str | None = None,
                    user: int | str | dict | None = None) -> dict:
        """Known labels for items of the project, as dicts ``{"item_id": …,
        "label": …}`` — or, with ``key``, ``{key: …, "label": …}`` where ``key``
        names an item metadata field (a column of the imported file, e.g. your
        own id). Their tasks become gold questions. All or nothing: a bad label
        or an unknown item stores none of them."""
        p = self.get_project(project)
        u = None if user is None else (user if isinstance(user, dict) else self.get_user(user))
        pairs = _gold.match_rows(self.db, p, rows, key)
        with self.db.write() as conn:
            out = _gold.add(conn, p, pairs, None if u is None else u["id"])
            _audit.record(conn, "gold.import", target_kind="project", target_id=p["id"], target=p["name"],
                          details={"rows": len(pairs), "key": key,
                                   **{k: v for k, v in out.items() if isinstance(v, int)}})
            warning = _gold.clustered(conn, p["id"])
        self._projects.pop(p["id"], None)
        return {**out, "warnings": [warning] if warning else []}

    def import_gold_file(self, project: int | str, path: str | os.PathLike, *, key: str | None = None,
                         user: int | str | dict | None = None) -> dict:
        """Gold from a CSV or JSONL file with ``item_id`` (or the ``key``
        column) and ``label``. Multi-label CSV cells list classes joined by
        ``|``; JSONL may give a list (:mod:`assay.formats.gold`)."""
        rows = _gold_file.read_rows(path, kinds.of(self.get_project(project)), key)
        return self.import_gold(project, rows, key=key, user=user)

    def list_gold(self, project: int | str, *, after: int | None = None, limit: int = 100):
        """A keyset page of the project's known labels (imported gold and reviews)."""
        p = self.get_project(project)
        with self.db.read() as conn:
            return _gold.list_gold(conn, p["id"], after=after, limit=max(1, min(int(limit), 1000)))

    def remove_gold(self, project: int | str, item_id: int) -> None:
        p = self.get_project(project)
        with self.db.write() as conn:
            _gold.remove(conn, p, item_id)
            _audit.record(conn, "gold.remove", target_kind="project", target_id=p["id"], target=p["name"],
                          details={"item_id": item_id})
        self._projects.pop(p["id"], None)

    def review(self, project: int | str, item_id: int, label: Any, user: int | str | dict) -> dict:
        """A reviewer's (or admin's) final label for an item: it becomes the
        item's consensus (confidence 1, method ``review``), the item gets no
        more answers, and it counts like gold (re-fits clamp it; it scores the
        annotators who answered it)."""
        p = self.get_project(project)
        u = user if isinstance(user, dict) else self.get_user(user)
        if u["role"] not in ("admin", "reviewer"):
            raise Forbidden("only reviewers and admins decide items")
        label = kinds.of(p).validate(label, p["schema"])
        with self.db.write() as conn:
            out = _gold.decide(conn, p, item_id, label, u["id"])
            _audit.record(conn, "review.decide", target_kind="project", target_id=p["id"], target=p["name"],
                          details={"item_id": item_id, "label": label})
        self._projects.pop(p["id"], None)  # has_known may have changed
        return out

    def gold_stats(self, project: int | str) -> list[dict]:
        """Per annotator: gold answers, correct, accuracy, the window since the
        last lifted pause, and whether they are paused."""
        p = self.get_project(project)
        with self.db.read() as conn:
            return _gold.stats(conn, p["id"])

    def lift_pause(self, project: int | str, user: int | str, *, by: int | str | dict | None = None) -> dict:
        """Let a paused annotator work again; their gold record starts a fresh window."""
        p = self.get_project(project)
        u = self.get_user(user)
        a = None if by is None else (by if isinstance(by, dict) else self.get_user(by))
        with self.db.write() as conn:
            try:
                out = _gold.lift_pause(conn, p, u["id"], None if a is None else a["id"])
            except NotFound:
                raise NotFound(f"{u['username']!r} is not paused in project {p['name']!r}") from None
            _audit.record(conn, "pause.lift", target_kind="project", target_id=p["id"], target=p["name"],
                          details={"user_id": u["id"], "username": u["username"]})
        return {**out, "username": u["username"]}

    # ------------------------------------------------------------ reading answers

    def list_answers(self, project: int | str, *, after: int | None = None, limit: int = 100,
                     annotator_id: int | None = None) -> tuple[list[dict], int | None]:
        p = self.get_project(project)
        return _reports.answers_page(self.db, p["id"], after=after, limit=limit, annotator_id=annotator_id)

    def progress(self, project: int | str, *, cache: bool = True) -> dict:
        """Counts for a project: tasks, done (enough answers), remaining, per annotator.

        Exact on small projects. On big ones (at least
        ``progress_cache_min_tasks`` tasks, and a count that took over 50 ms)
        the result is reused for ten times what it cost (at least 2 s), so
        that annotators' screens polling it cost little whatever the size.
        """
        p = self.get_project(project)
        now = time.monotonic()
        hit = self._progress_cache.get(p["id"]) if cache else None
        if hit is not None and hit[0] > now:
            return copy.deepcopy(hit[1])
        result = self._count_progress(p)
        cost = time.monotonic() - now
        if cost > 0.05 and result["tasks"] >= self.progress_cache_min_tasks:
            self._progress_cache[p["id"]] = (now + max(2.0, 10 * cost), copy.deepcopy(result))
        return result

    def annotator_progress(self, project: int | str, user_id: int) -> dict:
        """One annotator's own counts (always exact; index lookups only)."""
        return _reports.annotator_progress(self.db, self.get_project(project)["id"], user_id)

    def _count_progress(self, p: dict) -> dict:
        return _reports.count_progress(self.db, p)

    # ------------------------------------------------------------ export

    def export_records(self, project: int | str, *, labeled_only: bool = False) -> Iterator[dict]:
        p = self.get_project(project)
        return _export.iter_records(self.db, p, labeled_only=labeled_only)

    def _audit_export(self, project: int | str, fmt: str, labeled_only: bool, path: Path | None = None) -> None:
        """Exports are reads; the record of one is written when it starts."""
        _export.check_format(fmt)
        p = self.get_project(project)
        with self.db.write() as conn:
            _audit.record(conn, "export", target_kind="project", target_id=p["id"], target=p["name"],
                          details={"format": str(fmt)[:20], "labeled_only": bool(labeled_only),
                                   **({"path": str(path)[:500]} if path is not None else {})})

    def export_chunks(self, project: int | str, fmt: str = "jsonl", *, labeled_only: bool = False) -> Iterator[bytes]:
        """The export as a stream of byte chunks (jsonl, csv or parquet; a
        Parquet file is built in an anonymous temporary file first)."""
        self._audit_export(project, fmt, labeled_only)
        p = self.get_project(project)
        return _export.chunks(self.export_records(p["id"], labeled_only=labeled_only), fmt, kinds.of(p))

    def export(self, project: int | str, path: str | os.PathLike, fmt: str | None = None, *,
               labeled_only: bool = False) -> dict:
        """Write a snapshot of the project's labels to ``path`` (jsonl, csv or parquet).

        Written to a temporary file and renamed, so a failed export leaves no
        partial file. Returns ``{"path", "format", "items"}``.
        """
        path = Path(path)
        fmt = (fmt or path.suffix.lstrip(".") or "jsonl").lower()
        _export.check_format(fmt)
        self._audit_export(project, fmt, labeled_only, path=path)
        p = self.get_project(project)
        n = _export.write_file(self.export_records(p["id"], labeled_only=labeled_only), path, fmt, kinds.of(p))
        return {"path": str(path), "format": fmt, "items": n}

    # ------------------------------------------------------------ bring your own model
    # A Label Studio compatible ML backend or a registered Python model
    # pre-labels a project's items; assay.learn.ml_backend speaks the protocol,
    # assay.learn.predict runs it over the items and stores the predictions.

    _backends_seen: tuple[float, bool] = (0.0, True)
    #: this server's address for content URLs in webhooks (set by the server;
    #: ``ASSAY_PUBLIC_URL`` wins)
    public_base_url: str | None = None

    def backends_in_use(self) -> bool:
        """Whether any project has an ML backend (re-read at most every
        :attr:`project_cache_seconds`; at once after a change through this
        workspace), so that the answer hook costs nothing without one."""
        until, used = self._backends_seen
        now = time.monotonic()
        if now < until:
            return used
        used = _predict.any_backend(self.db)
        self._backends_seen = (now + self.project_cache_seconds, used)
        return used

    def _backend_url(self, project_id: int) -> str | None:
        """The stored URL, password included (get_project shows it redacted)."""
        return _predict.stored_url(self.db, project_id)

    def _backend(self, p: dict):
        """A client for the project's backend; InvalidInput when it has none."""
        return _predict.backend(self.db, p)

    def connect_backend(self, project: int | str, url: str | None, *, base_url: str | None = None,
                        access_token: str | None = None) -> dict:
        """Point a project at a model: ``http(s)://…`` (a Label Studio
        compatible ML backend) or ``python:<name>`` (see
        :func:`assay.learn.ml_backend.register_model`); None disconnects. The
        backend must answer ``/health`` with ``UP`` and accept ``/setup``
        before it is stored. Returns ``{"project_id", "url", "health",
        "model_version"}``."""
        p = self.get_project(project)
        url = _ml_backend.check_url(url)
        if url is None:
            self.update_project(p["id"], ml_backend_url=None)
            return {"project_id": p["id"], "url": None, "health": None, "model_version": None}
        client = _ml_backend.connect(url)
        health = client.health()
        setup = _predict.setup(self.db, p, client, base_url=base_url, access_token=access_token)
        self.update_project(p["id"], ml_backend_url=url)
        return {"project_id": p["id"], "url": _ml_backend.redact(url), "health": health,
                "model_version": setup["model_version"]}

    def backend_health(self, project: int | str) -> dict:
        """The backend's ``/health`` answer (``{"status": "UP", …}``);
        :class:`~assay.learn.ml_backend.BackendUnreachable` or
        :class:`~assay.learn.ml_backend.BackendProtocolError` otherwise."""
        p = self.get_project(project)
        client = self._backend(p)
        return {"project_id": p["id"], "url": p["ml_backend_url"], "health": client.health()}

    def backend_setup(self, project: int | str, *, base_url: str | None = None,
                      access_token: str | None = None, extra_params: dict | None = None) -> dict:
        """Send the project's label config to the backend (``/setup``);
        returns ``{"project_id", "model_version", "response"}``. ``base_url``
        (this server's address) goes as ``hostname``; ``access_token`` lets
        the backend fetch image content (sent back as a Bearer token)."""
        p = self.get_project(project)
        return _predict.setup(self.db, p, self._backend(p), base_url=base_url, access_token=access_token,
                              extra_params=extra_params)

    def backend_predict(self, project: int | str, item_ids: Sequence[int] | None = None, batch: int = 64,
                        base_url: str | None = None) -> dict:
        """Ask the project's model for a label for each item (all, or
        ``item_ids``), ``batch`` items per call, and store them in
        ``predictions`` (one row per item: label, confidence = the backend's
        score — 1.0 when it gives none — and ``model_version``).

        All or nothing: an unreachable backend or a malformed answer raises
        and stores nothing. Choices the project does not have are skipped
        and counted. ``model_version`` is an integer: each distinct (backend
        URL, backend version string) gets an ``ml_models`` row (``metrics``
        ``{"source": "backend", "backend_version", "url"}``, numbered after
        the project's existing versions, carrying over the in-loop model's
        threshold and auto-label state) and keeps that number.

        Returns counts: ``tasks`` (sent), ``stored``, ``no_prediction``,
        ``skipped_unknown`` (tasks with no known class), ``unknown_choices``,
        ``without_score``, ``model_versions`` ({backend version: int}) and
        ``seconds`` (:func:`assay.learn.predict.predict`).
        """
        return _predict.predict(self.db, self.blobs, self.get_project(project), item_ids, batch, base_url)

    def notify_backend(self, answer: dict, *, base_url: str | None = None) -> bool:
        """Queue a new answer for the project's backend (``/webhook``, as Label
        Studio's ``ANNOTATION_CREATED``). Returns at once; a background thread
        sends it, and a failing backend only logs a warning. False when the
        project has no backend (or the queue is full)."""
        p = self.get_project(answer["project_id"])
        if not p.get("ml_backend_url"):
            return False
        return self._backend_notifier().put((answer, base_url))

    def _backend_notifier(self) -> _webhooks.DeliveryQueue:
        n = self.__dict__.get("_backend_notifier_obj")
        if n is None:
            with self._lock:
                n = self.__dict__.get("_backend_notifier_obj")
                if n is None:
                    n = self._backend_notifier_obj = _webhooks.DeliveryQueue(
                        lambda job: _webhooks.send_answer(self, job))
        return n

    def backend_notifications(self) -> dict:
        """Counts of webhook notifications: queued, sent, failed, dropped."""
        return dict(self._backend_notifier().stats)

    def wait_backend_notifications(self, timeout: float = 10.0) -> bool:
        """Block until queued webhook notifications were sent (tests, scripts)."""
        return self._backend_notifier().wait(timeout)

    # ------------------------------------------------------------ status

    def status(self) -> dict:
        with self.db.read() as conn:
            counts = {name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                      for name, t in [("datasets", datasets), ("items", items), ("projects", projects),
                                      ("users", users), ("answers", answers)]}
        return {"home": str(self.home), "database": self.db.dialect, **counts,
                "schema_revision": migrate.current(self.db)}

