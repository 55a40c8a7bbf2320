"""The workspace's core: opening and closing it, its status, and the
per-process state every part of :class:`assay.workspace.Workspace` shares.

The per-process caches, all on the instance. Each entry expires, so a
change made by another process shows within that time; a change made
through this workspace drops the entry at once:

- ``_projects``: project id -> the project dict, for
  ``project_cache_seconds`` (5 s). Filled by ``get_project``; dropped by
  ``update_project`` and ``forget_project``, and by ``import_gold``,
  ``remove_gold`` and ``review`` (the project's known labels changed).
- ``_member_cache``: (project id, user id) -> is a member, for 5 s. Filled
  by ``is_member``; cleared by ``add_member``, ``remove_member`` and
  ``add_user(projects=…)``.
- ``_auth_cache``: token -> (user, token id), for ``authenticate``'s
  ``cache_seconds`` (5 s), never past the token's expiry. Dropped by
  ``revoke_token``, ``logout``, ``set_role``, ``login`` (the tokens it
  revoked) and a failed look-up; emptied past 10,000 entries.
- ``_progress_cache``: project id -> ``progress`` counts, big projects only
  (``progress_cache_min_tasks``), for ten times what the count cost (at
  least 2 s). Nothing drops it: entries expire, and for
  ``progress_stale_seconds`` (60 s) after that are still answered while a
  background thread counts again (``_progress_counting``: the projects
  being counted).
- ``_skill_cache``: (project id, min_confidence) -> (the key of its
  inputs, when they were read whole, the inputs, the whole skill map).
  Filled by ``skill_map`` (:mod:`assay.engine.skillmap`): an entry is
  served while :func:`assay.engine.skillmap.inputs` (counts and last ids of
  answers and gold rows, the last re-fit and model version) still gives its
  key; after new answers only they and their items are read; after any
  other change (undo, gold row, review, re-fit, model step), from any
  process, everything is read again, as it is ``skill_cache_seconds``
  (300 s) after a whole read. Emptied past 16 entries; ``_skill_lock`` lets
  one computation run at a time.
- ``_quality_cache``: (project id, report, …) -> (the key of its state,
  the report, when it was computed, what it cost): the quality report and
  the label-error rankings. Filled by ``quality_report`` and
  ``label_errors`` (``_kept_report``): served while
  :func:`assay.engine.reports.quality_key` still gives its key (any change,
  from any process, shows in the key), for ``quality_cache_seconds``
  (300 s) at most. A changed key computes the report again in the request;
  for the server's routes (``stale_ok``) a report that cost over
  ``quality_inline_seconds`` (0.5 s) is instead answered as stale while a
  background thread computes it;
  ``_quality_locks`` (one per project) lets one computation run at a time.
  Emptied past 64 entries.
- ``_exam_passed``: (project id, user id) pairs that passed the project's
  qualification exam (:mod:`assay.engine.exam`), so the exam gate costs a
  set look-up once passed. A pass is final: nothing drops an entry (the set
  is emptied past 100,000 entries).
- ``_series_cache``: (project id, bucket seconds) -> the live progress
  charts' closed buckets (:class:`assay.engine.progress_series.SeriesCache`),
  read whole again after 300 s; a poll reads only the open bucket's answers.
- ``_backends_seen``: whether any project has an ML backend, for
  ``project_cache_seconds``. Reset by ``update_project``.

Besides them: ``_toucher`` (the thread that writes tokens'
``last_used_at``) and ``_backend_notifier_obj`` (the webhook queue), both
made on first use under ``_lock`` and ended by :meth:`Core.close`.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.exc import InterfaceError, OperationalError

from assay import security
from assay.config import config
from assay.engine import progress_series as _progress_series
from assay.errors import Unavailable
from assay.jobs import webhooks as _webhooks
from assay.store import BlobStore, Database, migrate
from assay.store.schema import answers, datasets, items, projects, users
from assay.store.vectors import VectorStore

if TYPE_CHECKING:
    from assay.workspace import Workspace

DEFAULT_HOME = "assay-data"


class Core:
    """The folder, the database, the blob and vector stores, and the caches."""

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
                raise Unavailable(self.db.connect_problem(exc)) from None
            self.sweep_litter()  # what an import killed mid-way left behind
        self._projects: dict[int, tuple[float, dict]] = {}
        self._auth_cache: dict[str, tuple[float, dict, int]] = {}
        self._toucher = None  # thread that writes tokens' last_used_at
        self.accounts = security.AccountSettings.from_env()
        self._progress_cache: dict[int, tuple[float, dict]] = {}
        self._progress_counting: set[int] = set()
        self._member_cache: dict[tuple[int, int], tuple[float, bool]] = {}
        self._exam_passed: set[tuple[int, int]] = set()
        self._skill_cache: dict[tuple[int, float], tuple] = {}
        self._skill_lock = threading.Lock()
        self._series_cache = _progress_series.SeriesCache()
        self._quality_cache: dict[tuple, tuple] = {}
        self._quality_locks: dict[int, threading.Lock] = {}
        self._lock = threading.Lock()
        self._set_up = False  # once a user exists it stays so (accounts part: needs_setup)
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

    def status(self) -> dict:
        with self.db.read() as conn:
            counts = {name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                      for name, t in [("datasets", datasets), ("items", items), ("projects", projects),
                                      ("users", users), ("answers", answers)]}
        return {"home": str(self.home), "database": self.db.dialect, **counts,
                "schema_revision": migrate.current(self.db)}
