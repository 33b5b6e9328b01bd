"""The embedded OAuth authorization server: clients, grants, pending requests, codes, tokens, owner.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_CLIENT_ID = 1024
_HASH = 64


def _client_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["client_id"],
        ["oauth_clients.client_id"],
        name=op.f(f"fk_{table}_client_id_oauth_clients"),
        ondelete="CASCADE",
    )


def _token_table(name: str, *extra: sa.Column[object]) -> None:
    op.create_table(
        name,
        sa.Column("token_hash", sa.String(length=_HASH), nullable=False),
        sa.Column("client_id", sa.String(length=_CLIENT_ID), nullable=False),
        sa.Column("family_id", sa.String(length=_HASH), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("resource", sa.String(length=2048), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        *extra,
        _client_fk(name),
        sa.PrimaryKeyConstraint("token_hash", name=op.f(f"pk_{name}")),
    )
    for column in ("client_id", "family_id", "expires_at"):
        op.create_index(op.f(f"ix_{name}_{column}"), name, [column])


def upgrade() -> None:
    """Create the OAuth tables and their indexes."""
    op.create_table(
        "oauth_clients",
        sa.Column("client_id", sa.String(length=_CLIENT_ID), nullable=False),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("registration", sa.JSON(), nullable=False),
        sa.Column("secret_hash", sa.String(length=_HASH), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("grant", sa.JSON(), nullable=True),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_oauth_clients")),
    )
    for table in ("oauth_pending_authorizations", "oauth_authorization_codes"):
        key = "request_hash" if table == "oauth_pending_authorizations" else "code_hash"
        op.create_table(
            table,
            sa.Column(key, sa.String(length=_HASH), nullable=False),
            sa.Column("client_id", sa.String(length=_CLIENT_ID), nullable=False),
            sa.Column("params", sa.JSON(), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            _client_fk(table),
            sa.PrimaryKeyConstraint(key, name=op.f(f"pk_{table}")),
        )
        op.create_index(op.f(f"ix_{table}_expires_at"), table, ["expires_at"])
    _token_table("oauth_access_tokens")
    _token_table("oauth_refresh_tokens", sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "owner_credentials",
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=512), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner", name=op.f("pk_owner_credentials")),
    )


def downgrade() -> None:
    """Drop the OAuth tables."""
    op.drop_table("owner_credentials")
    for name in ("oauth_refresh_tokens", "oauth_access_tokens"):
        for column in ("expires_at", "family_id", "client_id"):
            op.drop_index(op.f(f"ix_{name}_{column}"), table_name=name)
        op.drop_table(name)
    for table in ("oauth_authorization_codes", "oauth_pending_authorizations"):
        op.drop_index(op.f(f"ix_{table}_expires_at"), table_name=table)
        op.drop_table(table)
    op.drop_table("oauth_clients")
