"""pre-labels on answers, ML backend per project

``answers.suggestion`` / ``suggestion_accepted`` record the model's
suggestion shown with a task and whether the answer accepted it;
``projects.ml_backend_url`` points at a Label Studio compatible ML backend.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 18:45:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('answers', sa.Column('suggestion', sa.JSON(), nullable=True))
    op.add_column('answers', sa.Column('suggestion_accepted', sa.Boolean(), nullable=True))
    op.add_column('projects', sa.Column('ml_backend_url', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('projects', 'ml_backend_url')
    op.drop_column('answers', 'suggestion_accepted')
    op.drop_column('answers', 'suggestion')
