"""The MCP Inspector's CLI and MCP tasks, against ``orchestrator serve`` over HTTP.

The Inspector (``@modelcontextprotocol/inspector`` 2.x) sends its 2026-07-28 ``tools/call``
through its tasks session, which declares the ``io.modelcontextprotocol/tasks`` extension: a
composite call is answered with a task, and the Inspector polls ``tasks/get`` to the result.
Its CLI has no ``tasks/*`` methods of its own (``--method tasks/get`` is refused as
unsupported), and in the 2025-11-25 era it asks for a task only for tools whose
``taskSupport`` is ``required``, so there it sees what a handshake-era client sees: the
``tasks`` capability and the composite's ``execution.taskSupport: "optional"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from mcp import Client

from orchestrator.server import RUN_META_KEY
from tests.e2e.durable_harness import durable_config, workflow_document
from tests.e2e.harness import ProcessLog, aggregator_command, logged_process
from tests.interop.test_inspector import inspector

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path

pytestmark = [pytest.mark.anyio, pytest.mark.npm, pytest.mark.slow]

REPORT = workflow_document(
    "report",
    {
        "a": {"tool": "f.mark", "with": {"label": "a"}},
        "b": {"tool": "f.mark", "needs": ["a"], "with": {"label": "b", "seconds": 1}},
    },
    output={"first": "${{ steps.a.result.label }}", "second": "${{ steps.b.result.label }}"},
)


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory) -> AsyncGenerator[tuple[list[str], ProcessLog], None]:
    """``serve`` over HTTP with the composite ``report``, durable runs on; the Inspector's target arguments, the log."""
    config, _, _ = durable_config(tmp_path_factory.mktemp("tasks"), [REPORT])
    async with logged_process(aggregator_command(config), r"listening on (\S+)") as (match, log):
        yield ["--transport", "http", "--server-url", match.group(1)], log


async def test_the_inspector_sees_the_tasks_capability_and_the_composites_task_support(
    tmp_path: Path, served: tuple[list[str], ProcessLog]
) -> None:
    target, _ = served
    initialized = await inspector(tmp_path, target, "legacy", "--method", "initialize")
    assert initialized["capabilities"]["tasks"] == {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
    for era, expected in (("legacy", {"taskSupport": "optional"}), ("modern", None)):
        tools = {
            tool["name"]: tool for tool in (await inspector(tmp_path, target, era, "--method", "tools/list"))["tools"]
        }
        assert tools["report"].get("execution") == expected  # 2026-07-28 has no execution: the extension says it
        assert tools["f__mark"].get("execution") is None


async def test_the_inspector_polls_a_2026_composite_call_to_its_result_as_a_task(
    tmp_path: Path, served: tuple[list[str], ProcessLog]
) -> None:
    target, log = served
    async with Client(target[-1]) as client:
        synchronous = await client.call_tool("report", {})  # the SDK client declares no extension: no task
    result = await inspector(tmp_path, target, "modern", "--method", "tools/call", "--tool-name", "report")
    assert result.get("isError") is not True, result
    assert result["structuredContent"] == synchronous.structured_content == {"first": "a", "second": "b"}
    run_id = result["_meta"][RUN_META_KEY]["run_id"]
    await log.wait_for(rf"task {run_id} started: 'report' \(2026-07-28 tasks extension\)")
    assert f"task {(synchronous.meta or {})[RUN_META_KEY]['run_id']} started" not in log.text
