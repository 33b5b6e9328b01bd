"""MCP tasks over HTTP with the SDK client, in both protocol eras, against ``orchestrator serve``.

A composite may run as a task: 2025-11-25 clients ask for one (``params.task``) and get
``tasks/get``, ``tasks/result``, ``tasks/list`` and ``tasks/cancel``; 2026-07-28 clients that
declare the ``io.modelcontextprotocol/tasks`` extension get a task for every composite call,
and ``tasks/get``, ``tasks/update`` and ``tasks/cancel``. A task's result is what the
synchronous call returns; a cancelled task's downstream call is cancelled; a task is its
principal's alone.
"""

from __future__ import annotations

import re
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import mcp_types as types
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from orchestrator.server import ERROR_META_KEY, RUN_META_KEY
from tests.e2e.durable_harness import durable_config, marks, read_the_run, workflow_document
from tests.e2e.harness import audit_records, events_seen, http_aggregator
from tests.e2e.tasks_client import (
    CreatedTask,
    TasksExtension,
    cancel_task,
    create_legacy_task,
    get_task,
    list_tasks,
    task_result,
    update_task,
    wait_for_status,
)

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path

pytestmark = pytest.mark.anyio

RELATED_TASK = "io.modelcontextprotocol/related-task"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
ALICE, BOB = "alice-token-canary-41c", "bob-token-canary-c02"

REPORT = workflow_document(
    "report",
    {
        "a": {"tool": "f.mark", "with": {"label": "a"}},
        "b": {"tool": "f.mark", "needs": ["a"], "with": {"label": "b", "seconds": "${{ input.pause }}"}},
    },
    input_schema={"type": "object", "properties": {"pause": {"type": "number", "default": 0}}},
    output={"first": "${{ steps.a.result.label }}", "second": "${{ steps.b.result.label }}"},
)
HANG = workflow_document(
    "mark_then_hang",
    {"a": {"tool": "f.mark", "with": {"label": "before-hang"}}, "b": {"tool": "f.hang", "needs": ["a"]}},
)
QUICK = workflow_document("quick", {"a": {"tool": "f.mark", "with": {"label": "quick"}}})


def _text(result: types.CallToolResult) -> list[str]:
    return [block.text for block in result.content if isinstance(block, types.TextContent)]


def _wire_text(result: dict[str, Any]) -> list[str]:
    return [block["text"] for block in result["content"] if block["type"] == "text"]


async def _refusal(call: Any) -> MCPError:
    with pytest.raises(MCPError) as refused:
        await call
    return refused.value


async def test_a_2025_client_polls_a_task_to_the_result_the_call_returns(tmp_path: Path) -> None:
    config, events, state = durable_config(tmp_path, [REPORT, HANG])
    async with http_aggregator(config) as url, Client(url, mode="legacy") as client:
        tasks = client.server_capabilities.tasks
        assert tasks is not None
        assert tasks.list is not None
        assert tasks.cancel is not None
        assert tasks.requests is not None
        assert tasks.requests.tools is not None
        assert tasks.requests.tools.call is not None
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert listed["report"].execution == types.ToolExecution(task_support="optional")
        assert listed["f__mark"].execution is None  # downstream tools stay synchronous

        synchronous = await client.call_tool("report", {})
        created = await create_legacy_task(client, "report", {}, ttl=5_000)
        task = created["task"]
        assert task["status"] == "working"
        assert ISO_UTC.match(task["createdAt"])
        assert ISO_UTC.match(task["lastUpdatedAt"])
        assert task["pollInterval"] > 0
        assert task["ttl"] == 7 * 86_400_000  # kept as long as its run (runs.retention), not the 5 s asked
        task_id = task["taskId"]
        assert re.fullmatch(r"[0-9a-f]{32}", task_id)

        done = await wait_for_status(client.session, task_id)
        assert done["status"] == "completed"
        assert done["taskId"] == task_id
        assert done["createdAt"] == task["createdAt"]
        result = await task_result(client.session, task_id)
        assert result["structuredContent"] == synchronous.structured_content == {"first": "a", "second": "b"}
        assert _wire_text(result) == _text(synchronous)
        assert result.get("isError") is not True
        assert result["_meta"][RELATED_TASK] == {"taskId": task_id}
        assert result["_meta"][RUN_META_KEY]["run_id"] == task_id
        assert (await read_the_run(state, task_id)).status == "succeeded"

        # Every run is a task, the synchronous call's too; the newest first.
        synchronous_run = (synchronous.meta or {})[RUN_META_KEY]["run_id"]
        listing = await list_tasks(client.session)
        assert [listed_task["taskId"] for listed_task in listing["tasks"]] == [task_id, synchronous_run]
        assert "nextCursor" not in listing
        assert listing["tasks"][0]["status"] == "completed"
        assert (await _refusal(list_tasks(client.session, "not-a-cursor"))).code == types.INVALID_PARAMS

        over = await _refusal(cancel_task(client.session, task_id))
        assert over.code == types.INVALID_PARAMS
        assert "terminal status 'completed'" in over.message
        unknown = "0" * 32
        for call in (get_task(client.session, unknown), task_result(client.session, unknown)):
            assert (await _refusal(call)).code == types.INVALID_PARAMS
        not_a_task = await _refusal(create_legacy_task(client, "f__mark", {"label": "x"}))
        assert not_a_task.code == types.METHOD_NOT_FOUND
        assert (await _refusal(create_legacy_task(client, "no_such_tool", {}))).code == types.INVALID_PARAMS
        assert (await _refusal(create_legacy_task(client, "report", {"pause": "x"}))).code == types.INVALID_PARAMS
        # tasks/update is the 2026-07-28 extension's
        assert (await _refusal(update_task(client.session, task_id, {}))).code == types.METHOD_NOT_FOUND
    assert marks(events) == {"a": 2, "b": 2}  # the synchronous call and the task; nothing for the refusals


