"""The run journal in the store, on SQLite and on a real PostgreSQL: runs, steps, leases, pruning."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from orchestrator import store as store_package
from orchestrator.config import StateSpec
from orchestrator.errors import RunLeaseLost, StoreError
from orchestrator.store import (
    RunPrincipal,
    RunRecord,
    claim_runs,
    create_run,
    finish_run,
    list_runs,
    open_store,
    prune_runs,
    read_run,
    record_step_finished,
    record_step_started,
    renew_lease,
    state_url,
    step_key,
)
from orchestrator.store._schema import metadata

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LEASE = 60.0
# PostgreSQL is shared by the session, and claims see every test's runs: a claim far in the
# future of the others takes theirs too, so claims ask for many and tests look at their own.
CLAIM_ALL = 10_000


@pytest.fixture
async def other_engine(database_url: str, engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """A second engine on the same database, as a second process would have."""
    async with open_store(state_url(StateSpec(url=database_url), {})) as store:
        yield store.engine


def _run_id() -> str:
    return f"run-{uuid.uuid4().hex}"


async def _create(
    engine: AsyncEngine,
    run_id: str | None = None,
    *,
    owner: str = "proc-a",
    at: datetime = NOW,
    lease_seconds: float = LEASE,
    principal: RunPrincipal | None = None,
    workflow: str = "triage",
    arguments: Any = None,
) -> RunRecord:
    run, _ = await create_run(
        engine,
        run_id or _run_id(),
        workflow=workflow,
        plan_hash="a" * 64,
        workflow_snapshot="name: triage\nsteps:\n  - id: fetch\n",
        input={"repo": "octo/hello", "labels": ["bug"]} if arguments is None else arguments,
        principal=principal or RunPrincipal(client_id="client-1", subject="alice"),
        catalogue_version="cat-1",
        at=at,
        owner=owner,
        lease_seconds=lease_seconds,
    )
    return run


async def test_a_run_is_read_back_as_created(engine: AsyncEngine) -> None:
    run_id = _run_id()
    deadline = NOW + timedelta(hours=1)
    run, created = await create_run(
        engine,
        run_id,
        workflow="triage",
        plan_hash="b" * 64,
        workflow_snapshot="name: triage\n",
        input={"n": 1, "text": "naïve ✓", "nested": [None, True, 2.5]},
        principal=RunPrincipal(client_id=None),
        catalogue_version=None,
        at=NOW,
        owner="proc-a",
        lease_seconds=LEASE,
        deadline=deadline,
    )
    assert created
    assert run == await read_run(engine, run_id)
    assert run.id == run_id
    assert run.workflow == "triage"
    assert run.plan_hash == "b" * 64
    assert run.workflow_snapshot == "name: triage\n"
    assert run.input == {"n": 1, "text": "naïve ✓", "nested": [None, True, 2.5]}
    assert run.principal == RunPrincipal(client_id=None, subject=None)
    assert run.status == "running"
    assert run.error is None
    assert run.catalogue_version is None
    assert run.created_at == run.updated_at == NOW
    assert run.finished_at is None
    assert run.deadline == deadline
    assert run.owner == "proc-a"
    assert run.lease_until == NOW + timedelta(seconds=LEASE)
    assert run.steps == ()
    assert await read_run(engine, _run_id()) is None


async def test_creating_an_existing_run_returns_it_unchanged(engine: AsyncEngine) -> None:
    first = await _create(engine)
    again, created = await create_run(
        engine,
        first.id,
        workflow="other",
        plan_hash="c" * 64,
        workflow_snapshot="name: other\n",
        input={"different": True},
        principal=RunPrincipal(client_id="client-2", subject="bob"),
        catalogue_version="cat-2",
        at=NOW + timedelta(minutes=5),
        owner="proc-b",
        lease_seconds=LEASE,
    )
    assert not created
    assert again == first
    assert again.input == first.input
    assert again.workflow_snapshot == first.workflow_snapshot


async def test_the_same_run_created_at_once_by_two_processes_is_created_once(
    engine: AsyncEngine, other_engine: AsyncEngine
) -> None:
    run_id = _run_id()
    results: list[tuple[RunRecord, bool]] = []

    async def create(on: AsyncEngine, owner: str) -> None:
        results.append(
            await create_run(
                on,
                run_id,
                workflow="triage",
                plan_hash="a" * 64,
                workflow_snapshot=owner,
                input={},
                principal=RunPrincipal(client_id=None),
                catalogue_version=None,
                at=NOW,
                owner=owner,
                lease_seconds=LEASE,
            )
        )

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(create, engine, "proc-a")
            group.start_soon(create, other_engine, "proc-b")
    assert sorted(created for _, created in results) == [False, True]
    assert results[0][0] == results[1][0]
    assert results[0][0].owner == results[0][0].workflow_snapshot  # the winner's row, whole


def test_a_step_key_is_its_id_plus_the_item_index() -> None:
    assert step_key("fetch") == "fetch"
    assert step_key("fetch", 0) == "fetch[0]"
    assert step_key("fetch", 12) == "fetch[12]"
    with pytest.raises(ValueError, match="never negative"):
        step_key("fetch", -1)


async def test_steps_are_keyed_by_id_and_for_each_item_whatever_order_they_ran_in(engine: AsyncEngine) -> None:
    run = await _create(engine)
    at = NOW + timedelta(seconds=1)
    # A for-each's items finish out of order, next to a plain step of the same prefix.
    for item in (2, 0, 1):
        await record_step_started(engine, run.id, "fetch", item, at=at)
    await record_step_started(engine, run.id, "fetch_all", at=at)
    await record_step_finished(engine, run.id, "fetch", 1, status="succeeded", result={"item": 1}, at=at)
    await record_step_finished(engine, run.id, "fetch", 2, status="failed", error="timed out", at=at)
    await record_step_finished(engine, run.id, "notify", status="skipped", at=at)

    stored = await read_run(engine, run.id)
    assert stored is not None
    assert [(step.step_id, step.item, step.status) for step in stored.steps] == [
        ("fetch", 0, "running"),
        ("fetch", 1, "succeeded"),
        ("fetch", 2, "failed"),
        ("fetch_all", None, "running"),
        ("notify", None, "skipped"),
    ]
    fetched = stored.step("fetch", 1)
    assert fetched is not None
    assert fetched.key == "fetch[1]"
    assert fetched.result == {"item": 1}
    assert fetched.attempts == 1
    assert fetched.started_at == fetched.finished_at == at
    failed = stored.step("fetch", 2)
    assert failed is not None
    assert failed.error == "timed out"
    assert failed.result is None
    skipped = stored.step("notify")
    assert skipped is not None
    assert skipped.attempts == 0
    assert skipped.started_at is None
    assert stored.step("fetch") is None  # the for-each as a whole is not an item
    assert stored.updated_at == at


async def test_a_step_started_again_counts_an_attempt_and_forgets_its_outcome(engine: AsyncEngine) -> None:
    run = await _create(engine)
    first = await record_step_started(engine, run.id, "fetch", at=NOW)
    assert (first.status, first.attempts) == ("running", 1)
    await record_step_finished(engine, run.id, "fetch", status="failed", error="boom", at=NOW)
    later = NOW + timedelta(seconds=5)
    second = await record_step_started(engine, run.id, "fetch", at=later)
    assert (second.status, second.attempts, second.error, second.finished_at) == ("running", 2, None, None)
    assert second.started_at == later
    done = await record_step_finished(engine, run.id, "fetch", status="succeeded", result=[1, "two"], at=later)
    assert (done.status, done.attempts, done.result) == ("succeeded", 2, [1, "two"])


async def test_a_step_result_is_committed_when_the_call_returns(engine: AsyncEngine, other_engine: AsyncEngine) -> None:
    run = await _create(engine)
    result = {"content": [{"type": "text", "text": "ok ✓"}], "structured": {"count": 3, "ids": [1, 2]}, "none": None}
    await record_step_started(engine, run.id, "summarise", 4, at=NOW)
    written = await record_step_finished(engine, run.id, "summarise", 4, status="succeeded", result=result, at=NOW)
    assert written.result == result
    seen = await read_run(other_engine, run.id)  # another connection pool: only committed rows
    assert seen is not None
    step = seen.step("summarise", 4)
    assert step is not None
    assert step.result == result


async def test_step_writes_are_refused_for_unknown_runs_and_bad_outcomes(engine: AsyncEngine) -> None:
    missing = _run_id()
    with pytest.raises(StoreError, match="no run") as caught:
        await record_step_started(engine, missing, "fetch", at=NOW)
    assert not isinstance(caught.value, RunLeaseLost)
    run = await _create(engine)
    with pytest.raises(ValueError, match="not 'running'"):
        await record_step_finished(engine, run.id, "fetch", status="running", at=NOW)
    stored = await read_run(engine, run.id)
    assert stored is not None
    assert stored.steps == ()


async def test_a_finished_run_keeps_its_status_and_takes_no_more_steps(engine: AsyncEngine) -> None:
    run = await _create(engine)
    later = NOW + timedelta(minutes=1)
    finished = await finish_run(engine, run.id, "failed", error="step fetch failed", at=later, owner="proc-a")
    assert (finished.status, finished.error, finished.finished_at, finished.updated_at) == (
        "failed",
        "step fetch failed",
        later,
        later,
    )
    assert (finished.owner, finished.lease_until) == (None, None)
    with pytest.raises(RunLeaseLost, match="failed") as caught:
        await finish_run(engine, run.id, "succeeded", at=later)
    assert (caught.value.status, caught.value.holder) == ("failed", None)
    with pytest.raises(RunLeaseLost):
        await record_step_started(engine, run.id, "fetch", at=later)
    with pytest.raises(ValueError, match="final status"):
        await finish_run(engine, (await _create(engine)).id, "running", at=later)
    assert await read_run(engine, run.id) == finished


async def test_runs_are_listed_newest_first_by_status_and_principal(engine: AsyncEngine) -> None:
    alice = RunPrincipal(client_id=f"client-{uuid.uuid4().hex}", subject="alice")
    bob = RunPrincipal(client_id=alice.client_id, subject="bob")
    first = await _create(engine, principal=alice, at=NOW)
    second = await _create(engine, principal=alice, at=NOW + timedelta(seconds=1))
    third = await _create(engine, principal=alice, at=NOW + timedelta(seconds=2))
    theirs = await _create(engine, principal=bob, at=NOW + timedelta(seconds=3))
    await finish_run(engine, second.id, "succeeded", at=NOW + timedelta(seconds=4))

    assert [run.id for run in await list_runs(engine, principal=alice)] == [third.id, second.id, first.id]
    assert [run.id for run in await list_runs(engine, principal=alice, limit=2)] == [third.id, second.id]
    assert [run.id for run in await list_runs(engine, principal=alice, status="running")] == [third.id, first.id]
    assert [run.id for run in await list_runs(engine, principal=bob)] == [theirs.id]
    listed = await list_runs(engine, principal=alice, status="succeeded")
    assert [(run.id, run.status, run.steps) for run in listed] == [(second.id, "succeeded", ())]
    assert await list_runs(engine, principal=RunPrincipal(client_id=alice.client_id)) == []


async def test_two_processes_claiming_at_once_never_take_the_same_run(
    engine: AsyncEngine, other_engine: AsyncEngine
) -> None:
    # Each was left by a process that died: its lease ran out when it was created.
    ours = {(await _create(engine, owner="dead", lease_seconds=0)).id for _ in range(20)}
    claimed: dict[str, list[RunRecord]] = {}
    later = NOW + timedelta(seconds=1)

    async def claim(on: AsyncEngine, owner: str) -> None:
        claimed[owner] = await claim_runs(on, owner, lease_seconds=LEASE, now=later, limit=CLAIM_ALL)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            group.start_soon(claim, engine, "proc-a")
            group.start_soon(claim, other_engine, "proc-b")
    taken_a = {run.id for run in claimed["proc-a"]} & ours
    taken_b = {run.id for run in claimed["proc-b"]} & ours
    assert not taken_a & taken_b
    assert taken_a | taken_b == ours
    for owner, taken in claimed.items():
        assert all(run.owner == owner and run.lease_until == later + timedelta(seconds=LEASE) for run in taken)
    for run_id in ours:
        stored = await read_run(engine, run_id)
        assert stored is not None
        assert stored.owner == ("proc-a" if run_id in taken_a else "proc-b")


async def test_a_run_whose_lease_ran_out_is_claimed_with_its_steps_and_its_old_owner_is_refused(
    engine: AsyncEngine, other_engine: AsyncEngine
) -> None:
    run = await _create(engine, owner="proc-a", lease_seconds=LEASE)
    await record_step_started(engine, run.id, "fetch", 0, at=NOW, owner="proc-a")
    await record_step_finished(engine, run.id, "fetch", 0, status="succeeded", result="done", at=NOW, owner="proc-a")

    early = await claim_runs(
        other_engine, "proc-b", lease_seconds=LEASE, now=NOW + timedelta(seconds=30), limit=CLAIM_ALL
    )
    assert run.id not in {claimed.id for claimed in early}

    expired = NOW + timedelta(seconds=LEASE + 1)
    taken = [
        claimed
        for claimed in await claim_runs(other_engine, "proc-b", lease_seconds=LEASE, now=expired, limit=CLAIM_ALL)
        if claimed.id == run.id
    ]
    assert len(taken) == 1
    assert taken[0].owner == "proc-b"
    step = taken[0].step("fetch", 0)
    assert step is not None
    assert step.result == "done"

    with pytest.raises(RunLeaseLost, match="proc-b") as caught:
        await renew_lease(engine, run.id, "proc-a", lease_seconds=LEASE, now=expired)
    assert (caught.value.run_id, caught.value.holder, caught.value.status) == (run.id, "proc-b", "running")
    with pytest.raises(RunLeaseLost):
        await record_step_started(engine, run.id, "merge", at=expired, owner="proc-a")
    with pytest.raises(RunLeaseLost):
        await record_step_finished(engine, run.id, "merge", status="succeeded", at=expired, owner="proc-a")
    with pytest.raises(RunLeaseLost):
        await finish_run(engine, run.id, "succeeded", at=expired, owner="proc-a")
    stored = await read_run(engine, run.id)
    assert stored is not None
    assert (stored.status, stored.owner, stored.step("merge")) == ("running", "proc-b", None)


async def test_a_lease_is_renewed_only_by_its_owner(engine: AsyncEngine) -> None:
    run = await _create(engine, owner="proc-a")
    later = NOW + timedelta(seconds=30)
    until = await renew_lease(engine, run.id, "proc-a", lease_seconds=LEASE, now=later)
    assert until == later + timedelta(seconds=LEASE)
    stored = await read_run(engine, run.id)
    assert stored is not None
    assert (stored.owner, stored.lease_until) == ("proc-a", until)

    with pytest.raises(RunLeaseLost, match="held by 'proc-a'"):
        await renew_lease(engine, run.id, "proc-b", lease_seconds=LEASE, now=later)
    assert await read_run(engine, run.id) == stored

    # Ran out but not claimed by anyone: still its owner's.
    long_after = NOW + timedelta(hours=1)
    assert await renew_lease(engine, run.id, "proc-a", lease_seconds=LEASE, now=long_after) == long_after + timedelta(
        seconds=LEASE
    )
    with pytest.raises(StoreError, match="no run") as caught:
        await renew_lease(engine, _run_id(), "proc-a", lease_seconds=LEASE, now=later)
    assert not isinstance(caught.value, RunLeaseLost)


async def test_pruning_deletes_runs_finished_before_the_time_with_their_steps(engine: AsyncEngine) -> None:
    # Far from the other tests' times: on the shared PostgreSQL they prune only their own.
    base = datetime(2001, 1, 1, tzinfo=UTC)
    old = await _create(engine, at=base)
    await record_step_started(engine, old.id, "fetch", 3, at=base)
    await finish_run(engine, old.id, "succeeded", at=base + timedelta(minutes=1))
    recent = await _create(engine, at=base)
    await finish_run(engine, recent.id, "cancelled", at=base + timedelta(hours=2))
    running = await _create(engine, at=base - timedelta(days=1))

    assert await prune_runs(engine, base + timedelta(hours=1)) == 1
    assert await read_run(engine, old.id) is None
    assert await read_run(engine, recent.id) is not None
    assert await read_run(engine, running.id) is not None
    assert await prune_runs(engine, base + timedelta(hours=1)) == 0
    # The old run's id is free again, with no step left behind under it.
    again = await _create(engine, old.id, at=base + timedelta(days=1))
    assert again.steps == ()
    for run_id in (running.id, again.id):
        await finish_run(engine, run_id, "cancelled", at=base + timedelta(days=2))


def _schema_differences(connection: Connection) -> list[Any]:
    differences = compare_metadata(MigrationContext.configure(connection), metadata)
    return [item for item in differences if "run" in repr(item)]


async def test_the_migration_creates_the_tables_the_queries_use(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(_schema_differences) == []


def _downgrade_to_0005(connection: Connection) -> set[str]:
    config = Config()
    config.set_main_option("script_location", str(Path(store_package.__file__).with_name("migrations")))
    config.attributes["connection"] = connection
    command.downgrade(config, "0005")
    return set(inspect(connection).get_table_names())


async def test_a_database_from_before_the_journal_is_given_it_and_the_migration_can_be_undone(tmp_path: Path) -> None:
    url = state_url(StateSpec(url=f"sqlite:///{tmp_path / 'state.db'}"), {})
    async with open_store(url) as store, store.engine.begin() as connection:
        tables = await connection.run_sync(_downgrade_to_0005)
    assert not {"runs", "run_steps"} & tables
    assert "downstream_credentials" in tables
    async with open_store(url) as store:
        run = await _create(store.engine)
        assert await read_run(store.engine, run.id) == run
