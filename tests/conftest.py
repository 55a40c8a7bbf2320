"""Shared fixtures and markers. Every storage-touching test runs on SQLite
and on PostgreSQL (``ws``, ``home``, ``db_url`` are parametrized over both).

PostgreSQL: ``ASSAY_TEST_POSTGRES_URL`` (default: the local server with
trust auth) names a server where each test gets a fresh database. Where no
server answers, PostgreSQL tests skip — except in CI (``CI=true`` or
``ASSAY_REQUIRE_POSTGRES=1``), where they fail.

Speed: the schema is migrated once per session — PostgreSQL into a template
database ``assay_tmpl_<pid>`` that each test clones (``CREATE DATABASE x
TEMPLATE assay_tmpl_<pid>``), SQLite into a file each test copies — so
``ws``/``home``/``migrated_db_url`` cost a file copy, not seven migrations.
``db_url`` stays an EMPTY database: migration tests start from nothing.
Databases are dropped in parallel batches (a DROP DATABASE waits for a
checkpoint; concurrent drops share one) and all are gone at session end.

Markers (set automatically, see ``pytest_collection_modifyitems``):
``postgres`` on every PostgreSQL instance of a test (``-m "not postgres"``
runs SQLite only), ``browser`` on every test that drives Chromium. ``slow``
tests (more than about 5 s) are left out of a local run of the suite or a
folder unless ``--slow`` (or ``-m`` naming ``slow``) is given; a test file or
test named on the command line runs whole; in CI (``CI=true``) they always run.
"""

from __future__ import annotations

import os
import shutil
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from assay import Workspace

