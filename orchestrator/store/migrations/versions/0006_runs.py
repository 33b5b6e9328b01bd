"""The run journal: workflow runs (idempotency key, snapshot, status, lease) and their steps.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

_RUN_ID = 255
_STEP_ID = 255
_STEP_KEY = 320
_CLIENT_ID = 1024
_HASH = 64


def upgrade() -> None:
    """Create the run journal's tables."""
    op.create_table(
        "runs",
        sa.Column("id", sa.String(length=_RUN_ID), nullable=False),
        sa.Column("workflow", sa.String(length=255), nullable=False),
        sa.Column("plan_hash", sa.String(length=_HASH), nullable=False),
        sa.Column("workflow_snapshot", sa.Text(), nullable=False),
        sa.Column("input", sa.JSON(), nullable=False),
        sa.Column("client_id", sa.String(length=_CLIENT_ID), nullable=True),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("catalogue_version", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("owner", sa.String(length=255), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_status_lease_until"), "runs", ["status", "lease_until"])
    op.create_index(op.f("ix_runs_finished_at"), "runs", ["finished_at"])
    op.create_index(op.f("ix_runs_client_id_subject"), "runs", ["client_id", "subject"])
    op.create_table(
        "run_steps",
        sa.Column("run_id", sa.String(length=_RUN_ID), nullable=False),
        sa.Column("step_key", sa.String(length=_STEP_KEY), nullable=False),
        sa.Column("step_id", sa.String(length=_STEP_ID), nullable=False),
        sa.Column("item", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_steps_run_id_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id", "step_key", name=op.f("pk_run_steps")),
    )


def downgrade() -> None:
    """Drop the run journal's tables."""
    op.drop_table("run_steps")
    op.drop_index(op.f("ix_runs_client_id_subject"), table_name="runs")
    op.drop_index(op.f("ix_runs_finished_at"), table_name="runs")
    op.drop_index(op.f("ix_runs_status_lease_until"), table_name="runs")
    op.drop_table("runs")
