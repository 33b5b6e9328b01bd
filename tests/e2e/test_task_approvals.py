"""Approval steps of task-based runs: the question waits in the journal and is answered through the task.

2026-07-28: ``tasks/get`` says ``input_required`` with the approval as an ``elicitation/create``
input request; ``tasks/update`` answers it. 2025-11-25: ``tasks/get`` says ``input_required``;
``tasks/result`` asks the client through elicitation on its own request. Anyone else sharing
the database may answer too: ``orchestrator runs decline``. The downstream counts its calls.
"""

from __future__ import annotations

import subprocess
import sys
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
import pytest
from mcp import Client

from tests.e2e.durable_harness import THREE_MARKS, durable_config, marks, read_the_run, three_marks
from tests.e2e.harness import REPO_ROOT, http_aggregator
from tests.e2e.tasks_client import (
    CreatedTask,
    TasksExtension,
    create_legacy_task,
    get_task,
    task_result,
    update_task,
    wait_for_status,
)

if TYPE_CHECKING:
    from pathlib import Path

    from mcp.client.session import ClientRequestContext

pytestmark = pytest.mark.anyio


def _guarded() -> dict[str, Any]:
    """``three_marks`` whose step b asks first."""
    workflow = three_marks(idempotent=False)
    workflow["steps"]["b"]["approve"] = {"message": "Run b?", "show": "${{ steps.a.result }}"}
    return workflow


class Approver:
    """A client's elicitation callback: approves, and keeps what it was asked."""

    def __init__(self) -> None:
        self.asked: list[types.ElicitRequestFormParams] = []

    async def __call__(self, context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestFormParams)
        self.asked.append(params)
        return types.ElicitResult(action="accept", content={})


async def test_a_2026_task_asks_through_tasks_get_and_is_answered_with_tasks_update(tmp_path: Path) -> None:
    config, events, state = durable_config(tmp_path, [_guarded()])
    async with (
        http_aggregator(config) as url,
        Client(url, mode="2026-07-28", extensions=[TasksExtension()]) as client,
    ):
        handle = await client.session.call_tool(THREE_MARKS, {"pause": 0}, allow_claimed=True)
        assert isinstance(handle, CreatedTask)
        waiting = await wait_for_status(client.session, handle.task_id, ["input_required"])
        assert list(waiting["inputRequests"]) == ["approval:b"]
        question = waiting["inputRequests"]["approval:b"]
        assert question["method"] == "elicitation/create"
        assert question["params"]["message"].startswith("Run b?")
        assert '"label": "a"' in question["params"]["message"]  # approve.show, for the user to see
        assert marks(events) == {"a": 1}

        await update_task(client.session, handle.task_id, {"approval:x": {"action": "accept"}})  # ignored
        assert (await get_task(client.session, handle.task_id))["status"] == "input_required"
        await update_task(client.session, handle.task_id, {"approval:b": {"action": "accept", "content": {}}})
        done = await wait_for_status(client.session, handle.task_id)
    assert done["status"] == "completed"
    assert done["result"]["content"] == [{"type": "text", "text": '"c"'}]
    assert marks(events) == {"a": 1, "b": 1, "c": 1}
    step_b = (await read_the_run(state, handle.task_id)).step("b")
    assert step_b is not None
    assert step_b.attempts == 1


async def test_a_2025_task_asks_through_tasks_result_with_an_elicitation_tied_to_the_task(tmp_path: Path) -> None:
    config, events, _ = durable_config(tmp_path, [_guarded()])
    approver = Approver()
    async with http_aggregator(config) as url, Client(url, mode="legacy", elicitation_callback=approver) as client:
        created = await create_legacy_task(client, THREE_MARKS, {"pause": 0})
        task_id = created["task"]["taskId"]
        await wait_for_status(client.session, task_id, ["input_required"])
        result = await task_result(client.session, task_id)
        assert (await get_task(client.session, task_id))["status"] == "completed"
    assert result["content"] == [{"type": "text", "text": '"c"'}]
    (asked,) = approver.asked
    assert asked.message.startswith("Run b?")
    assert asked.meta is not None
    assert asked.meta["io.modelcontextprotocol/related-task"] == {"taskId": task_id}
    assert marks(events) == {"a": 1, "b": 1, "c": 1}


async def test_a_tasks_approval_may_be_declined_from_the_command_line(tmp_path: Path) -> None:
    config, events, state = durable_config(tmp_path, [_guarded()])
    async with http_aggregator(config) as url, Client(url, mode="legacy") as client:
        created = await create_legacy_task(client, THREE_MARKS, {"pause": 0})
        task_id = created["task"]["taskId"]
        await wait_for_status(client.session, task_id, ["input_required"])
        cli = [sys.executable, "-m", "orchestrator", "runs", "decline", task_id[:10], "-c", str(config)]
        run = partial(subprocess.run, cli, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)
        declined = await anyio.to_thread.run_sync(run)
        assert declined.returncode == 0, declined.stderr
        assert "declined step b" in declined.stdout
        done = await wait_for_status(client.session, task_id)
    assert done["status"] == "failed"
    assert "declined step 'b'" in done["statusMessage"]
    assert marks(events) == {"a": 1}
    assert (await read_the_run(state, task_id)).status == "declined"
