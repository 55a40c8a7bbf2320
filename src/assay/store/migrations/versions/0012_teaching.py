"""teaching by nuance: teaching items, settings, open needs and teaching answers

``gold.purpose`` may now be 'teach' too: a teaching item, shown openly as
practice (after the answer: the right label, the explanation and the
reference items), so never a hidden check nor real work.
``projects.teach_bar`` (skill on a nuance below which an annotator is taught
it; NULL: teaching off), ``teach_rate`` (share of next tasks that are
teaching items while a need is open; NULL: 0.2) and ``teach_items``
(teaching items per need; NULL: 3).
``teach_needs``: per project, annotator and nuance, a weakness found on the
hidden checks (its skill and 90 % interval then), its teaching progress and
status ('open', 'taught', 'measured').
``teach_answers``: the teaching items served to an annotator (the lease on
the one in hand) and their answers (never in ``answers``: no consensus, no
gold score, no export).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 08:05:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _fks(table: str, item: bool) -> list:
    out = [sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f(f'fk_{table}_project_id_projects'),
                                   ondelete='CASCADE'),
           sa.ForeignKeyConstraint(['annotator_id'], ['users.id'], name=op.f(f'fk_{table}_annotator_id_users'),
                                   ondelete='CASCADE')]
    if item:
        out.append(sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f(f'fk_{table}_item_id_items'),
                                           ondelete='CASCADE'))
    return out


def upgrade() -> None:
    op.add_column('projects', sa.Column('teach_bar', sa.Float(), nullable=True))
    op.add_column('projects', sa.Column('teach_rate', sa.Float(), nullable=True))
    op.add_column('projects', sa.Column('teach_items', sa.Integer(), nullable=True))
    op.create_table(
        'teach_needs',
        sa.Column('project_id', Id, nullable=False),
        sa.Column('annotator_id', Id, nullable=False),
        sa.Column('nuance', sa.String(200), nullable=False),
        sa.Column('status', sa.String(10), nullable=False),
        sa.Column('detected_at', sa.Float(), nullable=False),
        sa.Column('checks', sa.Integer(), nullable=False),
        sa.Column('skill', sa.Float(), nullable=False),
        sa.Column('skill_low', sa.Float(), nullable=False),
        sa.Column('skill_high', sa.Float(), nullable=False),
        sa.Column('taught', sa.Integer(), nullable=False, server_default=sa.text('0')),
        sa.Column('started_at', sa.Float(), nullable=True),
        sa.Column('taught_at', sa.Float(), nullable=True),
        sa.Column('measured_at', sa.Float(), nullable=True),
        *_fks('teach_needs', False),
        sa.PrimaryKeyConstraint('project_id', 'annotator_id', 'nuance', name=op.f('pk_teach_needs')),
    )
    op.create_table(
        'teach_answers',
        sa.Column('project_id', Id, nullable=False),
        sa.Column('annotator_id', Id, nullable=False),
        sa.Column('item_id', Id, nullable=False),
        sa.Column('nuance', sa.String(200), nullable=False),
        sa.Column('served_at', sa.Float(), nullable=False),
        sa.Column('expires_at', sa.Float(), nullable=False),
        sa.Column('label', sa.JSON(), nullable=True),
        sa.Column('correct', sa.Boolean(), nullable=True),
        sa.Column('answered_at', sa.Float(), nullable=True),
        *_fks('teach_answers', True),
        sa.PrimaryKeyConstraint('project_id', 'annotator_id', 'item_id', name=op.f('pk_teach_answers')),
    )


def downgrade() -> None:
    op.drop_table('teach_answers')
    op.drop_table('teach_needs')
    op.drop_column('projects', 'teach_items')
    op.drop_column('projects', 'teach_rate')
    op.drop_column('projects', 'teach_bar')
