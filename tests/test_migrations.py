"""Alembic migrations on SQLite and PostgreSQL: upgrade to head creates the
schema of ``assay.store.schema``; downgrade to base and upgrade again work."""

from __future__ import annotations

import time

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from assay import Workspace
from assay.store import Database, migrate
from assay.store.schema import metadata


def _head() -> str:
    return ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()


def _tables(db) -> set[str]:
    return set(inspect(db.engine).get_table_names()) - {"sqlite_sequence"}


def _diff(db) -> list:
    with db.engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)


def test_upgrade_creates_every_table_and_matches_the_metadata(db_url):
    db = Database(db_url)
    try:
        assert migrate.current(db) is None
        migrate.upgrade(db)
        assert migrate.current(db) == _head()
        assert _tables(db) == set(metadata.tables) | {"alembic_version"}
        insp = inspect(db.engine)
        for name, table in metadata.tables.items():
            assert {c["name"] for c in insp.get_columns(name)} == set(table.columns.keys()), name
            want = {ix.name for ix in table.indexes}
            assert want <= {ix["name"] for ix in insp.get_indexes(name)}, name
        # Nothing in the models that the migrations forgot (or the other way round).
        assert _diff(db) == []
        migrate.upgrade(db)  # a second upgrade is a no-op
        assert migrate.current(db) == _head()
    finally:
        db.dispose()


def test_downgrade_to_base_and_up_again(db_url):
    db = Database(db_url)
    try:
        migrate.upgrade(db)
        migrate.downgrade(db, "base")
        assert migrate.current(db) is None
        assert _tables(db) <= {"alembic_version"}
        migrate.upgrade(db)
        assert migrate.current(db) == _head()
        assert _tables(db) == set(metadata.tables) | {"alembic_version"}
        assert _diff(db) == []
    finally:
        db.dispose()


def test_every_step_up_and_down_keeps_data(db_url, tmp_path):
    """Walk the revisions one by one with a labeled project in the database."""
    revisions = [s.revision for s in ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions()]
    revisions.reverse()  # oldest first
    db = Database(db_url)
    try:
        migrate.upgrade(db, revisions[0])
        with db.write() as conn:
            conn.execute(text("INSERT INTO datasets (id, name, created_at) VALUES (1, 'd', 0)"))
            conn.execute(text("INSERT INTO users (id, username, role, created_at, active) "
                              "VALUES (1, 'u', 'annotator', 0, true)"))
            conn.execute(text("INSERT INTO items (id, dataset_id, content_hash, kind, text, created_at) "
                              "VALUES (1, 1, 'h1', 'text', 'hello', 0), (2, 1, 'h2', 'text', 'world', 0)"))
            conn.execute(text("INSERT INTO projects (id, name, dataset_id, schema_kind, schema_spec, overlap, "
                              "lease_seconds, show_fields, created_at) VALUES "
                              "(1, 'p', 1, 'single', :spec, 1, 60, '[]', 0)"),
                         {"spec": '{"classes": [{"name": "a", "description": ""}, '
                                  '{"name": "b", "description": ""}], "instructions": ""}'})
            conn.execute(text("INSERT INTO tasks (id, project_id, item_id, needed, answer_count, open_slots) "
                              "VALUES (1, 1, 1, 1, 1, 0), (2, 1, 2, 1, 1, 0)"))
            conn.execute(text("INSERT INTO answers (id, task_id, project_id, item_id, annotator_id, label, created_at) "
                              "VALUES (1, 1, 1, 1, 1, '\"a\"', 0), (2, 2, 1, 2, 1, '\"b\"', 0)"))
            if not db.is_sqlite:  # explicit ids: move the sequences past them
                for t in ("datasets", "users", "items", "projects", "tasks", "answers"):
                    conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{t}', 'id'), "
                                      f"(SELECT max(id) FROM {t}))"))
        for rev in revisions[1:]:
            migrate.upgrade(db, rev)
        for rev in reversed(revisions[:-1]):
            migrate.downgrade(db, rev)
        for rev in revisions[1:]:
            migrate.upgrade(db, rev)
        with db.read() as conn:
            assert conn.execute(text("SELECT id, task_id FROM answers ORDER BY id")).all() == [(1, 1), (2, 2)]
            assert conn.execute(text("SELECT count(*) FROM items")).scalar_one() == 2
        assert _diff(db) == []
    finally:
        db.dispose()
    # A workspace opens the migrated database, and the id of an undone answer
    # (the highest one) is not handed out again.
    with Workspace(tmp_path / "ws", database_url=db_url) as ws:
        assert ws.status()["schema_revision"] == _head()
        assert ws.status()["answers"] == 2
        assert ws.next_task(1, ws.add_user("root", "admin")[0]) is None  # both tasks are done
        u = ws.get_user("u")
        ws.add_member(1, u["id"])
        back = ws.undo(2, u)
        assert back["id"] == 2
        again = ws.submit(2, u, "a")
        assert again["id"] > 2
        with ws.db.read() as conn:
            assert conn.execute(text("SELECT id FROM answers ORDER BY id")).scalars().all() == [1, again["id"]]


def test_workspace_migrates_on_open(tmp_path, db_url):
    start = time.time()
    with Workspace(tmp_path / "ws", database_url=db_url) as ws:
        st = ws.status()
        assert st["schema_revision"] == _head()
        assert st["database"] == ("sqlite" if db_url.startswith("sqlite") else "postgresql")
        assert all(st[k] == 0 for k in ("datasets", "items", "projects", "users", "answers"))
    # Opening it again (already at head) works and keeps what is there.
    with Workspace(tmp_path / "ws", database_url=db_url) as ws:
        ws.create_dataset("x")
    with Workspace(tmp_path / "ws", database_url=db_url) as ws:
        assert [d["name"] for d in ws.list_datasets()] == ["x"]
    assert time.time() - start < 30
