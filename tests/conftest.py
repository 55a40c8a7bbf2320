"""Shared fixtures. Every storage-touching test runs on SQLite and on
PostgreSQL (``ws`` is parametrized over both).

PostgreSQL: ``ASSAY_TEST_POSTGRES_URL`` (default: the local server with
trust auth) names a server where each test gets a fresh database. Where no
server answers, PostgreSQL tests skip — except in CI (``CI=true`` or
``ASSAY_REQUIRE_POSTGRES=1``), where they fail.
"""

from __future__ import annotations

import os
import uuid
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


def make_pg_database() -> str:
    """Create an empty database; returns its SQLAlchemy URL."""
    import psycopg

    problem = pg_problem()
    if problem:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required here but not reachable: {problem}")
        pytest.skip(f"no PostgreSQL server ({problem}); set ASSAY_TEST_POSTGRES_URL")
    name = f"assay_t_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(_pg_dsn(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_pg_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(_pg_dsn(PG_ADMIN_URL), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path):
    """A fresh, empty database URL on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'assay.db'}"
        return
    url = make_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def ws(tmp_path, db_url):
    """A fresh workspace on each backend."""
    w = Workspace(tmp_path / "ws", database_url=db_url)
    try:
        yield w
    finally:
        w.close()


@pytest.fixture
def home(tmp_path, db_url, monkeypatch):
    """A workspace folder for CLI tests (``ASSAY_HOME``); the database is
    SQLite or PostgreSQL (``db_url``)."""
    h = tmp_path / "ws"
    monkeypatch.setenv("ASSAY_HOME", str(h))
    monkeypatch.setenv("ASSAY_DATABASE_URL", db_url)
    return h


@pytest.fixture
def shared_data() -> Path:
    """The shared real evaluation data (``../shared/data``)."""
    if not SHARED_DATA.is_dir():
        if IN_CI:
            pytest.fail(f"shared data folder missing in CI: {SHARED_DATA}")
        pytest.skip(f"shared data not found at {SHARED_DATA}; set ASSAY_SHARED_DATA to its folder")
    return SHARED_DATA


def pytest_sessionfinish(session, exitstatus):
    """In CI nothing may skip: a skipped test turns the run red."""
    if not IN_CI:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        reporter.write_line(f"CI: {len(skipped)} test(s) skipped; skips are failures in CI", red=True)
        session.exitstatus = 1
