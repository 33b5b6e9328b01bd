"""The audit log's records: written one per call and per workflow step, read back by filter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select

from orchestrator.store._schema import audit_records

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["AuditRecord", "prune_audit", "read_audit", "write_audit"]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One call, or one step of a run, as the audit log keeps it: shapes and hashes, never values.

    Attributes:
        at: When it started (timezone-aware, UTC).
        tool: The exposed tool (or composite) name.
        argument_shape: The arguments' structure with every value replaced by its JSON type.
        argument_hash: SHA-256 of the canonical arguments, to match repeats without keeping them.
        outcome: ``ok``, or the error type.
        duration_ms: How long it took.
        client_id: The OAuth client (or token) that made it; ``None`` over stdio.
        subject: The person or service behind the client, when known.
        server: The downstream server that served it.
        downstream_tool: The tool's name on that server.
        run_id: The run, for a workflow step.
        step_id: The step, for a workflow step.
        trace_id: The trace, when tracing is on.
    """

    at: datetime
    tool: str
    argument_shape: Any
    argument_hash: str
    outcome: str
    duration_ms: float
    client_id: str | None = None
    subject: str | None = None
    server: str | None = None
    downstream_tool: str | None = None
    run_id: str | None = None
    step_id: str | None = None
    trace_id: str | None = None
    id: int | None = field(default=None, compare=False)


_COLUMNS = (
    "at",
    "tool",
    "argument_shape",
    "argument_hash",
    "outcome",
    "duration_ms",
    "client_id",
    "subject",
    "server",
    "downstream_tool",
    "run_id",
    "step_id",
    "trace_id",
)


async def write_audit(engine: AsyncEngine, records: list[AuditRecord]) -> None:
    """Append ``records`` in one transaction."""
    if not records:
        return
    rows = [{name: getattr(record, name) for name in _COLUMNS} for record in records]
    async with engine.begin() as connection:
        await connection.execute(insert(audit_records), rows)


async def read_audit(
    engine: AsyncEngine,
    *,
    since: datetime | None = None,
    client_id: str | None = None,
    limit: int = 1000,
) -> list[AuditRecord]:
    """Records, oldest first, from ``since`` on and of ``client_id`` when given; at most ``limit``."""
    query = select(audit_records).order_by(audit_records.c.at, audit_records.c.id).limit(limit)
    if since is not None:
        query = query.where(audit_records.c.at >= since)
    if client_id is not None:
        query = query.where(audit_records.c.client_id == client_id)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).mappings().all()
    return [AuditRecord(id=row["id"], **{name: row[name] for name in _COLUMNS}) for row in rows]


async def prune_audit(engine: AsyncEngine, older_than: datetime) -> int:
    """Delete the records from before ``older_than`` (the retention setting); how many went."""
    async with engine.begin() as connection:
        result = await connection.execute(delete(audit_records).where(audit_records.c.at < older_than))
    return result.rowcount
