"""Engines for SQLite (the embedded default) and PostgreSQL, and the
transaction helpers every use-case goes through."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import JSON, Connection, create_engine, event, exc
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.sql.elements import TextClause

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

    @contextlib.contextmanager
    def fast_write(self) -> Iterator[FastConnection]:
        """Like :meth:`write`, but statements go straight to the DB-API cursor.

        For the hot paths (hand-out, answers): the same ``text()`` statements
        and parameters, without SQLAlchemy's per-statement machinery (a
        statement costs a few microseconds instead of ~50). Rows are named
        tuples; driver errors are raised as SQLAlchemy's exceptions
        (``IntegrityError`` …) so callers handle them the same way.
        """
        with self._fast(write=True) as conn:
            yield conn

    @contextlib.contextmanager
    def fast_read(self) -> Iterator[FastConnection]:
        """Like :meth:`read`, on the bare DB-API cursor (see :meth:`fast_write`)."""
        with self._fast(write=False) as conn:
            yield conn

    @contextlib.contextmanager
    def _fast(self, write: bool) -> Iterator[FastConnection]:
        raw = self.engine.raw_connection()  # pooled; pre-ping and pool events apply
        try:
            dbapi_conn = raw.driver_connection
            cur = dbapi_conn.cursor()
            conn = FastConnection(self, cur)
            try:
                if self.is_sqlite:
                    conn._run("BEGIN IMMEDIATE" if write else "BEGIN", None)
                yield conn
            except BaseException:
                try:
                    dbapi_conn.rollback()
                except Exception:  # the original error matters more
                    pass
                raise
            else:
                try:
                    dbapi_conn.commit()
                except self._dbapi_error as e:
                    raise exc.DBAPIError.instance("COMMIT", None, e, self._dbapi_error) from e
            finally:
                cur.close()
        finally:
            raw.close()  # back to the pool

    @property
    def _dbapi_error(self):
        return self.engine.dialect.loaded_dbapi.Error

    @functools.cached_property
    def fast(self) -> FastDatabase:
        """This database seen through :meth:`fast_read` / :meth:`fast_write`.

        Pass it where code takes a ``Database`` and only runs ``text()``
        statements in ``db.read()`` / ``db.write()`` blocks (the hand-out).
        """
        if os.environ.get("ASSAY_TMP_NO_FAST"):  # TEMPORARY A/B switch
            return self
        return FastDatabase(self)

    def dispose(self) -> None:
        self.engine.dispose()


class FastDatabase:
    """A :class:`Database` whose ``read()`` / ``write()`` are the fast ones."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect
        self.is_sqlite = db.is_sqlite
        self.read = db.fast_read
        self.write = db.fast_write


_NAMED = re.compile(r"(?<![:\w]):(\w+)")


class FastConnection:
    """A transaction on a bare DB-API cursor that runs ``text()`` statements."""

    __slots__ = ("db", "cur", "_cache")

    def __init__(self, db: Database, cur) -> None:
        self.db = db
        self.cur = cur
        self._cache = _STATEMENTS.setdefault(db.dialect, {})

    def _prepare(self, stmt):
        """(sql, JSON bind names, JSON result names) for ``stmt``, cached."""
        key = stmt if isinstance(stmt, str) else id(stmt)
        hit = self._cache.get(key)
        if hit is not None and (isinstance(stmt, str) or hit[3] is stmt):
            return hit
        clause = getattr(stmt, "element", stmt)  # TextualSelect -> its TextClause
        if isinstance(stmt, str):
            sql, jbind, jcols = stmt, (), ()
        elif isinstance(clause, TextClause):
            sql = clause.text
            jbind = tuple(n for n, b in clause._bindparams.items() if isinstance(b.type, JSON))
            jcols = tuple(c.name for c in getattr(stmt, "selected_columns", ()) if isinstance(c.type, JSON))
        else:
            raise TypeError(f"fast connections run text() statements, not {type(stmt).__name__}")
        if not self.db.is_sqlite:
            sql = _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))
        hit = (sql, jbind, jcols, stmt)
        self._cache[key] = hit
        return hit

    def _run(self, sql: str, params):
        try:
            if params is None:
                self.cur.execute(sql)
            else:
                self.cur.execute(sql, params)
        except self.db._dbapi_error as e:
            raise exc.DBAPIError.instance(sql, params, e, self.db._dbapi_error) from e

    def execute(self, stmt, params: dict | list[dict] | None = None) -> FastResult:
        sql, jbind, jcols, _ = self._prepare(stmt)
        if isinstance(params, list):  # executemany, as SQLAlchemy does for a list
            if jbind:
                params = [{k: json.dumps(v) if k in jbind else v for k, v in p.items()} for p in params]
            try:
                self.cur.executemany(sql, params)
            except self.db._dbapi_error as e:
                raise exc.DBAPIError.instance(sql, params, e, self.db._dbapi_error) from e
            return FastResult(self.cur, ())
        if jbind and params:
            params = dict(params)
            for n in jbind:
                if n in params:
                    params[n] = json.dumps(params[n])
        if params is None and not self.db.is_sqlite:
            params = {}  # so that psycopg turns the escaped %% back into %
        self._run(sql, params)
        return FastResult(self.cur, jcols if self.db.is_sqlite else ())


_STATEMENTS: dict[str, dict] = {}
_ROW_TYPES: dict[tuple, type] = {}


class FastResult:
    """The rows of one statement, with the few SQLAlchemy ``Result`` methods we use."""

    __slots__ = ("_cur", "_jcols", "_type", "_jidx")

    def __init__(self, cur, jcols) -> None:
        self._cur = cur
        self._jcols = jcols
        desc = cur.description
        if desc is None:
            self._type = None
            return
        names = tuple(d[0] for d in desc)
        t = _ROW_TYPES.get(names)
        if t is None:
            t = _ROW_TYPES[names] = namedtuple("Row", names, rename=True)
        self._type = t
        self._jidx = [names.index(c) for c in jcols if c in names]

    def _make(self, raw):
        if self._jidx:
            raw = list(raw)
            for i in self._jidx:
                if isinstance(raw[i], str):
                    raw[i] = json.loads(raw[i])
        return self._type._make(raw)

    def first(self):
        if self._type is None:
            return None
        raw = self._cur.fetchone()
        return None if raw is None else self._make(raw)

    def one(self):
        r = self.first()
        if r is None:
            raise exc.NoResultFound("No row was found when one was required")
        return r

    def all(self) -> list:
        if self._type is None:
            return []
        return [self._make(r) for r in self._cur.fetchall()]

    def scalar(self):
        r = self.first()
        return None if r is None else r[0]

    def scalar_one(self):
        return self.one()[0]


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
