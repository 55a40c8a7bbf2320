"""item tags: free words staff put on items while curating

``item_tags``: one row per (item, tag), who put it there and when; indexed
by tag (the items with a tag).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 01:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'item_tags',
        sa.Column('item_id', Id, nullable=False),
        sa.Column('tag', sa.String(64), nullable=False),
        sa.Column('created_by', sa.String(200), nullable=True),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_item_tags_item_id_items'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('item_id', 'tag', name=op.f('pk_item_tags')),
    )
    op.create_index('ix_item_tags_tag', 'item_tags', ['tag', 'item_id'])


def downgrade() -> None:
    op.drop_index('ix_item_tags_tag', table_name='item_tags')
    op.drop_table('item_tags')
