"""Engines for SQLite (the embedded default) and PostgreSQL, and the
transaction helpers every use-case goes through."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, create_engine, event
from sqlalchemy.engine import Engine, make_url

from assay.errors import InvalidInput

_WRITE = "assay_write"


class Database:
    """One database, SQLite or PostgreSQL, with read and write transactions.

    SQLite: WAL, foreign keys on, a busy timeout, and write transactions that
    start with ``BEGIN IMMEDIATE`` so two writers never deadlock upgrading a
    read lock. PostgreSQL: READ COMMITTED; hand-out uses ``SKIP LOCKED``.
    """

    def __init__(self, url: str, *, echo: bool = False) -> None:
        try:
            parsed = make_url(url)
        except Exception as exc:  # sqlalchemy raises ArgumentError
            raise InvalidInput(f"not a database URL: {url!r} ({exc})") from None
        self.url = parsed
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise InvalidInput(
                f"unsupported database {self.dialect!r}: use sqlite:///PATH or postgresql+psycopg://…"
            )
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(url, echo=echo)
        else:
            self.engine = create_engine(
                url,
                echo=echo,
                pool_size=int(os.environ.get("ASSAY_DB_POOL_SIZE", "10")),
                max_overflow=20,
                pool_pre_ping=True,
            )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: commits on success, rolls back on any error."""
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                yield conn

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (one consistent snapshot)."""
        with self.engine.connect() as conn:
            with conn.begin():
                yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_engine(url: str, *, echo: bool) -> Engine:
    path = make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, echo=echo, pool_size=8, max_overflow=16)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - trivial
        # Take transaction control away from the sqlite3 module so that we
        # can say BEGIN IMMEDIATE ourselves.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA cache_size=-65536")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover - trivial
        if conn.get_execution_options().get(_WRITE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine
