"""Engines for SQLite (the embedded default) and PostgreSQL, and the
transaction helpers every use-case goes through."""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import logging
import re
import threading
import weakref
from collections import namedtuple
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import JSON, Connection, create_engine, event, exc
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.sql.elements import TextClause

from assay.config import config
from assay.errors import InvalidInput

_WRITE = "assay_write"
_log = logging.getLogger("assay.store")


#: In a project with gold the hand-out shuffles the pool within windows of
#: this many item ids (the whole pool of any project up to that size); a
#: bigger pool goes out window after window, so the rows it touches stay few
#: enough to be cached.
SHUFFLE_WINDOW = 65536


def dialect_of(conn) -> str:
    """``"sqlite"`` or ``"postgresql"``: the database behind a SQLAlchemy
    connection or a fast lane's :class:`FastConnection`."""
    fast_db = getattr(conn, "db", None)
    return fast_db.dialect if fast_db is not None else conn.dialect.name


def shuffle_key_sql(dialect: str, item_id: str, shuffled: str = "1 = 1") -> str:
    """SQL for a task's ``shuffle_key`` from the SQL expression of its item
    id: the item's window of :data:`SHUFFLE_WINDOW` ids, plus a random place
    in it where the SQL condition ``shuffled`` holds (a project with gold to
    hide), else none (the pool then goes out in id order, which keeps the
    hand-out's writes together: see :mod:`assay.engine.handout`)."""
    w = int(SHUFFLE_WINDOW)
    rnd = f"abs(random() % {w})" if dialect == "sqlite" else f"floor(random() * {w})::bigint"
    return f"(({item_id}) / {w}) * {w} + CASE WHEN {shuffled} THEN {rnd} ELSE 0 END"


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
        self._local = threading.local()  # each thread's open fast transaction and connection
        self._own: weakref.WeakSet = weakref.WeakSet()
        self._own_lock = threading.Lock()
        self._writers = _FifoLock()  # SQLite fast write transactions of this process, in turn
        self._generation = 0
        self._sqlite_settings: dict = {}
        self._checkpointer: tuple[threading.Thread, threading.Event] | None = None
        if self.dialect == "sqlite":
            self.engine = _sqlite_engine(url, echo=echo, settings=self._sqlite_settings)
        else:
            self.engine = create_engine(
                url,
                echo=echo,
                pool_size=config().db_pool_size,
                max_overflow=20,
                pool_pre_ping=True,
            )

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    def shuffle_key(self, item_id: str, shuffled: str = "1 = 1") -> str:
        """:func:`shuffle_key_sql` for this database."""
        return shuffle_key_sql(self.dialect, item_id, shuffled)

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

    def fast_write(self) -> _FastTransaction:
        """Like :meth:`write`, but statements go straight to the DB-API cursor.

        For the hot paths (hand-out, answers): the same ``text()`` statements
        and parameters, without SQLAlchemy's per-statement machinery (a
        statement costs a few microseconds instead of ~50). Rows are named
        tuples; driver errors are raised as SQLAlchemy's exceptions
        (``IntegrityError`` …) so callers handle them the same way.

        Nested fast transactions of the same thread join the outer one (a
        write joins only a write), so several steps can share one transaction.
        Each thread keeps one connection for these (outside the pool; closed
        by :meth:`dispose`), which saves the pool checkout and, on PostgreSQL,
        the pre-ping round trip.
        """
        return _FastTransaction(self, True)

    def fast_read(self) -> _FastTransaction:
        """Like :meth:`read`, on the bare DB-API cursor (see :meth:`fast_write`)."""
        return _FastTransaction(self, False)

    def _own_connection(self, fresh: bool = False):
        """This thread's own DB-API connection for fast transactions.

        Made by the engine (same connect-time setup), then detached from the
        pool. PostgreSQL ones run in autocommit mode: fast transactions say
        BEGIN / COMMIT themselves, and a dead one is replaced (no pre-ping).
        """
        mine = getattr(self._local, "raw", None)
        if mine is not None:
            if not fresh and mine[2] == self._generation and not getattr(mine[1], "closed", False):
                return mine[1]
            self._local.raw = None
            with contextlib.suppress(Exception):
                mine[1].close()  # the driver's own close: no reset on a dead connection
        raw = self.engine.raw_connection()
        dbapi_conn = raw.driver_connection
        raw.detach()  # this thread's own from now on
        if not self.is_sqlite:
            dbapi_conn.autocommit = True
        with self._own_lock:
            self._own.add(raw)
        self._local.raw = (raw, dbapi_conn, self._generation)
        return dbapi_conn

    def _close_own_connections(self) -> None:
        """Close the per-thread fast-transaction connections (threads open fresh ones)."""
        with self._own_lock:
            self._generation += 1
            own, self._own = list(self._own), weakref.WeakSet()
        for raw in own:
            with contextlib.suppress(Exception):
                raw.dbapi_connection.close()

    @property
    def _dbapi_error(self):
        return self.engine.dialect.loaded_dbapi.Error

    @functools.cached_property
    def fast(self) -> FastDatabase:
        """This database seen through :meth:`fast_read` / :meth:`fast_write`.

        Pass it where code takes a ``Database`` and only runs ``text()``
        statements in ``db.read()`` / ``db.write()`` blocks (the hand-out).
        """
        return FastDatabase(self)

    def start_checkpointer(self, interval: float = 0.2, fallback_pages: int = 20000) -> bool:
        """SQLite: copy the WAL back into the database from a background thread.

        By default SQLite checkpoints inside whichever commit pushes the WAL
        past 1000 pages: that commit then copies every page written since the
        last checkpoint and fsyncs (several ms, at times far more), stalling a
        server's event loop. A long-running server calls this: a thread runs
        ``PRAGMA wal_checkpoint(PASSIVE)`` every ``interval`` seconds (it
        never waits for readers or writers) and does the copying and fsyncs
        while requests go on. This process's own commits checkpoint only past
        ``fallback_pages`` (about 80 MB of WAL): by then the thread has copied
        nearly everything, and that checkpoint is what lets the WAL start over
        (a background checkpoint racing busy writers never quite finishes).
        Measured with the hand-out benchmark, 20000 beat 1000 and no thread.
        Returns whether a thread was started (not for PostgreSQL or an
        in-memory database).
        """
        path = self.url.database
        if not self.is_sqlite or not path or path == ":memory:" or self._checkpointer is not None:
            return False
        self._sqlite_settings["wal_autocheckpoint"] = int(fallback_pages)
        self._close_own_connections()  # new connections pick up the new setting
        self.engine.dispose()
        stop = threading.Event()
        t = threading.Thread(target=_checkpoint_loop, args=(path, interval, stop),
                             name="assay-wal-checkpoint", daemon=True)
        t.start()
        self._checkpointer = (t, stop)
        return True

    def stop_checkpointer(self) -> None:
        if self._checkpointer is not None:
            t, stop = self._checkpointer
            self._checkpointer = None
            stop.set()
            t.join(10)
            self._sqlite_settings.pop("wal_autocheckpoint", None)

    def dispose(self) -> None:
        self.stop_checkpointer()
        self._close_own_connections()
        self.engine.dispose()

    def connect_problem(self, exc: Exception) -> str:
        """One line for an error opening this database: which one (password
        hidden), why, and what to check."""
        where = self.url.render_as_string(hide_password=True)
        orig = getattr(exc, "orig", None) or exc
        why = " ".join(str(orig).split())  # psycopg's messages span lines
        if len(why) > 300:
            why = why[:300] + "…"
        if self.is_sqlite:
            return f"cannot open the database {where}: {why}"
        why = why.rstrip(".?! ")
        return (f"cannot connect to PostgreSQL at {where}: {why}. Check ASSAY_DATABASE_URL, that the server "
                "is running and reachable, and that the database and role exist (createdb NAME)")


def _checkpoint_loop(path: str, interval: float, stop: threading.Event) -> None:
    import sqlite3

    con = None
    while not stop.wait(interval):
        try:
            if con is None:
                con = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                con.execute("PRAGMA busy_timeout=0")
            con.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error:  # busy or a hiccup: the next round tries again
            _log.debug("WAL checkpoint failed", exc_info=True)
    if con is not None:
        con.close()


class _FifoLock:
    """A lock handed to waiting threads in arrival order (``threading.Lock``
    lets the releasing thread take it straight back)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._busy = False
        self._waiters: collections.deque = collections.deque()

    def acquire(self) -> None:
        with self._mutex:
            if not self._busy:
                self._busy = True
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        turn.acquire()  # released by the previous holder: the lock is ours

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().release()  # hand over; stays busy
            else:
                self._busy = False


class _FastTransaction:
    """The context manager behind :meth:`Database.fast_write` / ``fast_read``."""

    __slots__ = ("db", "write", "conn", "dbapi", "prev", "joined")

    def __init__(self, db: Database, write: bool) -> None:
        self.db = db
        self.write = write

    def __enter__(self) -> FastConnection:
        db = self.db
        outer = getattr(db._local, "fast", None)
        if outer is not None and (outer[1] or not self.write):
            # Inside a fast transaction of this thread (a write one, or a read
            # one and this is a read): join it. It commits or rolls back as one.
            self.joined = True
            return outer[0]
        self.joined = False
        queued = self.write and db.is_sqlite
        if queued:
            # SQLite has one writer at a time: this process's writers queue
            # here in turn instead of polling in SQLite's busy handler, where
            # the thread that just committed nearly always wins again.
            db._writers.acquire()
        try:
            begin = "BEGIN IMMEDIATE" if queued else "BEGIN"
            for attempt in (0, 1):
                self.dbapi = db._own_connection(fresh=attempt > 0)
                self.conn = FastConnection(db, self.dbapi.cursor())
                try:
                    self.conn._run(begin, None)
                    break
                except exc.OperationalError:
                    self.conn.cur.close()
                    # PostgreSQL: a connection the server dropped (restart, idle
                    # timeout) fails here, before anything happened: retry once.
                    if attempt or db.is_sqlite or not getattr(self.dbapi, "broken", False):
                        raise
        except BaseException:
            if queued:
                db._writers.release()
            raise
        self.prev = outer
        db._local.fast = (self.conn, self.write)
        return self.conn

    def __exit__(self, etype, evalue, tb) -> None:
        if self.joined:
            return
        db = self.db
        db._local.fast = self.prev
        cur = self.conn.cur
        try:
            if etype is None:
                try:
                    cur.execute("COMMIT")
                except db._dbapi_error as e:
                    with contextlib.suppress(Exception):
                        cur.execute("ROLLBACK")
                    raise exc.DBAPIError.instance("COMMIT", None, e, db._dbapi_error) from e
            else:
                with contextlib.suppress(Exception):  # the original error matters more
                    cur.execute("ROLLBACK")
        finally:
            cur.close()
            if self.write and db.is_sqlite:
                db._writers.release()


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

    __slots__ = ("db", "cur", "_cache", "_sqlite", "_error")

    def __init__(self, db: Database, cur) -> None:
        self.db = db
        self.cur = cur
        self._sqlite = db.is_sqlite
        self._error = db._dbapi_error
        self._cache = _STATEMENTS.setdefault(db.dialect, {})

    def _prepare(self, stmt) -> list:
        """``[sql, JSON bind names, JSON result names, stmt, row type]`` for ``stmt``, cached."""
        key = stmt if isinstance(stmt, str) else id(stmt)
        hit = self._cache.get(key)
        if hit is not None and (hit[3] is stmt or isinstance(stmt, str)):
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
        if not self._sqlite:
            sql = _NAMED.sub(r"%(\1)s", sql.replace("%", "%%"))
            jcols = ()  # psycopg parses json columns itself
        hit = [sql, jbind, jcols, stmt, None]
        self._cache[key] = hit
        return hit

    def _run(self, sql: str, params):
        try:
            if params is None:
                self.cur.execute(sql)
            else:
                self.cur.execute(sql, params)
        except self._error as e:
            raise exc.DBAPIError.instance(sql, params, e, self._error) from e

    def execute(self, stmt, params: dict | list[dict] | None = None) -> FastResult:
        entry = self._prepare(stmt)
        sql, jbind = entry[0], entry[1]
        if isinstance(params, list):  # executemany, as SQLAlchemy does for a list
            if jbind:
                params = [{k: json.dumps(v) if k in jbind else v for k, v in p.items()} for p in params]
            try:
                self.cur.executemany(sql, params)
            except self._error as e:
                raise exc.DBAPIError.instance(sql, params, e, self._error) from e
            return FastResult(self.cur, entry)
        if jbind and params:
            params = dict(params)
            for n in jbind:
                if n in params:
                    params[n] = json.dumps(params[n])
        if params is None and not self._sqlite:
            params = {}  # so that psycopg turns the escaped %% back into %
        self._run(sql, params)
        return FastResult(self.cur, entry)


_STATEMENTS: dict[str, dict] = {}


def _row_type(cur, entry: list):
    """(named tuple type, indexes of JSON columns) for the rows of ``cur``; cached
    on the statement's entry (a statement's columns do not change)."""
    desc = cur.description
    if desc is None:
        return None
    names = tuple(d[0] for d in desc)
    info = entry[4]
    if info is None or info[0] != names:
        t = namedtuple("Row", names, rename=True)
        info = entry[4] = (names, t, tuple(names.index(c) for c in entry[2] if c in names))
    return info


class FastResult:
    """The rows of one statement, with the few SQLAlchemy ``Result`` methods we use."""

    __slots__ = ("_cur", "_entry")

    def __init__(self, cur, entry: list) -> None:
        self._cur = cur
        self._entry = entry

    def _rows(self, raws) -> list:
        info = _row_type(self._cur, self._entry)
        if info is None:
            return []
        _, t, jidx = info
        out = []
        for raw in raws:
            if jidx:
                raw = list(raw)
                for i in jidx:
                    if isinstance(raw[i], str):
                        raw[i] = json.loads(raw[i])
            out.append(t._make(raw))
        return out

    def first(self):
        if self._cur.description is None:
            return None
        raw = self._cur.fetchone()
        return None if raw is None else self._rows((raw,))[0]

    def one(self):
        r = self.first()
        if r is None:
            raise exc.NoResultFound("No row was found when one was required")
        return r

    def all(self) -> list:
        if self._cur.description is None:
            return []
        return self._rows(self._cur.fetchall())

    def scalar(self):
        r = self.first()
        return None if r is None else r[0]

    def scalar_one(self):
        return self.one()[0]


def _sqlite_engine(url: str, *, echo: bool, settings: dict | None = None) -> Engine:
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
        cur.execute("PRAGMA mmap_size=1073741824")
        if settings and settings.get("wal_autocheckpoint") is not None:
            cur.execute(f"PRAGMA wal_autocheckpoint={int(settings['wal_autocheckpoint'])}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover - trivial
        if conn.get_execution_options().get(_WRITE):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine
