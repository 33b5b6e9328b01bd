"""Server-initiated requests and notifications pass through the aggregator to the caller."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, cast

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.client.stdio import stdio_client

from tests.e2e.harness import aggregator_params, fault_entry, write_config

if TYPE_CHECKING:
    from pathlib import Path

    from mcp.client.session import ClientRequestContext

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


DOWNSTREAM_ERAS = {"2026-07-28": (), "2025-11-25": ("--legacy-only",)}
"""Fault server options that make the aggregator's auto-mode client speak each era to it."""


@pytest.mark.parametrize("upstream_mode", ["legacy", "auto"])
@pytest.mark.parametrize("downstream_era", list(DOWNSTREAM_ERAS))
async def test_sampling_and_elicitation_are_forwarded_to_a_capable_caller(
    tmp_path: Path, downstream_era: str, upstream_mode: str
) -> None:
    config = write_config(tmp_path, {"f": fault_entry(*DOWNSTREAM_ERAS[downstream_era])})
    asked: list[str] = []

    async def sample(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        asked.append("sampling")
        return await _sample(context, params)

    stderr_path = tmp_path / "aggregator.stderr"
    with stderr_path.open("w") as stderr:
        transport = stdio_client(aggregator_params(config), errlog=stderr)
        async with Client(transport, mode=upstream_mode, sampling_callback=sample, elicitation_callback=_elicit) as c:
            first = await c.session.call_tool("f__sample", {"prompt": "by hand"}, allow_input_required=True)
            if upstream_mode == "legacy":
                # 2025-11-25 caller: a server-to-client request during the call, then the result.
                assert isinstance(first, types.CallToolResult)
                assert asked == ["sampling"]
                assert _text(first) == "sampled: by hand"
            else:
                # 2026-07-28 caller: no server-to-client requests; the call returns a round to answer.
                assert isinstance(first, types.InputRequiredResult)
                assert asked == []
                assert first.request_state
                [(key, request)] = (first.input_requests or {}).items()
                assert isinstance(request, types.CreateMessageRequest)
                answer = await _sample(cast("ClientRequestContext", None), request.params)
                done = await c.session.call_tool(
                    "f__sample", {"prompt": "by hand"}, input_responses={key: answer}, request_state=first.request_state
                )
                assert _text(done) == "sampled: by hand"

            sampled = await c.call_tool("f__sample", {"prompt": "hello"})
            assert not sampled.is_error, _text(sampled)
            assert _text(sampled) == "sampled: hello"
            elicited = await c.call_tool("f__elicit", {"question": "meaning?"})
            assert not elicited.is_error, _text(elicited)
            assert elicited.structured_content == {"action": "accept", "content": {"answer": "forty-two"}}
    log = stderr_path.read_text(encoding="utf-8")
    assert re.search(rf"server 'f' ready: .*protocol {downstream_era}\b", log), log[-2000:]


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
    # trust: auto pins the added tool on sight; under the default it would wait for approval.
    config = write_config(tmp_path, {"f": fault_entry(trust="auto")})
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
