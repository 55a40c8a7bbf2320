"""gold for spans and shapes: the score bar

``projects.gold_min_score``: the score of a gold answer (its label kind's
``score``: exact-span F1 for spans, F1 of one-to-one IoU matches for boxes and
polygons, 0 or 1 for class labels) at which it counts right (NULL: the
default, 0.8).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 18:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('projects', sa.Column('gold_min_score', sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column('projects', 'gold_min_score')
