"""A task outlives ``serve``: started over HTTP, ``serve`` is SIGKILLed mid-run and started again.

The task is a durable run: the restarted ``serve`` resumes it (finished steps are not called
again, the idempotent step in flight is), and answers ``tasks/get`` (and ``tasks/result``)
from the journal, in both protocol eras. The downstream counts its calls.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import pytest
from mcp import Client

from tests.e2e.durable_harness import (
    THREE_MARKS,
    durable_config,
    kill_while_b_runs,
    marks,
    read_the_run,
    three_marks,
)
from tests.e2e.harness import http_aggregator
from tests.e2e.tasks_client import (
    CreatedTask,
    TasksExtension,
    create_legacy_task,
    get_task,
    task_result,
    wait_for_status,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path

pytestmark = pytest.mark.anyio

ERAS = ["2025-11-25", "2026-07-28"]
PAUSE = 4
"""Seconds step b takes: long enough that the first ``tasks/get`` after the restart sees it running."""


@asynccontextmanager
async def _client(url: str, era: str) -> AsyncGenerator[Client, None]:
    legacy = era == "2025-11-25"
    async with Client(
        url, mode="legacy" if legacy else era, extensions=None if legacy else [TasksExtension()]
    ) as client:
        assert client.protocol_version == era
        yield client


async def _start(client: Client, era: str) -> str:
    """Start ``three_marks`` as a task; its id."""
    if era == "2025-11-25":
        created = await create_legacy_task(client, THREE_MARKS, {"pause": PAUSE})
        return created["task"]["taskId"]
    handle = await client.session.call_tool(THREE_MARKS, {"pause": PAUSE}, allow_claimed=True)
    assert isinstance(handle, CreatedTask)
    return handle.task_id


async def _result(client: Client, era: str, task_id: str) -> dict[str, Any]:
    """The finished task's call result, as the era gives it."""
    if era == "2025-11-25":
        return await task_result(client.session, task_id)
    done = await get_task(client.session, task_id)
    assert done["status"] == "completed"
    return done["result"]


async def _kill_mid_run(config: Path, events: Path, state: str, era: str) -> str:
    """Start the task over HTTP, SIGKILL ``serve`` while step b runs; the task's id."""
    started: list[str] = []

    async def start(url: str) -> None:
        async with _client(url, era) as client:
            started.append(await _start(client, era))

    await kill_while_b_runs(config, events, state, start)
    (task_id,) = started
    return task_id


@pytest.mark.parametrize("era", ERAS)
async def test_a_task_completes_after_serve_is_killed_and_started_again(tmp_path: Path, era: str) -> None:
    workflow = three_marks(idempotent=True, output={"last": "${{ steps.c.result.label }}"})
    config, events, state = durable_config(tmp_path, [workflow])
    task_id = await _kill_mid_run(config, events, state, era)
    assert marks(events) == {"a": 1, "b": 1}

    async with http_aggregator(config) as url, _client(url, era) as client:
        assert (await get_task(client.session, task_id))["status"] == "working"  # from the journal
        assert (await wait_for_status(client.session, task_id))["status"] == "completed"
        result = await _result(client, era, task_id)
    assert result["structuredContent"] == {"last": "c"}
    assert result.get("isError") is not True
    assert marks(events) == {"a": 1, "b": 2, "c": 1}  # a once; b, in flight at the kill, again; then c
    run = await read_the_run(state, task_id)
    assert run.status == "succeeded"
    step_b = run.step("b")
    assert step_b is not None
    assert step_b.attempts == 2

    # A process that never ran it answers from the journal alone.
    async with http_aggregator(config) as url, _client(url, era) as client:
        assert (await get_task(client.session, task_id))["status"] == "completed"
        assert (await _result(client, era, task_id))["structuredContent"] == {"last": "c"}
    assert marks(events) == {"a": 1, "b": 2, "c": 1}


async def test_a_task_whose_step_in_flight_is_not_idempotent_fails_as_interrupted_after_a_restart(
    tmp_path: Path,
) -> None:
    config, events, state = durable_config(tmp_path, [three_marks(idempotent=False)])
    task_id = await _kill_mid_run(config, events, state, "2025-11-25")

    async with http_aggregator(config) as url, _client(url, "2025-11-25") as client:
        failed = await wait_for_status(client.session, task_id)
        result = await task_result(client.session, task_id)
    assert failed["status"] == "failed"
    assert f"orchestrator runs resume {task_id} --retry-step b" in failed["statusMessage"]
    assert result["isError"] is True
    assert result["_meta"]["io.github.mcp-orchestrator/run"]["status"] == "interrupted"
    assert marks(events) == {"a": 1, "b": 1}
