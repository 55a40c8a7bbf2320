"""answers: ids are never reused on SQLite

Undo deletes an answer. Without AUTOINCREMENT SQLite hands the deleted
(highest) id to the next answer, so a stale undo could delete someone's new
answer and a keyset reader of answers (``after=<id>``) would miss it.
PostgreSQL sequences never reuse ids: nothing to do there.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 10:00:00.000000
"""
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def _recreate(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("answers", recreate="always",
                              table_kwargs={"sqlite_autoincrement": autoincrement}):
        pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
