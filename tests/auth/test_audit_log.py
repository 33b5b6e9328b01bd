"""The audit log writes every record it is given, in the background, on SQLite and a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
import pytest

from orchestrator.auth import AuditLog, Grant, Principal, audit_record
from orchestrator.config import AuditSpec, StateSpec
from orchestrator.store import AuditRecord, Store, open_store, prune_audit, read_audit, state_url, write_audit

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
PRINCIPAL = Principal(kind="oauth", client_id="chatgpt", subject="owner", grant=Grant.of(["*"]))


def _record(index: int, at: datetime = NOW) -> AuditRecord:
    return audit_record(
        principal=PRINCIPAL,
        tool=f"tool{index}",
        arguments={"n": index},
        outcome="ok",
        duration=0.001,
        server="s",
        downstream_tool="t",
        started_at=at + timedelta(milliseconds=index),
    )


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'state.db'}"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    async with open_store(state_url(StateSpec(url=url), {})) as opened:
        yield opened
        # PostgreSQL is shared by the session: leave the next test an empty table.
        await prune_audit(opened.engine, datetime(9999, 1, 1, tzinfo=UTC))


async def test_every_record_is_written_by_the_end_even_through_a_tiny_buffer(store: Store) -> None:
    records = [_record(index) for index in range(200)]

    async with AuditLog(store, AuditSpec(), buffer_size=1, batch_size=7, clock=lambda: NOW) as log:

        async def caller(offset: int) -> None:
            for record in records[offset::10]:
                await log.record(record)

        async with anyio.create_task_group() as callers:
            for offset in range(10):
                callers.start_soon(caller, offset)

    written = await read_audit(store.engine)
    assert sorted(record.tool for record in written) == sorted(record.tool for record in records)
    assert [record.at for record in written] == sorted(record.at for record in records)


async def test_records_still_buffered_when_the_log_is_cancelled_are_written(store: Store) -> None:
    records = [_record(index) for index in range(300)]

    with anyio.CancelScope() as scope:
        async with AuditLog(store, AuditSpec(), buffer_size=1000, batch_size=16, clock=lambda: NOW) as log:
            for record in records:
                await log.record(record)
            scope.cancel()
            await anyio.lowlevel.checkpoint()
            pytest.fail("not cancelled")  # pragma: no cover
    assert scope.cancelled_caught

    written = await read_audit(store.engine)
    assert len(written) == len(records)


async def test_a_call_being_cancelled_still_has_its_record_kept(store: Store) -> None:
    async with AuditLog(store, AuditSpec(), clock=lambda: NOW) as log:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await log.record(_record(1))  # as the call path does on its way out of a cancelled call

    assert [record.tool for record in await read_audit(store.engine)] == ["tool1"]


async def test_records_past_the_retention_are_pruned_on_entering(store: Store) -> None:
    old = [_record(index, NOW - timedelta(days=31)) for index in range(3)]
    kept = [_record(index, NOW - timedelta(days=29)) for index in range(2)]
    await write_audit(store.engine, old + kept)

    async with AuditLog(store, AuditSpec.model_validate({"retention": "30d"}), clock=lambda: NOW):
        left = await read_audit(store.engine)

    assert [record.at for record in left] == [record.at for record in kept]


async def test_pruning_comes_back_after_its_interval(store: Store) -> None:
    asked = 0
    asked_again = anyio.Event()

    def clock() -> datetime:
        nonlocal asked
        asked += 1
        if asked == 2:
            asked_again.set()
        return NOW

    with anyio.fail_after(10):
        async with AuditLog(store, AuditSpec(), prune_every=0.01, clock=clock):
            assert asked == 1  # the pruning on entering
            await asked_again.wait()


async def test_a_record_after_the_log_is_closed_is_refused(store: Store) -> None:
    log = AuditLog(store, AuditSpec(), clock=lambda: NOW)
    with pytest.raises(RuntimeError, match="not open"):
        await log.record(_record(0))
    async with log:
        await log.record(_record(1))
    with pytest.raises(RuntimeError, match="not open"):
        await log.record(_record(2))
    assert [record.tool for record in await read_audit(store.engine)] == ["tool1"]


async def test_a_long_client_id_is_cut_to_fit_rather_than_losing_the_batch(store: Store) -> None:
    client_id = "https://client.example/" + "c" * 400
    principal = Principal(kind="oauth", client_id=client_id, subject=None, grant=Grant.of([]))
    long = audit_record(principal=principal, tool="t", arguments={}, outcome="ok", duration=0.0, started_at=NOW)

    async with AuditLog(store, AuditSpec(), clock=lambda: NOW) as log:
        await log.record(long)
        await log.record(_record(1))

    written = await read_audit(store.engine)
    assert [record.tool for record in written] == ["t", "tool1"]
    assert written[0].client_id is not None
    assert written[0].client_id.startswith("https://client.example/ccc")
    assert len(written[0].client_id) == 255
