"""Retention of the run journal: finished runs past ``runs.retention`` go, on start and then periodically."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import anyio
import pytest
from sqlalchemy import text

from orchestrator.config import StateSpec
from orchestrator.runs import keep_pruning, prune_finished_runs
from orchestrator.store import RunPrincipal, create_run, finish_run, open_store, read_run, state_url
from orchestrator.store._schema import run_steps

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from orchestrator.store import Store

pytestmark = pytest.mark.anyio

# Before every other test's times: on the shared PostgreSQL this test prunes only its own runs
# (and removes them all when done, so no other test's pruning meets them).
NOW = datetime(1995, 3, 3, 12, 0, tzinfo=UTC)
DAY = 86400.0


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    url = f"sqlite:///{tmp_path / 'state.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    async with open_store(state_url(StateSpec(url=url), {})) as opened:
        yield opened


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(state_url(StateSpec(url=f"sqlite:///{tmp_path / 'state.db'}"), {})) as opened:
        yield opened


async def _run(store: Store, *, created: datetime, finished: datetime | None) -> str:
    run_id = uuid.uuid4().hex
    await create_run(
        store.engine,
        run_id,
        workflow="triage",
        plan_hash="a" * 64,
        workflow_snapshot="name: triage\n",
        input={},
        principal=RunPrincipal(client_id=None),
        catalogue_version=None,
        at=created,
        owner="proc-a",
        lease_seconds=30,
    )
    if finished is not None:
        await finish_run(store.engine, run_id, "succeeded", at=finished)
    return run_id


async def _exists(store: Store, run_id: str) -> bool:
    return await read_run(store.engine, run_id) is not None


async def test_runs_finished_before_the_retention_go_and_the_others_stay(store: Store) -> None:
    old = await _run(store, created=NOW - timedelta(days=9), finished=NOW - timedelta(days=8))
    recent = await _run(store, created=NOW - timedelta(days=9), finished=NOW - timedelta(days=6))
    running = await _run(store, created=NOW - timedelta(days=30), finished=None)

    assert await prune_finished_runs(store, 7 * DAY, now=NOW) == 1

    assert [await _exists(store, run_id) for run_id in (old, recent, running)] == [False, True, True]
    assert await prune_finished_runs(store, 7 * DAY, now=NOW) == 0
    await finish_run(store.engine, running, "cancelled", at=NOW)
    assert await prune_finished_runs(store, 0, now=NOW + timedelta(seconds=1)) == 2


async def test_pruning_goes_on_through_database_failures_and_logs_each_kind_once(
    sqlite_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    old = await _run(sqlite_store, created=NOW - timedelta(days=9), finished=NOW - timedelta(days=8))
    async with sqlite_store.engine.begin() as connection:
        await connection.execute(text("DROP TABLE run_steps"))
    rounds = 0
    healed_after: int | None = None
    failures: list[str] = []
    kept: list[str] = []
    failing_rounds_done, healed_round_done = anyio.Event(), anyio.Event()

    def clock() -> datetime:
        # Called once as each round starts, so when round N starts, round N - 1 is over.
        nonlocal rounds
        rounds += 1
        if rounds == 4:
            failing_rounds_done.set()
        if healed_after is not None and rounds >= healed_after + 2:
            healed_round_done.set()  # a whole round ran on the healed table
        return NOW

    caplog.set_level(logging.INFO, logger="orchestrator.runs")
    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: keep_pruning(sqlite_store, 7 * DAY, every=0.01, clock=clock))
            await failing_rounds_done.wait()
            failures += [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
            async with sqlite_store.engine.begin() as connection:
                kept += (await connection.execute(text("SELECT id FROM runs"))).scalars()
                await connection.run_sync(lambda sync: run_steps.create(sync))
            healed_after = rounds
            await healed_round_done.wait()
            group.cancel_scope.cancel()

    assert kept == [old]  # a failed round deletes nothing
    assert len(failures) == 1
    assert "pruning finished runs failed" in failures[0]
    assert "cannot prune runs: OperationalError" in failures[0]
    messages = [record.getMessage() for record in caplog.records]
    assert "run journal: pruning finished runs works again" in messages
    assert "run journal: pruned 1 run(s) finished more than 7 days, 0:00:00 ago" in messages
    assert not await _exists(sqlite_store, old)
