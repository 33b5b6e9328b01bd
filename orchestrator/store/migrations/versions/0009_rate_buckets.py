"""The token buckets of rate limits shared by several processes.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the rate buckets table."""
    op.create_table(
        "rate_buckets",
        sa.Column("principal", sa.String(length=64), nullable=False),
        sa.Column("tool", sa.String(length=255), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.Column("full_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("principal", "tool", name=op.f("pk_rate_buckets")),
    )
    op.create_index(op.f("ix_rate_buckets_full_at"), "rate_buckets", ["full_at"], unique=False)


def downgrade() -> None:
    """Drop the rate buckets table."""
    op.drop_index(op.f("ix_rate_buckets_full_at"), table_name="rate_buckets")
    op.drop_table("rate_buckets")
