"""machine learning in the loop: model versions, predictions, auto-labels

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 18:40:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.add_column('projects', sa.Column('ml_space', sa.String(length=128), nullable=True))
    op.add_column('projects', sa.Column('auto_label_target', sa.Float(), nullable=True))
    op.add_column('projects', sa.Column('audit_rate', sa.Float(), nullable=True))
    op.create_table('ml_models',
    sa.Column('project_id', Id, nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('trained_at', sa.Float(), nullable=False),
    sa.Column('n_train', sa.Integer(), nullable=False),
    sa.Column('temperature', sa.Float(), nullable=False),
    sa.Column('oof_accuracy', sa.Float(), nullable=True),
    sa.Column('threshold', sa.Float(), nullable=True),
    sa.Column('auto_state', sa.String(length=10), nullable=False),
    sa.Column('metrics', sa.JSON(), nullable=True),
    sa.CheckConstraint("auto_state IN ('off', 'on', 'stopped')", name=op.f('ck_ml_models_auto_state')),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_ml_models_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'version', name=op.f('pk_ml_models'))
    )
    op.create_table('predictions',
    sa.Column('project_id', Id, nullable=False),
    sa.Column('item_id', Id, nullable=False),
    sa.Column('model_version', sa.Integer(), nullable=False),
    sa.Column('label', sa.JSON(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('proba', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_predictions_item_id_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_predictions_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'item_id', name=op.f('pk_predictions'))
    )
    op.create_table('auto_labels',
    sa.Column('project_id', Id, nullable=False),
    sa.Column('item_id', Id, nullable=False),
    sa.Column('label', sa.JSON(), nullable=False),
    sa.Column('confidence', sa.Float(), nullable=False),
    sa.Column('model_version', sa.Integer(), nullable=False),
    sa.Column('audit', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['item_id'], ['items.id'], name=op.f('fk_auto_labels_item_id_items'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['projects.id'], name=op.f('fk_auto_labels_project_id_projects'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('project_id', 'item_id', name=op.f('pk_auto_labels'))
    )


def downgrade() -> None:
    op.drop_table('auto_labels')
    op.drop_table('predictions')
    op.drop_table('ml_models')
    op.drop_column('projects', 'audit_rate')
    op.drop_column('projects', 'auto_label_target')
    op.drop_column('projects', 'ml_space')
