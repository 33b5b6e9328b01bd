"""Server-initiated requests and notifications pass through the aggregator to the caller."""

from __future__ import annotations

from pathlib import Path

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.session import ClientRequestContext

from tests.e2e.harness import aggregator_params, fault_entry, write_config

pytestmark = pytest.mark.anyio


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def _sample(context: ClientRequestContext, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    first = params.messages[0].content
    prompt = first.text if isinstance(first, types.TextContent) else "?"
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text=f"sampled: {prompt}"), model="test-model"
    )


async def _elicit(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"answer": "forty-two"})


@pytest.mark.parametrize("downstream_mode", ["modern", "legacy"])
async def test_sampling_and_elicitation_are_forwarded_to_a_capable_caller(tmp_path: Path, downstream_mode: str) -> None:
    # The downstream era is whatever the fault server negotiates with us: the aggregator's
    # client prefers 2026-07-28; pinning the fake is not possible, so both rounds run through
    # the same downstream and the parameter only documents intent for the reader.
    config = write_config(tmp_path, {"f": fault_entry()})
    async with Client(
        aggregator_params(config), mode="legacy", sampling_callback=_sample, elicitation_callback=_elicit
    ) as client:
        sampled = await client.call_tool("f__sample", {"prompt": "hello"})
        assert not sampled.is_error, _text(sampled)
        assert "sampled: hello" in _text(sampled)
        elicited = await client.call_tool("f__elicit", {"question": "meaning?"})
        assert not elicited.is_error, _text(elicited)
        assert elicited.structured_content == {"action": "accept", "content": {"answer": "forty-two"}}


@pytest.mark.parametrize("upstream_mode", ["auto", "legacy"])
async def test_sampling_without_a_capable_caller_is_a_clear_error(tmp_path: Path, upstream_mode: str) -> None:
    config = write_config(tmp_path, {"f": fault_entry()})
    async with Client(aggregator_params(config), mode=upstream_mode) as client:
        result = await client.call_tool("f__sample", {"prompt": "hello"})
        assert result.is_error
        assert "does not support" in _text(result)


async def test_downstream_log_messages_reach_the_caller(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"f": fault_entry()})
    received: list[types.LoggingMessageNotificationParams] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        received.append(params)

    async with Client(aggregator_params(config), mode="legacy", logging_callback=on_log) as client:
        result = await client.call_tool("f__log", {"level": "warning", "message": "disk nearly full"})
        assert not result.is_error
    assert any(p.data == "disk nearly full" and p.level == "warning" for p in received)


async def test_downstream_tool_list_change_reaches_a_listening_2026_caller(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"f": fault_entry()})
    async with Client(aggregator_params(config)) as client:
        assert "f__fresh" not in {tool.name for tool in (await client.list_tools()).tools}
        async with client.listen(tools_list_changed=True) as subscription:
            result = await client.call_tool("f__add_tool", {"name": "fresh"})
            assert not result.is_error
            with anyio.fail_after(10):
                async for _event in subscription:
                    names = {tool.name for tool in (await client.list_tools(cache_mode="refresh")).tools}
                    if "f__fresh" in names:
                        break
        echoed = await client.call_tool("f__fresh", {"x": 1})
        assert not echoed.is_error
