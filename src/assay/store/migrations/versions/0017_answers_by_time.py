"""answers by time: the live progress charts read a window of recent answers

``ix_answers_project_created`` (project_id, created_at): a project's answers
since a time are an index range, not a scan of every answer the project has
(GET /api/projects/{id}/progress/series, issue 16).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 01:00:00.000000
"""
from alembic import op


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_answers_project_created', 'answers', ['project_id', 'created_at'])


def downgrade() -> None:
    op.drop_index('ix_answers_project_created', table_name='answers')
