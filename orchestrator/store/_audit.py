"""The audit log's records: written one per call and per workflow step, read back by filter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import DBAPIError

from orchestrator.store._failures import database_failure
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
        catalogue_version: The version of the served catalogue the call was made against
            (``None`` in records written before it was kept).
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
    catalogue_version: str | None = None
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
    "catalogue_version",
)


def _fitted(name: str, value: Any) -> Any:
    """``value`` cut to its column's length: one long client id must not lose a whole batch."""
    length = getattr(audit_records.c[name].type, "length", None)
    if isinstance(value, str) and isinstance(length, int) and len(value) > length:
        return value[: length - 1] + "…"
    return value


async def write_audit(engine: AsyncEngine, records: list[AuditRecord]) -> None:
    """Append ``records`` in one transaction.

    Raises:
        StoreError: The database refused or could not be reached (nothing was written).
        sqlalchemy.exc.StatementError: A record is malformed (a time without a zone): a bug.
    """
    if not records:
        return
    rows = [{name: _fitted(name, getattr(record, name)) for name in _COLUMNS} for record in records]
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(audit_records), rows)
    except DBAPIError as exc:
        raise database_failure(engine, "write the audit log", exc) from None


async def read_audit(
    engine: AsyncEngine,
    *,
    since: datetime | None = None,
    client_id: str | None = None,
    tool: str | None = None,
    limit: int = 1000,
    latest: bool = False,
) -> list[AuditRecord]:
    """Records, oldest first, from ``since`` on, of ``client_id`` and ``tool`` when given.

    Args:
        engine: The store's engine.
        since: The earliest time wanted (aware).
        client_id: Only this client's records.
        tool: Only the records of this exposed tool (or composite).
        limit: Records returned at most.
        latest: Return the last ``limit`` records that match rather than the first.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    order = (
        (audit_records.c.at.desc(), audit_records.c.id.desc()) if latest else (audit_records.c.at, audit_records.c.id)
    )
    query = select(audit_records).order_by(*order).limit(limit)
    if since is not None:
        query = query.where(audit_records.c.at >= since)
    if client_id is not None:
        query = query.where(audit_records.c.client_id == client_id)
    if tool is not None:
        query = query.where(audit_records.c.tool == tool)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(query)).mappings().all()
    except DBAPIError as exc:
        raise database_failure(engine, "read the audit log", exc) from None
    records = [AuditRecord(id=row["id"], **{name: row[name] for name in _COLUMNS}) for row in rows]
    return records[::-1] if latest else records


async def prune_audit(engine: AsyncEngine, older_than: datetime) -> int:
    """Delete the records from before ``older_than`` (the retention setting); how many went.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    try:
        async with engine.begin() as connection:
            result = await connection.execute(delete(audit_records).where(audit_records.c.at < older_than))
    except DBAPIError as exc:
        raise database_failure(engine, "prune the audit log", exc) from None
    return result.rowcount
