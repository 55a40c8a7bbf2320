"""gold questions and reviewers' decisions

``projects.gold_rate`` / ``gold_min_accuracy`` / ``gold_min_answers``;
``tasks.is_gold`` with a partial index over gold tasks; ``gold`` holds known
labels (imported gold and reviewers' decisions); ``gold_stats`` each
annotator's record on them and whether they are paused.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 18:30:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    # Plain ALTER TABLE on both backends (a rebuilt projects/tasks table on
    # SQLite would cascade-delete answers).
    op.add_column('projects', sa.Column('gold_rate', sa.Float(), nullable=True))
    op.add_column('projects', sa.Column('gold_min_accuracy', sa.Float(), nullable=True))
    op.add_column('projects', sa.Column('gold_min_answers', sa.Integer(), nullable=True))
    op.add_column('tasks', sa.Column('is_gold', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.create_index('ix_tasks_gold', 'tasks', ['project_id', 'id'], unique=False,
                    sqlite_where=sa.text('is_gold'), postgresql_where=sa.text('is_gold'))

    op.create_table('gold',
    sa.Column('project_id', Id, nullable=False),
    sa.Column('item_id', Id, nullable=False),
    sa.Column('label', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=10), nullable=False),
    sa.Column('created_by', Id, nullable=True),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.CheckConstraint("source IN ('import', 'review')", name=op.f('ck_gold_source')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_gold_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_gold_item_id_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_gold_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'item_id', name=op.f('pk_gold'))
    )
    op.create_table('gold_stats',
    sa.Column('project_id', Id, nullable=False),
    sa.Column('annotator_id', Id, nullable=False),
    sa.Column('answers', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('correct', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('window_answers', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('window_correct', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('paused', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('paused_at', sa.Float(), nullable=True),
    sa.Column('lifted_at', sa.Float(), nullable=True),
    sa.Column('lifted_by', Id, nullable=True),
    sa.ForeignKeyConstraint(['annotator_id'], ['users.id'], name=op.f('fk_gold_stats_annotator_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['lifted_by'], ['users.id'], name=op.f('fk_gold_stats_lifted_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_gold_stats_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'annotator_id', name=op.f('pk_gold_stats'))
    )


def downgrade() -> None:
    op.drop_table('gold_stats')
    op.drop_table('gold')
    op.drop_index('ix_tasks_gold', table_name='tasks', sqlite_where=sa.text('is_gold'),
                  postgresql_where=sa.text('is_gold'))
    # SQLite >= 3.35 drops columns in place (no table rebuild, no cascade).
    op.drop_column('tasks', 'is_gold')
    op.drop_column('projects', 'gold_min_answers')
    op.drop_column('projects', 'gold_min_accuracy')
    op.drop_column('projects', 'gold_rate')
