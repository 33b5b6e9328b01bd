"""A client written with the TypeScript SDK (``@modelcontextprotocol/sdk`` 1.x) against the aggregator.

``tests/node/ts_client.mjs`` connects over stdio (spawning ``orchestrator serve``) or
streamable HTTP, lists every tool (following ``nextCursor``), calls one and prints JSON. It
runs on the machine's own ``node`` (>= 20), as most users' clients would, and speaks the
2025-11-25 handshake era (the newest the 1.x SDK knows).
"""

from __future__ import annotations

import json
import sys
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from orchestrator import __version__
from tests.interop._peers import COMPOSITE, TS_CLIENT, TS_SDK, VALID_NAME, node, require, run

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.anyio, pytest.mark.npm, pytest.mark.slow]


@pytest.fixture(params=["stdio", "http"])
def target(request: pytest.FixtureRequest, client_config: Path, http_url: str) -> list[str]:
    """ts_client.mjs arguments naming the server: a command to spawn, or the HTTP endpoint."""
    if request.param == "stdio":
        return ["--", sys.executable, "-m", "orchestrator", "serve", "-c", str(client_config)]
    return ["--url", http_url]


async def ts_client(target: list[str], *call: str) -> dict[str, Any]:
    require(TS_SDK)
    done = await run([node(), TS_CLIENT, *call, *target], timeout=60)
    out: dict[str, Any] = done.json()
    assert done.returncode == 0, done.describe()
    assert "error" not in out, done.describe()
    return out


async def test_ts_client_lists_every_tool(target: list[str], expected_tools: set[str]) -> None:
    out = await ts_client(target)
    assert out["server"] == {"name": "mcp-orchestrator", "version": __version__}
    assert out["protocolVersion"] == "2025-11-25"
    names = [tool["name"] for tool in out["tools"]]
    assert set(names) == expected_tools
    assert len(names) == len(set(names))
    assert all(VALID_NAME.match(name) for name in names)
    assert all(tool["description"] and isinstance(tool["inputSchema"], dict) for tool in out["tools"])


async def test_ts_client_calls_an_aggregated_tool(target: list[str]) -> None:
    out = await ts_client(target, "--call", "everything__get-sum", "--args", json.dumps({"a": 2, "b": 40}))
    call = out["call"]
    assert call.get("isError") is not True, call
    assert call["content"] == [{"type": "text", "text": "The sum of 2 and 40 is 42."}]


async def test_ts_client_calls_a_composite_tool(target: list[str]) -> None:
    entity = f"ts-{uuid.uuid4().hex[:8]}"
    out = await ts_client(target, "--call", COMPOSITE, "--args", json.dumps({"name": entity, "a": 1, "b": 2}))
    call = out["call"]
    assert call.get("isError") is not True, call
    assert call["structuredContent"] == {"sum": "The sum of 1 and 2 is 3.", "created": [entity]}
