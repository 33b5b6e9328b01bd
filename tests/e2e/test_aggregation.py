"""The aggregator as a real stdio subprocess, in front of real stdio servers."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import anyio
import mcp_types as types
import pytest
from mcp import Client

from tests.e2e.harness import aggregator_params, fault_entry, write_config

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

VALID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
LONG = "a_tool_name_that_is_far_too_long_to_fit_once_the_server_prefix_is_added_to_it"


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def test_merged_listing_is_the_union_and_calls_route_to_the_right_server(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "alpha": fault_entry("--name", "alpha", "--tools", f"search,{LONG},odd.name/x"),
            "beta": fault_entry("--name", "beta", "--tools", "search"),
            "gamma": fault_entry("--name", "gamma", "--tools", "search", prefix=False),
        },
    )
    async with Client(aggregator_params(config)) as client:
        tools = (await client.list_tools()).tools
        names = [tool.name for tool in tools]
        assert all(VALID.match(name) for name in names), names
        assert len(names) == len(set(names))
        # Three servers of 15 built-in tools each, plus the extra ones.
        assert len(names) == 15 * 3 + 3 + 1 + 1
        assert {"alpha__search", "beta__search", "search", "echo", "alpha__echo", "beta__echo"} <= set(names)
        long_names = [n for n in names if n.startswith("alpha__a_tool_name")]
        assert len(long_names) == 1
        assert len(long_names[0]) == 64
        assert "alpha__odd_name_x" in names

        for server in ("alpha", "beta"):
            result = await client.call_tool(f"{server}__pid", {})
            assert not result.is_error
        pids = {
            (await client.call_tool(name, {})).structured_content["pid"]  # type: ignore[index]
            for name in ("alpha__pid", "beta__pid", "pid")
        }
        assert len(pids) == 3, "each exposed name reaches its own server process"
        echoed = await client.call_tool(long_names[0], {"x": 1})
        assert not echoed.is_error
        assert '"x": 1' in _text(echoed) or '"x":1' in _text(echoed)


async def test_invalid_arguments_are_a_tool_error_and_never_reach_the_server(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"f": fault_entry()})
    async with Client(aggregator_params(config)) as client:
        result = await client.call_tool("f__add", {"a": "one"})
        assert result.is_error
        text = _text(result)
        assert "invalid arguments" in text
        assert "'b' is a required property" in text


async def test_unknown_tool_is_a_protocol_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"f": fault_entry()})
    async with Client(aggregator_params(config)) as client:
        with pytest.raises(Exception, match="unknown tool"):
            await client.call_tool("nope", {})


async def test_a_server_that_fails_at_start_hides_nothing_and_joins_when_it_comes_up(tmp_path: Path) -> None:
    flag = tmp_path / "down"
    flag.write_text("x")
    config = write_config(
        tmp_path,
        {"good": fault_entry(), "late": fault_entry("--fail-start-file", str(flag))},
    )
    send_change, changes = anyio.create_memory_object_stream[None](100)

    async def on_message(message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            await send_change.send(None)

    async with Client(aggregator_params(config), mode="legacy", message_handler=on_message) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "good__echo" in names
        assert not any(name.startswith("late__") for name in names)
        while True:  # forget notifications that came before the server could start
            try:
                changes.receive_nowait()
            except anyio.WouldBlock:
                break
        flag.unlink()
        with anyio.fail_after(20):
            while "late__echo" not in names:
                # Each re-list follows a list_changed notification, never a blind poll.
                await changes.receive()
                names = {tool.name for tool in (await client.list_tools()).tools}
        result = await client.call_tool("late__echo", {"text": "back"})
        assert _text(result) == "back"
