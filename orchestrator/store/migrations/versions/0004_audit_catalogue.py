"""The audit log keeps the version of the catalogue each call was made against.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add ``audit_records.catalogue_version`` (empty in the records written before)."""
    with op.batch_alter_table("audit_records") as batch:
        batch.add_column(sa.Column("catalogue_version", sa.String(length=64), nullable=True))


def downgrade() -> None:
    """Drop ``audit_records.catalogue_version``."""
    with op.batch_alter_table("audit_records") as batch:
        batch.drop_column("catalogue_version")
