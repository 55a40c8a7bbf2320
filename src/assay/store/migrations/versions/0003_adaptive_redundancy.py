"""adaptive redundancy: project settings, item consensus, annotator skills

``projects.target_confidence`` / ``max_answers`` (NULL = fixed overlap, as
before); ``item_consensus`` holds each item's running posterior and the
reviewer queue (status 'review'); ``quality_models`` and
``annotator_skills`` hold the last full re-fit of annotator skills.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 17:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    # Plain ALTER TABLE on both backends: a batch (recreated) projects table
    # on SQLite would cascade-delete every task and answer.
    op.add_column('projects', sa.Column('target_confidence', sa.Float(), nullable=True))
    op.add_column('projects', sa.Column('max_answers', sa.Integer(), nullable=True))

    op.create_table('item_consensus',
    sa.Column('project_id', Id, nullable=False),
    sa.Column('item_id', Id, nullable=False),
    sa.Column('label', sa.JSON(), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('log_post', sa.JSON(), nullable=False),
    sa.Column('answers', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.CheckConstraint("status IN ('open', 'resolved', 'review')", name=op.f('ck_item_consensus_status')),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_item_consensus_item_id_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_item_consensus_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'item_id', name=op.f('pk_item_consensus'))
    )
    with op.batch_alter_table('item_consensus', schema=None) as batch_op:
        batch_op.create_index('ix_item_consensus_status', ['project_id', 'status', 'item_id'], unique=False)

    op.create_table('quality_models',
    sa.Column('project_id', Id, nullable=False),
    sa.Column('method', sa.String(length=30), nullable=False),
    sa.Column('prior', sa.JSON(), nullable=False),
    sa.Column('default_confusion', sa.JSON(), nullable=False),
    sa.Column('answers', sa.Integer(), nullable=False),
    sa.Column('fitted_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_quality_models_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', name=op.f('pk_quality_models'))
    )
    op.create_table('annotator_skills',
    sa.Column('project_id', Id, nullable=False),
    sa.Column('annotator_id', Id, nullable=False),
    sa.Column('confusion', sa.JSON(), nullable=False),
    sa.Column('accuracy', sa.Float(), nullable=True),
    sa.Column('answers', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['annotator_id'], ['users.id'], name=op.f('fk_annotator_skills_annotator_id_users'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_annotator_skills_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'annotator_id', name=op.f('pk_annotator_skills'))
    )


def downgrade() -> None:
    op.drop_table('annotator_skills')
    op.drop_table('quality_models')
    with op.batch_alter_table('item_consensus', schema=None) as batch_op:
        batch_op.drop_index('ix_item_consensus_status')
    op.drop_table('item_consensus')
    # SQLite >= 3.35 drops columns in place (no table rebuild, no cascade).
    op.drop_column('projects', 'max_answers')
    op.drop_column('projects', 'target_confidence')