PG_ADMIN_URL = os.environ.get(
    "ASSAY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# The shared real evaluation data: ``ASSAY_SHARED_DATA`` (a folder), else
# ``../shared/data`` beside the checkout. Tests that need it skip without it
# (and fail in CI).
SHARED_DATA = Path(os.environ.get("ASSAY_SHARED_DATA") or
                   Path(__file__).resolve().parents[2] / "shared" / "data").expanduser().resolve()
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REQUIRE_PG = IN_CI or os.environ.get("ASSAY_REQUIRE_POSTGRES") == "1"
REQUIRE_BROWSER = IN_CI or os.environ.get("ASSAY_REQUIRE_BROWSER") == "1"


def _pg_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(_pg_dsn(PG_ADMIN_URL), connect_timeout=3):
            return None
    except Exception as exc:  # noqa: BLE001 - any failure means "no server"
        return f"{exc.__class__.__name__}: {exc}"


_PG_PROBLEM: list = []


def pg_problem() -> str | None:
    if not _PG_PROBLEM:
        _PG_PROBLEM.append(_pg_available())
    return _PG_PROBLEM[0]


def _require_pg() -> None:
    problem = pg_problem()
    if problem:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required here but not reachable: {problem}")
        pytest.skip(f"no PostgreSQL server ({problem}); set ASSAY_TEST_POSTGRES_URL")


def _admin(sql: str, params: tuple = ()) -> None:
    import psycopg

    with psycopg.connect(_pg_dsn(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(sql, params)


def _pg_url(name: str) -> str:
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def make_pg_database(template: str | None = None) -> str:
    """Create a database (empty, or a clone of ``template``); returns its SQLAlchemy URL."""
    _require_pg()
    name = f"assay_t_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return _pg_url(name)


PG_TEMPLATE = f"assay_tmpl_{os.getpid()}"
_pg_template_made: list[str] = []
_pg_to_drop: list[str] = []  # databases whose tests are done: dropped in batches
DROP_BATCH = 16


def make_migrated_pg_database() -> str:
    """A fresh database at the schema head: a clone of this session's template
    (created and migrated on first use)."""
    _require_pg()
    if not _pg_template_made:
        from assay.store import Database, migrate

        _drop_orphans()
        _admin(f'CREATE DATABASE "{PG_TEMPLATE}"')
        db = Database(_pg_url(PG_TEMPLATE))
        try:
            migrate.upgrade(db)
        except BaseException:
            db.dispose()
            drop_pg_database(_pg_url(PG_TEMPLATE))  # never clone a half-migrated template
            raise
        db.dispose()  # a template must have no connections when it is cloned
        _pg_template_made.append(PG_TEMPLATE)
    return make_pg_database(template=PG_TEMPLATE)


def _drop_orphans() -> None:
    """Drop what killed test sessions on this machine left behind: databases
    named after a pid that no longer runs (only for a server on this host,
    where the pid means something)."""
    import re

    import psycopg

    if make_url_host(PG_ADMIN_URL) not in ("127.0.0.1", "localhost", "::1", None):
        return
    with psycopg.connect(_pg_dsn(PG_ADMIN_URL), autocommit=True) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'assay\\_t%'")]
    orphans = []
    for name in names:
        m = re.fullmatch(r"assay_(?:tmpl_(\d+)|t_(\d+)_[0-9a-f]+)", name)
        pid = int(m.group(1) or m.group(2)) if m else None
        if pid is None:
            continue
        if pid == os.getpid():
            if name == PG_TEMPLATE:
                orphans.append(name)  # a reused pid's leftover; ours is made just after
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            orphans.append(name)
        except PermissionError:
            pass  # someone else's live process
    if orphans:
        _drop_many(orphans)


def make_url_host(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    return make_url(url).host


def drop_pg_database(url: str) -> None:
    """Drop now (waits for a checkpoint: about a second)."""
    _admin(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def _drop_many(names: list[str]) -> None:
    # Each DROP DATABASE waits for a checkpoint; run concurrently they share one.
    with ThreadPoolExecutor(max_workers=min(len(names), DROP_BATCH) or 1) as pool:
        list(pool.map(lambda n: _admin(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)'), names))


_dropper: list = []  # one background thread that drops finished batches while tests go on
_drop_jobs: list = []


def release_pg_database(url: str) -> None:
    """A test is done with ``url``: its connections end now; the database is
    dropped with the next batch, in the background (or at session end)."""
    name = url.rsplit("/", 1)[1]
    _admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
           "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
    _pg_to_drop.append(name)
    if len(_pg_to_drop) >= DROP_BATCH:
        batch = _pg_to_drop[:]
        del _pg_to_drop[:]
        if not _dropper:
            _dropper.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="assay-test-dropdb"))
        _drop_jobs.append(_dropper[0].submit(_drop_many, batch))


def _drop_session_databases() -> list[str]:
    """Drop every database this session made; returns the problems met."""
    problems = []
    for job in _drop_jobs:
        try:
            job.result()
        except Exception as exc:  # noqa: BLE001 - reported at the end of the run
            problems.append(f"{exc.__class__.__name__}: {exc}")
    del _drop_jobs[:]
    if _dropper:
        _dropper.pop().shutdown(wait=True)
    try:
        if _pg_to_drop:
            batch = _pg_to_drop[:]
            del _pg_to_drop[:]
            _drop_many(batch)
        if _pg_template_made:
            _admin(f'DROP DATABASE IF EXISTS "{PG_TEMPLATE}" WITH (FORCE)')
            del _pg_template_made[:]
    except Exception as exc:  # noqa: BLE001
        problems.append(f"{exc.__class__.__name__}: {exc}")
    return problems


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    """A SQLite file migrated to the head once per session."""
    from assay.store import Database, migrate

    path = tmp_path_factory.mktemp("sqlite_template") / "assay.db"
    db = Database(f"sqlite:///{path}")
    try:
        migrate.upgrade(db)
    finally:
        db.dispose()  # the last connection checkpoints the WAL into the file
    leftovers = [p.name for p in path.parent.iterdir() if p != path]
    assert not leftovers, f"SQLite template not self-contained: {leftovers}"
    return path


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """A fresh, EMPTY database URL on each backend (for migration tests)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'assay.db'}"
        return
    url = make_pg_database()
    try:
        yield url
    finally:
        release_pg_database(url)


@pytest.fixture(params=["sqlite", "postgres"])
def migrated_db_url(request, tmp_path):
    """A fresh database at the schema head on each backend (a copy of the
    session's migrated template)."""
    if request.param == "sqlite":
        path = tmp_path / "assay.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    url = make_migrated_pg_database()
    try:
        yield url
    finally:
        release_pg_database(url)


@pytest.fixture
def ws(tmp_path, migrated_db_url):
    """A fresh workspace on each backend."""
    w = Workspace(tmp_path / "ws", database_url=migrated_db_url)
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def home(tmp_path, migrated_db_url, monkeypatch):
    """A workspace folder for CLI tests (``ASSAY_HOME``); the database is
    SQLite or PostgreSQL (``migrated_db_url``)."""
    h = tmp_path / "ws"
    monkeypatch.setenv("ASSAY_HOME", str(h))
    monkeypatch.setenv("ASSAY_DATABASE_URL", migrated_db_url)
    return h


@pytest.fixture
def shared_data() -> Path:
    """The shared real evaluation data (``../shared/data``)."""
    if not SHARED_DATA.is_dir():
        if IN_CI:
            pytest.fail(f"shared data folder missing in CI: {SHARED_DATA}")
        pytest.skip(f"shared data not found at {SHARED_DATA}; set ASSAY_SHARED_DATA to its folder")
    return SHARED_DATA


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", default=False,
                     help="also run the tests marked slow (deselected by default; CI=true always runs them)")


PG_FIXTURES = ("db_url", "migrated_db_url")  # the parametrized fixtures whose "postgres" needs a server


def _named_on_command_line(config) -> list[str]:
    """Test files and node ids the user named (``tests/test_x.py``,
    ``tests/test_x.py::test_y``): their tests run even if slow. Only what a
    folder (or ``testpaths``) brings in is left out."""
    root, here = config.rootpath, config.invocation_params.dir
    named = []
    for arg in config.args:
        path, sep, rest = arg.partition("::")
        full = (here / path).resolve()
        if not full.is_file():
            continue
        try:
            rel = full.relative_to(root).as_posix()
        except ValueError:
            continue
        named.append(f"{rel}::{rest}" if sep else f"{rel}::")
    return named


def _runs_slow(config) -> bool:
    return IN_CI or config.getoption("--slow") or "slow" in (config.getoption("markexpr") or "")


@pytest.hookimpl(tryfirst=True)  # before -m/-k select on the markers added here
def pytest_collection_modifyitems(config, items):
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec and any(callspec.params.get(f) == "postgres" for f in PG_FIXTURES):
            item.add_marker(pytest.mark.postgres)
        if "browser" in item.fixturenames:
            item.add_marker(pytest.mark.browser)
    if _runs_slow(config):
        return
    named = _named_on_command_line(config)
    keep, slow = [], []
    for item in items:
        is_slow = item.get_closest_marker("slow") is not None
        (slow if is_slow and not any(item.nodeid.startswith(n) for n in named) else keep).append(item)
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = keep
        config.stash[_SLOW_LEFT_OUT] = len(slow)


_SLOW_LEFT_OUT = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter, config):
    left_out = config.stash.get(_SLOW_LEFT_OUT, 0)
    if left_out:
        terminalreporter.write_line(
            f"{left_out} slow test(s) deselected; run them with --slow (CI=true always does)", yellow=True)


def pytest_sessionfinish(session, exitstatus):
    """Drop this session's databases; in CI nothing may skip: a skipped test turns the run red."""
    if _pg_template_made or _pg_to_drop or _drop_jobs:
        problems = _drop_session_databases()
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if problems and reporter:
            reporter.write_line(f"could not drop every test database: {problems[:3]}", yellow=True)
    if not IN_CI:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; skips are failures in CI", red=True)
        session.exitstatus = 1


@pytest.fixture
def seeded_gold():
    """Seed the engine's coin flips (gold draws, pause checks, teaching) for
    one test; they are drawn from the OS again after it, so that no later
    test inherits a fixed sequence."""
    from assay.engine import gold

    yield gold.seed
    gold.seed()