async def test_a_2025_client_cancels_a_running_task_and_its_downstream_call_is_cancelled(tmp_path: Path) -> None:
    config, events, state = durable_config(tmp_path, [HANG])
    async with http_aggregator(config) as url, Client(url, mode="legacy") as client:
        task_id = (await create_legacy_task(client, "mark_then_hang", {}))["task"]["taskId"]
        await events_seen(events, "started hang")
        assert (await get_task(client.session, task_id))["status"] == "working"

        cancelled = await cancel_task(client.session, task_id)
        assert cancelled["status"] == "cancelled"
        assert cancelled["statusMessage"] == "cancelled by tasks/cancel"
        assert (await read_the_run(state, task_id)).status == "cancelled"  # before the reply, as the spec says
        await events_seen(events, "cancelled hang")
        assert (await get_task(client.session, task_id))["status"] == "cancelled"
        result = await task_result(client.session, task_id)
        assert result["isError"] is True
        assert "cancelled by tasks/cancel" in _wire_text(result)[0]
        assert result["_meta"][ERROR_META_KEY]["run_id"] == task_id
        again = await _refusal(cancel_task(client.session, task_id))
        assert again.code == types.INVALID_PARAMS
        assert "terminal status 'cancelled'" in again.message


async def test_a_2026_client_with_the_extension_gets_a_task_for_a_composite_call(tmp_path: Path) -> None:
    config, events, state = durable_config(tmp_path, [REPORT, HANG])
    async with http_aggregator(config) as url:
        async with Client(url) as plain:
            assert plain.protocol_version == "2026-07-28"
            synchronous = await plain.call_tool("report", {})  # no extension declared: no task
            report = next(tool for tool in (await plain.list_tools()).tools if tool.name == "report")
            assert report.execution is None  # 2026-07-28 has no execution: the extension says it
            no_extension = await _refusal(get_task(plain.session, "0" * 32))
            assert no_extension.code == types.MISSING_REQUIRED_CLIENT_CAPABILITY

        async with Client(url, extensions=[TasksExtension()]) as client:
            discovered = client.server_capabilities.extensions or {}
            assert "io.modelcontextprotocol/tasks" in discovered
            created = await client.session.call_tool("report", {}, allow_claimed=True)
            assert isinstance(created, CreatedTask)
            assert created.status == "working"
            assert ISO_UTC.match(created.created_at)
            assert created.ttl_ms == 7 * 86_400_000
            task_id = created.task_id

            done = await wait_for_status(client.session, task_id)
            assert done["status"] == "completed"
            assert done["resultType"] == "complete"
            assert done["result"]["structuredContent"] == synchronous.structured_content
            assert _wire_text(done["result"]) == _text(synchronous)
            assert done["result"]["_meta"][RUN_META_KEY]["run_id"] == task_id

            # The SDK's call_tool follows the task to its result through the extension's claim.
            followed = await client.call_tool("report", {"pause": 0})
            assert followed.structured_content == synchronous.structured_content
            assert not (await client.call_tool("f__mark", {"label": "plain"})).is_error  # a downstream tool: no task

            acknowledged = await update_task(client.session, task_id, {"nothing": {"action": "accept"}})
            assert acknowledged["resultType"] == "complete"
            assert set(acknowledged) <= {"resultType", "_meta"}
            for call in (list_tasks(client.session), task_result(client.session, task_id)):
                assert (await _refusal(call)).code == types.METHOD_NOT_FOUND
            assert (await _refusal(get_task(client.session, "0" * 32))).code == types.INVALID_PARAMS
            invalid = await client.session.call_tool("report", {"pause": "x"}, allow_claimed=True)
            assert isinstance(invalid, types.CallToolResult)
            assert invalid.is_error

            hanging = await client.session.call_tool("mark_then_hang", {}, allow_claimed=True)
            assert isinstance(hanging, CreatedTask)
            hang_id = hanging.task_id
            await events_seen(events, "started hang")
            assert (await cancel_task(client.session, hang_id))["resultType"] == "complete"
            await events_seen(events, "cancelled hang")
            cancelled = await wait_for_status(client.session, hang_id, ("cancelled",))
            assert cancelled["statusMessage"] == "cancelled by tasks/cancel"
            assert "result" not in cancelled
            assert (await cancel_task(client.session, hang_id))["resultType"] == "complete"  # over: still acknowledged
    assert (await read_the_run(state, hang_id)).status == "cancelled"
    assert marks(events) == {"a": 3, "b": 3, "plain": 1, "before-hang": 1}


