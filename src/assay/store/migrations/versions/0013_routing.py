"""skill-aware routing: the project's routing setting

``projects.routing``: 'off' (the pool's order, as before) or 'skill' (each
annotator gets the open item where their answer is expected to add the most:
:mod:`assay.quality.routing`, claimed by :mod:`assay.engine.handout`).
``projects.routing_random_share``: the share of routed hand-outs that take a
random candidate instead (NULL: the default, 0.1).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 08:10:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('projects', sa.Column('routing', sa.String(10), nullable=False, server_default=sa.text("'off'")))
    op.add_column('projects', sa.Column('routing_random_share', sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column('projects', 'routing_random_share')
    op.drop_column('projects', 'routing')
