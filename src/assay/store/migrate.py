"""Run the Alembic migrations that ship inside the package."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from assay.store.engine import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


@functools.lru_cache(maxsize=1)
def head_revisions() -> frozenset[str]:
    """The newest revision(s) this code ships (read from the scripts once per process)."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


def is_current(db: Database) -> bool:
    """True when the database's schema is already at this code's head: one
    read of ``alembic_version``, no lock, no migration scripts loaded."""
    from alembic.runtime.migration import MigrationContext

    with db.read() as conn:
        stamped = MigrationContext.configure(conn).get_current_heads()
    return bool(stamped) and frozenset(stamped) == head_revisions()


# Any fixed number: the PostgreSQL advisory lock that serializes migrations.
_MIGRATE_LOCK = 0x61737361  # "assa"


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest).

    Several processes may open one workspace at once (``uvicorn --workers N``
    on a fresh database): the whole upgrade runs in one write transaction
    that only one of them holds at a time (SQLite: ``BEGIN IMMEDIATE``;
    PostgreSQL: an advisory lock), so the others wait and then find the
    schema already current instead of failing with "database is locked" or a
    duplicate table.

    A database already at the head (every open of a workspace after the
    first) is recognised with one read and left alone: no write lock, no
    migration scripts loaded.
    """
    if revision == "head" and is_current(db):
        return
    cfg = alembic_config()
    with db.write() as conn:
        if not db.is_sqlite:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK})
        cfg.attributes["connection"] = conn  # already in a transaction: Alembic joins it
        command.upgrade(cfg, revision)


def downgrade(db: Database, revision: str) -> None:
    cfg = alembic_config()
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)
        conn.commit()


def current(db: Database) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