@asynccontextmanager
async def _client(url: str, token: str, *, modern: bool = False) -> AsyncGenerator[Client, None]:
    """A 2025-11-25 client, or a 2026-07-28 one with the tasks extension, sending ``token``."""
    async with (
        create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http_client,
        Client(
            streamable_http_client(url, http_client=http_client),
            mode="auto" if modern else "legacy",
            extensions=[TasksExtension()] if modern else None,
        ) as client,
    ):
        yield client


async def test_a_task_is_invisible_to_another_principal_and_its_start_is_limited_and_audited(
    tmp_path: Path,
) -> None:
    auth = {"tokens": {"alice": {"env": "ALICE_TOKEN"}, "bob": {"env": "BOB_TOKEN"}}}
    limits = {"tools": {"quick": {"rate": 0.001, "burst": 1}}}
    config, _, _ = durable_config(tmp_path, [REPORT, QUICK], serve={"auth": auth, "rate_limits": limits})
    env = {"ALICE_TOKEN": ALICE, "BOB_TOKEN": BOB}
    async with http_aggregator(config, env=env) as url:
        async with _client(url, ALICE) as alice:
            task_id = (await create_legacy_task(alice, "report", {}))["task"]["taskId"]
            assert (await wait_for_status(alice.session, task_id))["status"] == "completed"
            assert [task["taskId"] for task in (await list_tasks(alice.session))["tasks"]] == [task_id]
            assert (await create_legacy_task(alice, "quick", {}))["task"]["status"] == "working"
            limited = await _refusal(create_legacy_task(alice, "quick", {}))
            assert limited.data["type"] == "RateLimitedError"
            assert "retry in" in limited.message

        async with _client(url, BOB) as bob:
            not_found: list[str] = []
            for call in (get_task(bob.session, task_id), task_result(bob.session, task_id)):
                not_found.append((await _refusal(call)).message)
            not_found.append((await _refusal(cancel_task(bob.session, task_id))).message)
            unknown = (await _refusal(get_task(bob.session, "f" * 32))).message
            # Exactly as for an id that does not exist: no oracle.
            assert [message.replace(task_id, "ID") for message in not_found] == [unknown.replace("f" * 32, "ID")] * 3
            assert (await list_tasks(bob.session))["tasks"] == []
        async with _client(url, BOB, modern=True) as bob_modern:
            assert bob_modern.protocol_version == "2026-07-28"
            for call in (get_task(bob_modern.session, task_id), cancel_task(bob_modern.session, task_id)):
                assert (await _refusal(call)).code == types.INVALID_PARAMS
            assert (await _refusal(update_task(bob_modern.session, task_id, {}))).code == types.INVALID_PARAMS

        async with _client(url, ALICE) as alice:
            assert (await get_task(alice.session, task_id))["status"] == "completed"  # still there for its owner

    records = [
        (record["client_id"], record["tool"], record["step_id"] or "", record["outcome"], record["run_id"])
        for record in audit_records(config)
    ]
    assert ("token:alice", "report", "", "ok", task_id) in records  # the task's start
    assert ("token:alice", "report", "a", "ok", task_id) in records  # and each step of its run
    assert sum(1 for record in records if record[1] == "quick" and record[3] == "RateLimitedError") == 1
    assert not any(record[0] == "token:bob" for record in records)
