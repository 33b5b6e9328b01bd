"""Credentials of the orchestrator as an OAuth client of remote downstream servers (encrypted blobs).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the downstream credentials table."""
    op.create_table(
        "downstream_credentials",
        sa.Column("server", sa.String(length=255), nullable=False),
        sa.Column("tokens", sa.LargeBinary(), nullable=True),
        sa.Column("client_info", sa.LargeBinary(), nullable=True),
        sa.Column("refresh_failure", sa.String(length=1024), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("server", name=op.f("pk_downstream_credentials")),
    )


def downgrade() -> None:
    """Drop the downstream credentials table."""
    op.drop_table("downstream_credentials")
