"""A run's outcome (the tool result it returned, so a task's result outlives the process) and grant.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``runs.outcome`` and ``runs.grant``."""
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("outcome", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("grant", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop ``runs.outcome`` and ``runs.grant``."""
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("grant")
        batch.drop_column("outcome")
