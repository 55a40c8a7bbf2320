"""accounts and audit: normalised usernames, expiring/revocable tokens, login
throttling, an append-only audit log

``users.username_key``: NFKC + casefold of the name, unique, so "Alice" and
"alice" are one account. Existing users get their key here; where two
existing names fold to the same key, the later ones get a key that no new
name can take (a zero-width space and their id: such characters are refused
in new names), so nobody loses their account.

``tokens``: ``kind`` ('api' or 'session'), ``expires_at``, ``last_used_at``,
``revoked_at``. Existing tokens are 'api' tokens without expiry, as before.

``login_throttle``: failed logins per (hashed) username and client address.

``audit``: who did what, when, to what. Triggers refuse UPDATE and DELETE
(and TRUNCATE on PostgreSQL).

Columns are added with plain ADD COLUMN (no table rebuild): rebuilding
``users`` on SQLite would cascade-delete tokens and memberships.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 08:20:00.000000
"""
import unicodedata

from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')

_REFUSE = "the audit log is append-only"


def _key(name: str) -> str:
    # Frozen copy of assay.security.username_key at this revision.
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).strip().casefold())


def upgrade() -> None:
    op.add_column('users', sa.Column('username_key', sa.String(200), nullable=True))
    conn = op.get_bind()
    seen: set[str] = set()
    for uid, name in conn.execute(sa.text("SELECT id, username FROM users ORDER BY id")).all():
        key = _key(name)[:200]
        if key in seen:
            key = f"{key[:180]}\u200b{uid}"
        seen.add(key)
        conn.execute(sa.text("UPDATE users SET username_key = :k WHERE id = :i"), {"k": key, "i": uid})
    op.create_index('uq_users_username_key', 'users', ['username_key'], unique=True)

    op.add_column('tokens', sa.Column('kind', sa.String(10), nullable=False, server_default=sa.text("'api'")))
    op.add_column('tokens', sa.Column('expires_at', sa.Float(), nullable=True))
    op.add_column('tokens', sa.Column('last_used_at', sa.Float(), nullable=True))
    op.add_column('tokens', sa.Column('revoked_at', sa.Float(), nullable=True))

    op.create_table(
        'login_throttle',
        sa.Column('key', sa.String(80), nullable=False),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('last_failure', sa.Float(), nullable=False),
        sa.Column('locked_until', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_login_throttle')),
    )

    op.create_table(
        'audit',
        sa.Column('id', Id, autoincrement=True, nullable=False),
        sa.Column('created_at', sa.Float(), nullable=False),
        sa.Column('actor_id', Id, nullable=True),
        sa.Column('actor', sa.String(200), nullable=True),
        sa.Column('address', sa.String(100), nullable=True),
        sa.Column('action', sa.String(50), nullable=False),
        sa.Column('target_kind', sa.String(30), nullable=True),
        sa.Column('target_id', Id, nullable=True),
        sa.Column('target', sa.String(200), nullable=True),
        sa.Column('details', sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_audit')),
    )
    op.create_index('ix_audit_action', 'audit', ['action', 'id'])
    op.create_index('ix_audit_actor_id', 'audit', ['actor_id', 'id'])
    op.create_index('ix_audit_target', 'audit', ['target_kind', 'target_id', 'id'])
    if conn.dialect.name == 'sqlite':
        for event in ('UPDATE', 'DELETE'):
            op.execute(f"CREATE TRIGGER audit_no_{event.lower()} BEFORE {event} ON audit "
                       f"BEGIN SELECT RAISE(ABORT, '{_REFUSE}'); END")
    else:
        op.execute("CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f"BEGIN RAISE EXCEPTION '{_REFUSE}'; END $$")
        op.execute("CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit "
                   "FOR EACH ROW EXECUTE FUNCTION audit_append_only()")
        op.execute("CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()")


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == 'sqlite':
        op.execute("DROP TRIGGER IF EXISTS audit_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_no_change ON audit")
        op.execute("DROP TRIGGER IF EXISTS audit_no_truncate ON audit")
        op.execute("DROP FUNCTION IF EXISTS audit_append_only()")
    op.drop_index('ix_audit_target', table_name='audit')
    op.drop_index('ix_audit_actor_id', table_name='audit')
    op.drop_index('ix_audit_action', table_name='audit')
    op.drop_table('audit')
    op.drop_table('login_throttle')
    # Plain DROP COLUMN (SQLite >= 3.35): a batch rebuild of users would
    # cascade-delete tokens and memberships.
    for col in ('revoked_at', 'last_used_at', 'expires_at', 'kind'):
        op.drop_column('tokens', col)
    op.drop_index('uq_users_username_key', table_name='users')
    op.drop_column('users', 'username_key')
