"""slices: saved, named sets of a dataset's items

``slices``: per dataset, a unique name, its kind ('items': the items listed
in ``slice_items``; 'query': ``query``, evaluated when the slice is used).
``slice_items``: the items of an explicit slice. ``tasks.pinned_priority``:
a person's priority for the task, which the model's priorities never lower.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 21:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.add_column('tasks', sa.Column('pinned_priority', sa.Float(), nullable=True))
    op.create_table(
        'slices',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('dataset_id', Id, nullable=False),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('kind', sa.String(10), nullable=False),
        sa.Column('query', sa.JSON(), nullable=True),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('created_by', sa.String(200), nullable=True),
        sa.CheckConstraint("kind IN ('items', 'query')", name=op.f('ck_slices_kind')),
        sa.ForeignKeyConstraint(['dataset_id'], ['datasets.id'], name=op.f('fk_slices_dataset_id_datasets'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_slices')),
        sa.UniqueConstraint('dataset_id', 'name', name=op.f('uq_slices_dataset_id_name')),
    )
    op.create_table(
        'slice_items',
        sa.Column('slice_id', Id, nullable=False),
        sa.Column('item_id', Id, nullable=False),
        sa.ForeignKeyConstraint(['slice_id'], ['slices.id'], name=op.f('fk_slice_items_slice_id_slices'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_slice_items_item_id_items'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('slice_id', 'item_id', name=op.f('pk_slice_items')),
    )


def downgrade() -> None:
    op.drop_table('slice_items')
    op.drop_table('slices')
    op.drop_column('tasks', 'pinned_priority')
