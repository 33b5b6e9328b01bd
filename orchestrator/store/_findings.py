"""What the definition checks found in each server's latest listing.

Each listing's findings replace the server's previous ones (``record_findings``), so what is
stored is what the server says now; a finding that stays the same keeps when it was first
seen. ``trust`` decides what a finding is and what it does; this module keeps the records
for ``orchestrator pins`` and ``doctor`` to show.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import DBAPIError

from orchestrator.store._failures import database_failure
from orchestrator.store._schema import trust_findings

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from datetime import datetime

    from sqlalchemy.engine import RowMapping
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["StoredFinding", "list_findings", "record_findings"]


@dataclasses.dataclass(frozen=True, slots=True)
class StoredFinding:
    """One finding of a definition check, as stored.

    Attributes:
        server: Config key of the server whose definition it is.
        kind: ``tool``, ``prompt`` or ``resource_template``.
        name: The definition's name on its own server.
        check: Which check found it (``hidden_unicode``, ``cross_server_reference``, ...).
        severity: What the policy said to do: ``quarantine`` or ``warn``.
        field: Where in the definition, e.g. ``inputSchema.properties.q.description``.
        detail: A short explanation (never the whole offending text).
        seen_at: When it was first seen (set by the store; ignored on the way in).
    """

    server: str
    kind: str
    name: str
    check: str
    severity: str
    field: str
    detail: str
    # ``dataclasses.field`` in full: the ``field`` attribute above shadows the bare name here.
    seen_at: datetime | None = dataclasses.field(default=None, compare=False)

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        """What makes two findings of one server the same: kind, name, check, field, detail."""
        return self.kind, self.name, self.check, self.field, self.detail


_COMPARED = ("kind", "name", "check", "severity", "field", "detail", "seen_at")


def _compared(row: Mapping[Any, Any]) -> tuple[Any, ...]:
    """A row's stored values but its id and server: two sets of them equal store the same findings."""
    return tuple(row[column] for column in _COMPARED)


def _finding(row: RowMapping) -> StoredFinding:
    return StoredFinding(
        server=row["server"],
        kind=row["kind"],
        name=row["name"],
        check=row["check"],
        severity=row["severity"],
        field=row["field"],
        detail=row["detail"],
        seen_at=row["seen_at"],
    )


async def record_findings(engine: AsyncEngine, server: str, findings: Sequence[StoredFinding], *, at: datetime) -> None:
    """Make ``findings`` the findings of ``server``; an empty sequence clears them.

    A finding stored before with the same kind, name, check, field and detail keeps its
    first ``seen_at`` (its severity is updated: the config may have changed it).

    Raises:
        ValueError: A finding belongs to another server.
        StoreError: The database refused or could not be reached.
    """
    if strays := sorted({item.server for item in findings if item.server != server}):
        raise ValueError(f"findings of {', '.join(map(repr, strays))} given as findings of {server!r}")
    where = trust_findings.c.server == server
    try:
        async with engine.begin() as connection:
            before: dict[tuple[str, str, str, str, str], datetime] = {}
            stored: list[tuple[Any, ...]] = []
            for row in (await connection.execute(select(trust_findings).where(where))).mappings():
                found = _finding(row)
                stored.append(_compared(row))
                if found.seen_at is not None:
                    before.setdefault(found.key, found.seen_at)
            rows = [
                {
                    "server": server,
                    "kind": item.kind,
                    "name": item.name,
                    "check": item.check,
                    "severity": item.severity,
                    "field": item.field,
                    "detail": item.detail,
                    "seen_at": before.get(item.key, at),
                }
                for item in findings
            ]
            if Counter(stored) == Counter(map(_compared, rows)):
                return  # what is stored already: no write (most starts find what the last one did)
            await connection.execute(delete(trust_findings).where(where))
            if rows:
                await connection.execute(insert(trust_findings), rows)
    except DBAPIError as exc:
        raise database_failure(engine, "record definition findings", exc) from None


async def list_findings(engine: AsyncEngine, server: str | None = None) -> list[StoredFinding]:
    """The stored findings of ``server`` (of every server when ``None``), sorted by server,
    kind, name, field and check.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    query = select(trust_findings).order_by(
        trust_findings.c.server,
        trust_findings.c.kind,
        trust_findings.c.name,
        trust_findings.c.field,
        trust_findings.c.check,
        trust_findings.c.id,
    )
    if server is not None:
        query = query.where(trust_findings.c.server == server)
    try:
        async with engine.connect() as connection:
            return [_finding(row) for row in (await connection.execute(query)).mappings()]
    except DBAPIError as exc:
        raise database_failure(engine, "list definition findings", exc) from None
