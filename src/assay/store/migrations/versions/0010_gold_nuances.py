"""nuances: a gold item's edge case, its explanation and reference items

``gold.nuance``: a free-form tag naming the edge case the item stands for
(e.g. "cilantro vs parsley"); annotators' skill is also measured per nuance.
``gold.explanation``: why the label is what it is, for reviewers now and for
teaching later. ``gold.reference_items``: item ids (JSON list) that show the
contrast. Never shown to annotators: gold stays hidden.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 06:20:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('gold', sa.Column('nuance', sa.String(200), nullable=True))
    op.add_column('gold', sa.Column('explanation', sa.Text(), nullable=True))
    op.add_column('gold', sa.Column('reference_items', sa.JSON(), nullable=True))


def downgrade() -> None:
    # SQLite >= 3.35 drops columns in place (no table rebuild, no cascade).
    op.drop_column('gold', 'reference_items')
    op.drop_column('gold', 'explanation')
    op.drop_column('gold', 'nuance')
