"""Pins of downstream servers: identities, definition digests, field hashes and texts, pending
changes, and what the definition checks found.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_SERVER_KEY = 255
_IDENTITY = 4096
_DEFINITION_NAME = 1024
_HASH = 64


def _definition_table(name: str, *columns: sa.Column[object]) -> None:
    op.create_table(
        name,
        sa.Column("server", sa.String(length=_SERVER_KEY), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=_DEFINITION_NAME), nullable=False),
        *columns,
        sa.ForeignKeyConstraint(
            ["server"],
            ["trust_servers.server"],
            name=op.f(f"fk_{name}_server_trust_servers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("server", "kind", "name", name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    """Create the pin tables."""
    op.create_table(
        "trust_servers",
        sa.Column("server", sa.String(length=_SERVER_KEY), nullable=False),
        sa.Column("identity", sa.String(length=_IDENTITY), nullable=False),
        sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=255), nullable=True),
        sa.Column("pending_identity", sa.String(length=_IDENTITY), nullable=True),
        sa.PrimaryKeyConstraint("server", name=op.f("pk_trust_servers")),
    )
    _definition_table(
        "trust_pins",
        sa.Column("digest", sa.String(length=_HASH), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=255), nullable=True),
        sa.Column("definition", sa.Text(), nullable=True),
    )
    _definition_table(
        "trust_pending",
        sa.Column("digest", sa.String(length=_HASH), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("definition", sa.Text(), nullable=True),
    )
    op.create_table(
        "trust_findings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("server", sa.String(length=_SERVER_KEY), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=_DEFINITION_NAME), nullable=False),
        sa.Column("check", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=32), nullable=False),
        sa.Column("field", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trust_findings")),
    )
    op.create_index(op.f("ix_trust_findings_server"), "trust_findings", ["server"])


def downgrade() -> None:
    """Drop the pin tables."""
    op.drop_index(op.f("ix_trust_findings_server"), table_name="trust_findings")
    op.drop_table("trust_findings")
    op.drop_table("trust_pending")
    op.drop_table("trust_pins")
    op.drop_table("trust_servers")
