"""A call that arrives before the downstream servers are up waits for them, as a listing does."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Literal

import mcp_types as types
import pytest
from mcp import Client

from tests.e2e.harness import aggregator_params, fault_entry, http_aggregator, write_config

if TYPE_CHECKING:
    from pathlib import Path

    from mcp.client.session import ClientRequestContext

pytestmark = pytest.mark.anyio


async def _sample(context: ClientRequestContext, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text="x"), model="m")


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


@pytest.mark.parametrize(
    ("transport", "mode", "capable"),
    [
        # A 2026-07-28 client that can answer input rounds took another path, which did not wait.
        ("stdio", "auto", True),
        ("http", "auto", True),
        ("stdio", "legacy", False),
        ("http", "auto", False),
    ],
    ids=["stdio-2026-sampling", "http-2026-sampling", "stdio-2025-plain", "http-2026-plain"],
)
async def test_the_first_call_right_after_connecting_waits_for_a_slow_server(
    tmp_path: Path, transport: str, mode: Literal["auto", "legacy"], capable: bool
) -> None:
    # The server takes 2 s more than usual to start (an `npx` fetching its package, say); the client calls at once.
    config = write_config(tmp_path, {"slow": fault_entry("--start-delay", "2")})
    sampling = _sample if capable else None
    started = time.monotonic()
    if transport == "stdio":
        async with Client(aggregator_params(config), mode=mode, sampling_callback=sampling) as client:
            result = await client.call_tool("slow__echo", {"text": "first"})
    else:
        async with http_aggregator(config) as url, Client(url, mode=mode, sampling_callback=sampling) as client:
            started = time.monotonic()
            result = await client.call_tool("slow__echo", {"text": "first"})
    assert not result.is_error, _text(result)
    assert _text(result) == "first"
    assert time.monotonic() - started >= 1.5, "the call did not have to wait: the race was not exercised"


async def test_an_unknown_tool_is_still_unknown_once_start_up_is_over(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"f": fault_entry()})
    async with Client(aggregator_params(config)) as client:
        with pytest.raises(Exception, match="unknown tool"):
            await client.call_tool("f__nope", {})
