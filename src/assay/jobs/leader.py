"""Exactly one leader per background job across server processes.

A runner asks :meth:`Leadership.lead` before each round of a job; only the
process that gets ``True`` runs the round. The others ask again next round,
so when the leader stops (or dies) another process takes over within one
interval.

* PostgreSQL (:class:`AdvisoryLocks`): one session-level
  ``pg_try_advisory_lock(key)`` per job, ``key`` derived from the job's name
  (:func:`lock_key`), on a dedicated connection (outside the pool) that is
  held while leading. Each round the leader checks the connection still
  answers; a lost connection means lost locks, and the job stops leading
  until it wins the lock again. Advisory locks belong to one database, so
  two databases on one server never compete.
* SQLite (:class:`FileLock`): ``fcntl.flock`` on ``<database file>.jobs.lock``
  (in the workspace home by default): the one process holding it runs every
  job, since SQLite has one writer anyway. The operating system releases
  the lock when that process ends, however it ends.

A leader that loses its lock in the middle of a round (its PostgreSQL
connection dropped) finishes that round while another may start one: jobs
are written to be safe when that happens (each round reads the state it
acts on, writes in its own transactions).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Protocol

log = logging.getLogger("assay.jobs")


class Leadership(Protocol):
    """Who runs a job: ``lead(job)`` before each round (True: run it),
    ``resign(job)`` when the job stops, ``close()`` when the runner stops."""

    def lead(self, job: str) -> bool: ...

    def resign(self, job: str) -> None: ...

    def close(self) -> None: ...


class Always:
    """Every caller leads: one process by construction (an in-memory
    database), or jobs each process must run for itself."""

    def lead(self, job: str) -> bool:
        return True

    def resign(self, job: str) -> None:
        pass

    def close(self) -> None:
        pass


def lock_key(job: str) -> int:
    """The advisory lock key of ``job``: a signed 64-bit integer from its name."""
    digest = hashlib.blake2b(f"assay.jobs:{job}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class AdvisoryLocks:
    """PostgreSQL: one advisory lock per job on one dedicated connection."""

    def __init__(self, url) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        self._engine = create_engine(url, poolclass=NullPool)  # never borrows from the app's pool
        self._conn = None
        self._held: set[str] = set()
        self._lock = threading.Lock()

    def lead(self, job: str) -> bool:
        from sqlalchemy import exc, text

        with self._lock:
            try:
                if self._conn is None:
                    self._conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                if job in self._held:
                    self._conn.exec_driver_sql("SELECT 1")  # the session lives, so its lock does
                    return True
                got = self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key(job)}).scalar()
            except exc.SQLAlchemyError as e:
                log.warning("job leadership: the lock connection failed (%s); leading nothing until it is back",
                            e.__class__.__name__)
                self._drop()
                return False
            if got:
                self._held.add(job)
                log.info("this process now leads job %r", job)
            return bool(got)

    def resign(self, job: str) -> None:
        from sqlalchemy import exc, text

        with self._lock:
            if job not in self._held:
                return
            self._held.discard(job)
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(job)})
            except exc.SQLAlchemyError:
                self._drop()  # closing the session releases its locks anyway
            if not self._held:
                self._drop()

    def close(self) -> None:
        with self._lock:
            self._drop()
        self._engine.dispose()

    def _drop(self) -> None:
        self._held.clear()
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a dead connection; its locks died with it
                log.debug("closing the lock connection failed", exc_info=True)


class FileLock:
    """SQLite: the process holding ``flock(path)`` leads every job."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._fd: int | None = None
        self._held: set[str] = set()
        self._lock = threading.Lock()

    def lead(self, job: str) -> bool:
        import fcntl

        with self._lock:
            if self._fd is None:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:  # another process leads
                    os.close(fd)
                    return False
                self._fd = fd
                log.info("this process now runs the background jobs of %s", self.path)
            self._held.add(job)
            return True

    def resign(self, job: str) -> None:
        with self._lock:
            self._held.discard(job)
            if not self._held:
                self._release()

    def close(self) -> None:
        with self._lock:
            self._held.clear()
            self._release()

    def _release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor of the open file drops its flock


def for_database(db) -> Leadership:
    """The leadership that fits ``db`` (an :class:`assay.store.Database`)."""
    if db.dialect == "postgresql":
        return AdvisoryLocks(db.url)
    path = db.url.database
    if not path or path == ":memory:":
        return Always()
    try:
        import fcntl  # noqa: F401 - POSIX only
    except ImportError:  # pragma: no cover - Windows: run one server process
        log.warning("no fcntl here: every process runs background jobs (run one server process)")
        return Always()
    return FileLock(f"{path}.jobs.lock")
