"""target that matches a k-vote majority

``projects.target_match``: when set (k, e.g. 3), the ML loop sets the
project's ``target_confidence`` at every model step to the lowest one whose
final labels are predicted to be as accurate as a k-vote majority
(:mod:`assay.quality.matching`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 21:40:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('projects', sa.Column('target_match', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('projects', 'target_match')
