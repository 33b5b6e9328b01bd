"""An operator's hold on journalled runs, on SQLite and on a real PostgreSQL: cancel, reopen, look up."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from orchestrator.errors import RunAlreadyOver, RunLeaseLost, RunNotResumable, StoreError
from orchestrator.store import (
    RunPrincipal,
    RunRecord,
    StepState,
    cancel_run,
    claim_runs,
    create_run,
    finish_run,
    read_run,
    read_step_states,
    record_step_finished,
    record_step_started,
    renew_lease,
    reopen_run,
    run_ids_starting_with,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
LEASE = 60.0
CLAIM_ALL = 10_000  # PostgreSQL is shared by the session: claims take every test's runs


async def _create(engine: AsyncEngine, run_id: str | None = None) -> RunRecord:
    run, _ = await create_run(
        engine,
        run_id or uuid.uuid4().hex,
        workflow="triage",
        plan_hash="a" * 64,
        workflow_snapshot="name: triage\n",
        input={"repo": "octo/hello"},
        principal=RunPrincipal(client_id="client-1", subject="alice"),
        catalogue_version="cat-1",
        at=NOW,
        owner="proc-a",
        lease_seconds=LEASE,
    )
    return run


async def _step(engine: AsyncEngine, run_id: str, step_id: str, item: int | None, status: str) -> None:
    """Journal a step that started (once) and, unless ``status`` is running, reached ``status``."""
    if status != "skipped":
        await record_step_started(engine, run_id, step_id, item, at=NOW)
    if status != "running":
        result = {"done": step_id} if status == "succeeded" else None
        error = "boom" if status == "failed" else None
        await record_step_finished(engine, run_id, step_id, item, status=status, result=result, error=error, at=NOW)


async def _stopped_run(engine: AsyncEngine, status: str = "interrupted") -> RunRecord:
    """A run that stopped as ``status`` with one step of every kind of record."""
    run = await _create(engine)
    await _step(engine, run.id, "fetch", None, "succeeded")
    await _step(engine, run.id, "deploy", None, "running")  # in flight when it stopped
    await _step(engine, run.id, "lint", None, "failed")
    await _step(engine, run.id, "notify", None, "skipped")
    await _step(engine, run.id, "details", 0, "succeeded")
    await _step(engine, run.id, "details", 1, "running")
    await _step(engine, run.id, "details", 2, "failed")
    await _step(engine, run.id, "label", 0, "succeeded")
    await _step(engine, run.id, "label", 1, "running")
    outcome = {"content": [{"type": "text", "text": "stopped"}], "isError": True}
    await finish_run(engine, run.id, status, error="step deploy was in flight", outcome=outcome, at=NOW)
    return run


def _steps(run: RunRecord) -> list[tuple[str, str, int]]:
    return [(step.key, step.status, step.attempts) for step in run.steps]


async def test_a_reopened_run_keeps_what_is_done_and_forgets_what_failed_or_was_in_flight(engine: AsyncEngine) -> None:
    run = await _stopped_run(engine)

    reopened = await reopen_run(engine, run.id, at=LATER)

    assert reopened == await read_run(engine, run.id)
    assert (reopened.status, reopened.error, reopened.outcome, reopened.finished_at) == ("running", None, None, None)
    assert (reopened.owner, reopened.lease_until, reopened.updated_at) == (None, None, LATER)
    assert _steps(reopened) == [
        ("details[0]", "succeeded", 1),
        ("fetch", "succeeded", 1),
        ("label[0]", "succeeded", 1),
        ("notify", "skipped", 0),
    ]
    fetched = reopened.step("fetch")
    assert fetched is not None
    assert fetched.result == {"done": "fetch"}
    await finish_run(engine, run.id, "cancelled", at=LATER)  # PostgreSQL is shared: leave nothing to claim


async def test_retried_steps_are_forgotten_and_skipped_steps_are_skipped_with_their_items(engine: AsyncEngine) -> None:
    run = await _stopped_run(engine)

    reopened = await reopen_run(engine, run.id, at=LATER, retry_steps=["fetch"], skip_steps=["deploy", "label"])

    assert _steps(reopened) == [
        ("deploy", "skipped", 1),  # its attempt is kept: the tool may have acted
        ("details[0]", "succeeded", 1),
        ("label", "skipped", 0),
        ("notify", "skipped", 0),
    ]
    for step_id in ("deploy", "label"):
        skipped = reopened.step(step_id)
        assert skipped is not None
        assert (skipped.result, skipped.error, skipped.finished_at) == (None, None, LATER)
    await finish_run(engine, run.id, "cancelled", at=LATER)


async def test_a_reopened_run_is_claimed_by_the_next_serving_process(engine: AsyncEngine) -> None:
    run = await _stopped_run(engine, "failed")
    await reopen_run(engine, run.id, at=LATER, skip_steps=["deploy"])

    claimed = await claim_runs(engine, "proc-b", lease_seconds=LEASE, now=LATER, limit=CLAIM_ALL)
    assert run.id in {other.id for other in claimed}
    stored = await read_run(engine, run.id)
    assert stored is not None
    assert (stored.status, stored.owner) == ("running", "proc-b")
    await finish_run(engine, run.id, "succeeded", at=LATER, owner="proc-b")


@pytest.mark.parametrize(
    ("status", "why"),
    [
        ("succeeded", "it succeeded: there is nothing left to run"),
        ("declined", "it was declined at an approval step"),
        ("running", "it is running"),
    ],
)
async def test_only_a_run_that_stopped_is_reopened(engine: AsyncEngine, status: str, why: str) -> None:
    run = await _create(engine)
    await _step(engine, run.id, "fetch", None, "failed")
    if status != "running":
        await finish_run(engine, run.id, status, at=NOW)
    before = await read_run(engine, run.id)

    with pytest.raises(RunNotResumable, match=f"cannot be resumed: {why}") as caught:
        await reopen_run(engine, run.id, at=LATER, retry_steps=["fetch"])

    assert (caught.value.run_id, caught.value.status) == (run.id, status)
    assert await read_run(engine, run.id) == before
    if status == "running":
        await finish_run(engine, run.id, "cancelled", at=NOW)


async def test_reopening_refuses_unknown_runs_and_a_step_both_retried_and_skipped(engine: AsyncEngine) -> None:
    with pytest.raises(StoreError, match="no run") as caught:
        await reopen_run(engine, uuid.uuid4().hex, at=LATER)
    assert not isinstance(caught.value, RunNotResumable)

    run = await _stopped_run(engine)
    with pytest.raises(ValueError, match="not both: deploy"):
        await reopen_run(engine, run.id, at=LATER, retry_steps=["deploy", "fetch"], skip_steps=["deploy"])
    stored = await read_run(engine, run.id)
    assert stored is not None
    assert stored.status == "interrupted"


async def test_a_cancelled_run_is_released_and_its_owner_stops_at_its_next_write(engine: AsyncEngine) -> None:
    run = await _create(engine)
    await _step(engine, run.id, "fetch", None, "running")

    cancelled = await cancel_run(engine, run.id, at=LATER, reason="cancelled by alice")

    assert cancelled == await read_run(engine, run.id)
    assert (cancelled.status, cancelled.error, cancelled.finished_at) == ("cancelled", "cancelled by alice", LATER)
    assert (cancelled.owner, cancelled.lease_until, cancelled.updated_at) == (None, None, LATER)
    assert _steps(cancelled) == [("fetch", "running", 1)]  # what was in flight stays visible
    with pytest.raises(RunLeaseLost, match="cancelled"):
        await record_step_finished(engine, run.id, "fetch", status="succeeded", at=LATER, owner="proc-a")
    with pytest.raises(RunLeaseLost, match="cancelled"):
        await renew_lease(engine, run.id, "proc-a", lease_seconds=LEASE, now=LATER)

    # A cancelled run may be resumed later.
    reopened = await reopen_run(engine, run.id, at=LATER + timedelta(minutes=1))
    assert (reopened.status, reopened.error, reopened.steps) == ("running", None, ())
    await finish_run(engine, run.id, "cancelled", at=LATER)


async def test_a_run_that_is_over_is_not_cancelled(engine: AsyncEngine) -> None:
    run = await _create(engine)
    finished = await finish_run(engine, run.id, "succeeded", at=NOW, outcome={"content": []})

    with pytest.raises(RunAlreadyOver, match="is succeeded already") as caught:
        await cancel_run(engine, run.id, at=LATER, reason="too late")

    assert (caught.value.run_id, caught.value.status) == (run.id, "succeeded")
    assert await read_run(engine, run.id) == finished
    with pytest.raises(StoreError, match="no run") as missing:
        await cancel_run(engine, uuid.uuid4().hex, at=LATER, reason="nobody")
    assert not isinstance(missing.value, RunAlreadyOver)


async def test_runs_are_found_by_a_literal_prefix_of_their_id(engine: AsyncEngine) -> None:
    stem = uuid.uuid4().hex[:12]
    ids = sorted(f"{stem}{suffix}" for suffix in ("_a1", "_a2", "xb3"))
    for run_id in ids:
        await _create(engine, run_id)

    assert await run_ids_starting_with(engine, stem) == ids
    assert await run_ids_starting_with(engine, f"{stem}_a") == ids[:2]
    assert await run_ids_starting_with(engine, f"{stem}x") == [ids[2]]
    assert await run_ids_starting_with(engine, f"{stem}%") == []  # not a wildcard
    assert await run_ids_starting_with(engine, f"{stem[:-1]}_") == []  # nor is _
    assert await run_ids_starting_with(engine, stem, limit=1) == ids[:1]
    for run_id in ids:
        await finish_run(engine, run_id, "cancelled", at=NOW)


async def test_step_states_of_many_runs_are_read_without_their_results(engine: AsyncEngine) -> None:
    stopped = await _stopped_run(engine)
    empty = await _create(engine)

    states = await read_step_states(engine, [stopped.id, empty.id, uuid.uuid4().hex])

    assert list(states) == [stopped.id]
    assert states[stopped.id][:3] == [
        StepState("deploy", None, "running"),
        StepState("details", 0, "succeeded"),
        StepState("details", 1, "running"),
    ]
    assert len(states[stopped.id]) == 9
    assert await read_step_states(engine, []) == {}
    await finish_run(engine, empty.id, "cancelled", at=NOW)
