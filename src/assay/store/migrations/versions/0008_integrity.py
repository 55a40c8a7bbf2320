"""integrity: tasks handed out in a shuffled order; an append-only record of first answers

``tasks.shuffle_key``: the task's item's window of 65,536 ids, plus, in a
project with gold, a random place within it. The pool is handed out by
``priority DESC, shuffle_key, id``, so in a project with gold the ids come in
no order and gold tasks (handed out at random from the same window) never
stand out of an increasing sequence. Existing tasks of projects with gold get
a fixed pseudo-random place from their id.

``first_answers``: one row per (project, item, annotator): the first answer
that annotator gave to that item, in projects with gold (every item, so that
recording costs the same for gold and real work) and for reviewed items.
Undoing the answer does not remove it; a second answer after an undo is not
recorded. ``gold_stats`` is recounted from these rows joined to ``gold``,
never from ``answers``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 08:20:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('tasks', sa.Column('shuffle_key', sa.BigInteger(), nullable=False, server_default=sa.text('0')))
    # the item's window of 65536 ids, then (projects with gold) a fixed pseudo-random place in it
    op.execute("UPDATE tasks SET shuffle_key = (item_id / 65536) * 65536 + CASE WHEN project_id IN"
               " (SELECT project_id FROM tasks WHERE is_gold) THEN (id * 2654435761) % 65536 ELSE 0 END")
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_open', sqlite_where=sa.text('open_slots > 0'),
                            postgresql_where=sa.text('open_slots > 0'))
        batch_op.create_index('ix_tasks_open', ['project_id', sa.literal_column('priority DESC'), 'shuffle_key', 'id'],
                              unique=False, sqlite_where=sa.text('open_slots > 0'),
                              postgresql_where=sa.text('open_slots > 0'))
    # gold tasks are drawn from a random point of this index (an index probe like the pool's)
    op.drop_index('ix_tasks_gold', table_name='tasks', sqlite_where=sa.text('is_gold'),
                  postgresql_where=sa.text('is_gold'))
    op.create_index('ix_tasks_gold', 'tasks', ['project_id', 'shuffle_key'], unique=False,
                    sqlite_where=sa.text('is_gold'), postgresql_where=sa.text('is_gold'))
    op.create_table(
        'first_answers',
        sa.Column('project_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('item_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('annotator_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('label', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_first_answers_project_id_projects'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_first_answers_item_id_items'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['annotator_id'], ['users.id'], name=op.f('fk_first_answers_annotator_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('project_id', 'item_id', 'annotator_id', name=op.f('pk_first_answers')),
    )
    op.create_index('ix_first_answers_annotator', 'first_answers', ['project_id', 'annotator_id'])
    # The record so far: every answer to a gold (or reviewed) item.
    op.execute(
        "INSERT INTO first_answers (project_id, item_id, annotator_id, label, created_at)"
        " SELECT a.project_id, a.item_id, a.annotator_id, a.label, a.created_at FROM answers a"
        " JOIN gold g ON g.project_id = a.project_id AND g.item_id = a.item_id"
    )


def downgrade() -> None:
    op.drop_index('ix_first_answers_annotator', table_name='first_answers')
    op.drop_table('first_answers')
    op.drop_index('ix_tasks_gold', table_name='tasks', sqlite_where=sa.text('is_gold'),
                  postgresql_where=sa.text('is_gold'))
    op.create_index('ix_tasks_gold', 'tasks', ['project_id', 'id'], unique=False,
                    sqlite_where=sa.text('is_gold'), postgresql_where=sa.text('is_gold'))
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_tasks_open', sqlite_where=sa.text('open_slots > 0'),
                            postgresql_where=sa.text('open_slots > 0'))
        batch_op.create_index('ix_tasks_open', ['project_id', sa.literal_column('priority DESC'), 'id'],
                              unique=False, sqlite_where=sa.text('open_slots > 0'),
                              postgresql_where=sa.text('open_slots > 0'))
    op.drop_column('tasks', 'shuffle_key')
