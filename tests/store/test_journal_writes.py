"""The run journal's batched writes, approvals and release, on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from orchestrator.errors import RunLeaseLost
from orchestrator.store import (
    JournalEntry,
    RunPrincipal,
    answer_approval,
    claim_runs,
    create_run,
    finish_run,
    read_run,
    read_step,
    release_run,
    write_journal,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


async def _run(engine: AsyncEngine, owner: str = "proc-a", grant: tuple[str, ...] | None = None) -> str:
    run_id = uuid.uuid4().hex
    await create_run(
        engine,
        run_id,
        workflow="w",
        plan_hash="a" * 64,
        workflow_snapshot="{}",
        input={},
        principal=RunPrincipal("client", "sub", grant),
        catalogue_version=None,
        at=NOW,
        owner=owner,
        lease_seconds=60,
    )
    return run_id


async def test_one_write_journals_many_steps_in_order_and_counts_attempts(engine: AsyncEngine) -> None:
    run_id = await _run(engine)
    entries = [JournalEntry(run_id, "a", None, "running"), JournalEntry(run_id, "b", 0, "running")]
    assert await write_journal(engine, entries, owner="proc-a", at=NOW) == {}
    later = NOW + timedelta(seconds=1)
    entries = [
        JournalEntry(run_id, "a", None, "succeeded", {"n": 1}),
        JournalEntry(run_id, "b", 0, "failed", error="boom"),
        JournalEntry(run_id, "a", None, "running"),  # a start in the same batch is written first
    ]
    await write_journal(engine, entries, owner="proc-a", at=later)
    run = await read_run(engine, run_id)
    assert run is not None
    a, b = run.step("a"), run.step("b", 0)
    assert a is not None
    assert b is not None
    assert (a.status, a.attempts, a.result, a.started_at, a.finished_at) == ("succeeded", 2, {"n": 1}, later, later)
    assert (b.status, b.attempts, b.error, b.started_at) == ("failed", 1, "boom", NOW)


async def test_entries_of_a_run_the_writer_lost_are_refused_and_the_others_written(engine: AsyncEngine) -> None:
    mine, theirs = await _run(engine), await _run(engine, owner="proc-b")
    lost = await write_journal(
        engine,
        [JournalEntry(mine, "a", None, "running"), JournalEntry(theirs, "a", None, "running")],
        owner="proc-a",
        at=NOW,
    )
    assert list(lost) == [theirs]
    assert isinstance(lost[theirs], RunLeaseLost)
    assert lost[theirs].holder == "proc-b"
    assert await read_step(engine, mine, "a") is not None
    assert await read_step(engine, theirs, "a") is None


async def test_an_approval_is_answered_once_and_only_while_the_step_waits(engine: AsyncEngine) -> None:
    run_id = await _run(engine)
    question = {"message": "Deploy?", "shown": {"v": 2}, "tool": "ci.deploy", "destructive": True}
    await write_journal(engine, [JournalEntry(run_id, "deploy", None, "waiting", question)], owner="proc-a", at=NOW)
    waiting = await read_step(engine, run_id, "deploy")
    assert waiting is not None
    assert (waiting.status, waiting.result, waiting.started_at, waiting.finished_at) == ("waiting", question, NOW, None)

    assert not await answer_approval(engine, run_id, "other", approved=True, at=NOW)
    assert await answer_approval(engine, run_id, "deploy", approved=False, at=NOW, by="cli")
    assert not await answer_approval(engine, run_id, "deploy", approved=True, at=NOW, by="late")
    answered = await read_step(engine, run_id, "deploy")
    assert answered is not None
    assert answered.status == "declined"
    assert answered.result == {**question, "answered_by": "cli"}
    assert answered.started_at == NOW  # the question's time is kept: the timeout counts from it


async def test_an_approval_of_a_run_that_is_over_cannot_be_answered(engine: AsyncEngine) -> None:
    run_id = await _run(engine)
    await write_journal(engine, [JournalEntry(run_id, "s", None, "waiting", {})], owner="proc-a", at=NOW)
    await finish_run(engine, run_id, "cancelled", at=NOW)
    assert not await answer_approval(engine, run_id, "s", approved=True, at=NOW)


async def test_a_released_run_keeps_running_and_anyone_may_claim_it_at_once(engine: AsyncEngine) -> None:
    run_id = await _run(engine, grant=("server:git", "tool:b"))
    assert not await release_run(engine, run_id, "proc-b", at=NOW)
    assert await release_run(engine, run_id, "proc-a", at=NOW)
    run = await read_run(engine, run_id)
    assert run is not None
    assert (run.status, run.owner, run.lease_until) == ("running", None, None)
    assert run.principal.grant == ("server:git", "tool:b")
    claimed = await claim_runs(engine, "proc-c", lease_seconds=60, now=NOW, limit=10_000)
    assert run_id in [record.id for record in claimed]
