"""target that matches a k-vote majority; per-task targets

``projects.target_match``: when set (k, e.g. 3), the ML loop sets the
project's ``target_confidence`` at every model step to the lowest one whose
final labels are predicted to be as accurate as a k-vote majority
(:mod:`assay.quality.matching`).

``tasks.target``: when set, adaptive redundancy stops this item at this
confidence instead of the project's (the ML loop sets it on the validation
share and on audited auto-labels, whose labels must be surer than the
auto-labels they check).

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
    op.add_column('tasks', sa.Column('target', sa.Float(), nullable=True))


def downgrade() -> None:
    # SQLite >= 3.35 drops columns in place (no table rebuild, no cascade).
    op.drop_column('tasks', 'target')
    op.drop_column('projects', 'target_match')
