"""Findings of the definition checks in the store, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import select

from orchestrator.store import StoredFinding, list_findings, record_findings
from orchestrator.store._schema import trust_findings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


def _server() -> str:
    # PostgreSQL is shared by the session: every test uses servers of its own.
    return f"srv-{uuid.uuid4().hex[:12]}"


def _finding(
    server: str,
    name: str,
    check: str = "injection_phrase",
    *,
    severity: str = "warn",
    field: str = "description",
    detail: str = 'ignore_instructions: "ignore previous instructions"',
) -> StoredFinding:
    return StoredFinding(server, "tool", name, check, severity, field, detail)


async def test_findings_are_replaced_per_server_and_keep_when_first_seen(engine: AsyncEngine) -> None:
    server, other = sorted([_server(), _server()])
    hidden = _finding(server, "search", "hidden_unicode", severity="quarantine", detail="1 invisible character(s)")
    phrase = _finding(server, "search")
    # Two phrases in one field are two findings.
    second_phrase = _finding(server, "search", detail='system_prompt: "system prompt"')
    await record_findings(engine, server, [phrase, hidden, second_phrase], at=NOW)
    await record_findings(engine, other, [_finding(other, "send")], at=NOW)

    stored = await list_findings(engine, server)
    assert stored == [hidden, phrase, second_phrase]  # by kind, name, field, check, then as recorded
    assert {item.seen_at for item in stored} == {NOW}

    # The next listing: the hidden character is gone, one phrase stays, a new one appears,
    # and the config made the remaining phrase a quarantine.
    kept = _finding(server, "search", severity="quarantine")
    new = _finding(server, "fetch", "oversized", field="(whole definition)", detail="20000 characters in all")
    await record_findings(engine, server, [kept, new], at=LATER)
    stored = await list_findings(engine, server)
    assert [(item.name, item.check, item.severity, item.seen_at) for item in stored] == [
        ("fetch", "oversized", "warn", LATER),
        ("search", "injection_phrase", "quarantine", NOW),
    ]
    everyone = [item.server for item in await list_findings(engine) if item.server in (server, other)]
    assert everyone == [server, server, other]

    await record_findings(engine, server, [], at=LATER)
    assert await list_findings(engine, server) == []
    assert await list_findings(engine, other) == [_finding(other, "send")]


async def test_findings_of_another_server_are_refused(engine: AsyncEngine) -> None:
    server = _server()
    with pytest.raises(ValueError, match="given as findings of"):
        await record_findings(engine, server, [_finding("elsewhere", "t")], at=NOW)
    assert await list_findings(engine, server) == []


async def _row_ids(engine: AsyncEngine, server: str) -> list[int]:
    async with engine.connect() as connection:
        where = trust_findings.c.server == server
        return sorted((await connection.execute(select(trust_findings.c.id).where(where))).scalars())


async def test_findings_recorded_again_unchanged_are_left_as_they_are(engine: AsyncEngine) -> None:
    server = _server()
    findings = [_finding(server, "search"), _finding(server, "send", "hidden_unicode")]
    await record_findings(engine, server, findings, at=NOW)
    rows = await _row_ids(engine, server)

    await record_findings(engine, server, list(reversed(findings)), at=LATER)
    assert await _row_ids(engine, server) == rows  # not deleted and written again
    assert {item.seen_at for item in await list_findings(engine, server)} == {NOW}

    await record_findings(engine, server, [*findings, _finding(server, "fetch")], at=LATER)
    assert len(await list_findings(engine, server)) == 3
