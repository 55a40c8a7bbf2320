"""qualification exam: gold items with a purpose, exam settings, attempts and answers

``gold.purpose``: 'check' (a hidden gold question, as before) or 'exam' (an
item of the qualification exam: shown as an exam item to whoever takes it,
so never handed out as a hidden check or as real work).
``projects.exam_size`` / ``exam_pass`` / ``exam_retries``: items per attempt
(NULL: no exam), share right to pass (NULL: 0.8), attempts after a fail
(NULL: 1).
``exam_status``: per annotator and project, 'open', 'passed' or 'failed'
(refused), and the attempts an admin granted after a final fail.
``exam_attempts``: each attempt, its drawn items, progress, the live lease
on its current question, and its score. ``exam_answers``: the answers given
in attempts (never in ``answers``: they are no real work).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 06:40:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.add_column('gold', sa.Column('purpose', sa.String(10), nullable=False, server_default=sa.text("'check'")))
    op.add_column('projects', sa.Column('exam_size', sa.Integer(), nullable=True))
    op.add_column('projects', sa.Column('exam_pass', sa.Float(), nullable=True))
    op.add_column('projects', sa.Column('exam_retries', sa.Integer(), nullable=True))
    op.create_table(
        'exam_status',
        sa.Column('project_id', Id, nullable=False),
        sa.Column('annotator_id', Id, nullable=False),
        sa.Column('status', sa.String(10), nullable=False),
        sa.Column('granted', sa.Integer(), nullable=False, server_default=sa.text('0')),
        sa.Column('updated_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_exam_status_project_id_projects'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['annotator_id'], ['users.id'], name=op.f('fk_exam_status_annotator_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('project_id', 'annotator_id', name=op.f('pk_exam_status')),
    )
    op.create_table(
        'exam_attempts',
        sa.Column('project_id', Id, nullable=False),
        sa.Column('annotator_id', Id, nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('items', sa.JSON(), nullable=False),
        sa.Column('answered', sa.Integer(), nullable=False, server_default=sa.text('0')),
        sa.Column('correct', sa.Integer(), nullable=False, server_default=sa.text('0')),
        sa.Column('expires_at', sa.Float(), nullable=True),
        sa.Column('started_at', sa.Float(), nullable=False),
        sa.Column('finished_at', sa.Float(), nullable=True),
        sa.Column('score', sa.Float(), nullable=True),
        sa.Column('passed', sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'],
                                name=op.f('fk_exam_attempts_project_id_projects'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['annotator_id'], ['users.id'],
                                name=op.f('fk_exam_attempts_annotator_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('project_id', 'annotator_id', 'attempt', name=op.f('pk_exam_attempts')),
    )
    op.create_table(
        'exam_answers',
        sa.Column('project_id', Id, nullable=False),
        sa.Column('annotator_id', Id, nullable=False),
        sa.Column('attempt', sa.Integer(), nullable=False),
        sa.Column('item_id', Id, nullable=False),
        sa.Column('label', sa.JSON(), nullable=False),
        sa.Column('correct', sa.Boolean(), nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'],
                                name=op.f('fk_exam_answers_project_id_projects'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['annotator_id'], ['users.id'],
                                name=op.f('fk_exam_answers_annotator_id_users'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['item_id'], ['items.id'],
                                name=op.f('fk_exam_answers_item_id_items'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('project_id', 'annotator_id', 'attempt', 'item_id', name=op.f('pk_exam_answers')),
    )


def downgrade() -> None:
    op.drop_table('exam_answers')
    op.drop_table('exam_attempts')
    op.drop_table('exam_status')
    op.drop_column('projects', 'exam_retries')
    op.drop_column('projects', 'exam_pass')
    op.drop_column('projects', 'exam_size')
    op.drop_column('gold', 'purpose')
