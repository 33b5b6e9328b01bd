"""tools/list and tools/call through the orchestrator, served in process over memory streams."""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import MCPError

from orchestrator.server import RUN_META_KEY
from tests.fakes.inprocess import ToolServer
from tests.server.helpers import ProgressSeen, connect, serving, text_of

pytestmark = pytest.mark.anyio

LIMIT = 5.0
"""Bound of every test; each takes a few tens of milliseconds."""

SUM_AND_SAY: dict[str, Any] = {
    "version": 1,
    "name": "sum_and_say",
    "description": "Add on one server, say the sum on the other.",
    "input": {"type": "object", "required": ["x"], "properties": {"x": {"type": "integer"}}},
    "steps": {
        "sum": {"tool": "a.add", "with": {"a": "${{ input.x }}", "b": 2}},
        "say": {"needs": ["sum"], "tool": "b.echo", "with": {"text": "the sum is ${{ steps.sum.result.result }}"}},
    },
    "output": {"value": {"said": "${{ steps.say.result.result }}"}},
}


async def test_tools_list_merges_every_servers_tools_under_their_prefixes_next_to_the_composites() -> None:
    servers = {"a": ToolServer("alpha"), "b": ToolServer("beta")}
    with anyio.fail_after(LIMIT):
        async with serving(servers, workflows=[SUM_AND_SAY]) as server, connect(server) as client:
            names = [tool.name for tool in (await client.list_tools()).tools]
    own = ["add", "echo", "fail", "hang", "progress", "refuse"]
    assert sorted(names) == sorted([*(f"a__{n}" for n in own), *(f"b__{n}" for n in own), "sum_and_say"])


async def test_a_call_goes_to_the_server_its_prefix_names_and_its_result_comes_back() -> None:
    servers = {"a": ToolServer("alpha"), "b": ToolServer("beta")}
    with anyio.fail_after(LIMIT):
        async with serving(servers) as server, connect(server) as client:
            result = await client.call_tool("b__add", {"a": 2, "b": 3})
    assert not result.is_error, text_of(result)
    assert result.structured_content == {"result": 5}
    assert text_of(result) == "5"
    assert servers["b"].calls == [("add", {"a": 2, "b": 3})]
    assert servers["a"].calls == []
    # The caller talks to the orchestrator: the downstream's own server stamp is not passed on.
    assert result.meta is not None
    assert result.meta[types.SERVER_INFO_META_KEY]["name"] == "mcp-orchestrator"


async def test_a_composite_runs_its_steps_across_servers_reports_each_step_and_returns_the_output() -> None:
    servers = {"a": ToolServer("alpha"), "b": ToolServer("beta")}
    progress = ProgressSeen()
    with anyio.fail_after(LIMIT):
        async with serving(servers, workflows=[SUM_AND_SAY]) as server, connect(server) as client:
            result = await client.call_tool("sum_and_say", {"x": 40}, progress_callback=progress)
            await progress.reach(2)
    assert not result.is_error, text_of(result)
    assert result.structured_content == {"said": "the sum is 42"}
    assert servers["a"].calls == [("add", {"a": 40, "b": 2})]
    assert servers["b"].calls == [("echo", {"text": "the sum is 42"})]
    assert sorted(progress.reports) == [(1, 2, "sum: succeeded"), (2, 2, "say: succeeded")]
    assert result.meta is not None
    assert result.meta[RUN_META_KEY]["run_id"]


async def test_an_unknown_tool_is_a_json_rpc_error_that_suggests_the_closest_name() -> None:
    with anyio.fail_after(LIMIT):
        async with serving({"a": ToolServer()}) as server, connect(server) as client:
            with pytest.raises(MCPError) as caught:
                await client.call_tool("a__ecoh", {"text": "hi"})
    assert caught.value.code == types.INVALID_PARAMS
    assert "unknown tool 'a__ecoh'" in caught.value.message
    assert "'a__echo'" in caught.value.message


async def test_invalid_arguments_are_an_error_result_listing_each_problem_and_never_reach_the_server() -> None:
    servers = {"a": ToolServer()}
    with anyio.fail_after(LIMIT):
        async with serving(servers) as server, connect(server) as client:
            result = await client.call_tool("a__add", {"a": "two"})
    assert result.is_error
    text = text_of(result)
    assert "invalid arguments for tool 'a__add'" in text
    assert "'two' is not of type 'integer'" in text
    assert "'b' is a required property" in text
    assert servers["a"].calls == []


async def test_a_downstream_error_result_reaches_the_caller_as_an_error_result() -> None:
    with anyio.fail_after(LIMIT):
        async with serving({"a": ToolServer()}) as server, connect(server) as client:
            result = await client.call_tool("a__fail", {"message": "disk on fire"})
            after = await client.call_tool("a__echo", {"text": "still here"})
    assert result.is_error
    assert "disk on fire" in text_of(result)
    assert text_of(after) == "still here"


async def test_a_downstream_json_rpc_error_becomes_an_error_result_naming_the_server() -> None:
    with anyio.fail_after(LIMIT):
        async with serving({"a": ToolServer()}) as server, connect(server) as client:
            result = await client.call_tool("a__refuse", {"message": "not today"})
    assert result.is_error
    assert "server 'a'" in text_of(result)
    assert "not today" in text_of(result)


async def test_a_call_past_its_servers_timeout_is_an_error_result_and_the_server_sees_it_cancelled() -> None:
    servers = {"a": ToolServer()}
    with anyio.fail_after(LIMIT):
        async with serving(servers, timeout=0.1) as server, connect(server) as client:
            result = await client.call_tool("a__hang", {})
            await servers["a"].hang_cancelled.wait()
    assert result.is_error
    assert "server 'a'" in text_of(result)
    assert "timed out after 0.1s" in text_of(result)
