"""items by kind: which kinds of item (text, image) a dataset holds is one
index seek per kind, not a scan of its items

``ix_items_dataset_kind`` (dataset_id, kind): the dataset views carry their
``item_kinds`` so the project wizard offers only the kinds that can label
them (issue 16); the project check and the embedder's choice read the same.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-05 09:20:00.000000
"""
from alembic import op


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_items_dataset_kind', 'items', ['dataset_id', 'kind'])


def downgrade() -> None:
    op.drop_index('ix_items_dataset_kind', table_name='items')
