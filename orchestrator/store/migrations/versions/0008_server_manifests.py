"""Each downstream server's last listing, so a lazy server is served without being started.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the server manifests table."""
    op.create_table(
        "server_manifests",
        sa.Column("server", sa.String(length=255), nullable=False),
        sa.Column("connection", sa.String(length=64), nullable=False),
        sa.Column("listing", sa.JSON(), nullable=False),
        sa.Column("listed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("server", name=op.f("pk_server_manifests")),
    )


def downgrade() -> None:
    """Drop the server manifests table."""
    op.drop_table("server_manifests")
