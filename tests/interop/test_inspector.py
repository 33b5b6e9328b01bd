"""The MCP Inspector's CLI mode against ``orchestrator serve``, over stdio and over HTTP.

The Inspector (``@modelcontextprotocol/inspector`` 2.x, TypeScript client SDK 2.x, run on the
Node 22 from tests/node) lists every aggregated and composite tool and calls one of each,
in both protocol eras: ``--protocol-era legacy`` (the 2025-11-25 handshake) and ``modern``
(2026-07-28, stateless). Over stdio the Inspector starts the aggregator itself, as a desktop
client would. The catalogue (conftest ``client_config``): server-everything, server-memory and
the composite ``remember_sum`` chaining them.
"""

from __future__ import annotations

import sys
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.harness import REPO_ROOT
from tests.interop._peers import COMPOSITE, INSPECTOR, NODE22, VALID_NAME, require, run

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.anyio, pytest.mark.npm, pytest.mark.slow]

ERAS = ["legacy", "modern"]


@pytest.fixture(params=["stdio", "http"])
def target(request: pytest.FixtureRequest, client_config: Path, http_url: str) -> list[str]:
    """Inspector arguments naming the server: a command to launch, or the HTTP endpoint."""
    if request.param == "stdio":
        return ["--cwd", str(REPO_ROOT), sys.executable, "-m", "orchestrator", "serve", "-c", str(client_config)]
    return ["--transport", "http", "--server-url", http_url]


async def inspector(home: Path, target: list[str], era: str, *method: str) -> Any:
    """Run the Inspector CLI once; its JSON ``result`` (the test fails on any error)."""
    require(NODE22, INSPECTOR)
    # The launch includes the aggregator's start-up and a servers' first listing: on a loaded CI
    # machine that can exceed the Inspector's 15 s default, so the bound is the run's own.
    argv = [NODE22, INSPECTOR, "--cli", "--format", "json", "--protocol-era", era, "--connect-timeout", "60000"]
    argv += [*target, *method]
    # HOME: the Inspector keeps its catalogue and client state under ~/.mcp-inspector.
    done = await run(argv, env={"HOME": str(home)}, timeout=90)
    assert done.returncode == 0, done.describe()
    body = done.json()
    assert "result" in body, done.describe()
    return body["result"]


@pytest.mark.parametrize("era", ERAS)
async def test_inspector_lists_every_aggregated_and_composite_tool(
    tmp_path: Path, target: list[str], era: str, expected_tools: set[str]
) -> None:
    result = await inspector(tmp_path, target, era, "--method", "tools/list")
    names = [tool["name"] for tool in result["tools"]]
    assert set(names) == expected_tools
    assert len(names) == len(set(names))
    assert all(VALID_NAME.match(name) for name in names)
    assert all(isinstance(tool.get("inputSchema"), dict) for tool in result["tools"])


@pytest.mark.parametrize("era", ERAS)
async def test_inspector_calls_an_aggregated_tool(tmp_path: Path, target: list[str], era: str) -> None:
    method = ["--method", "tools/call", "--tool-name", "everything__echo", "--tool-arg", "message=hello inspector"]
    result = await inspector(tmp_path, target, era, *method)
    assert result.get("isError") is not True, result
    assert result["content"] == [{"type": "text", "text": "Echo: hello inspector"}]


@pytest.mark.parametrize("era", ERAS)
async def test_inspector_calls_a_composite_tool(tmp_path: Path, target: list[str], era: str) -> None:
    entity = f"sum-{uuid.uuid4().hex[:8]}"  # a new entity per run: the memory file is shared
    method = ["--method", "tools/call", "--tool-name", COMPOSITE, "--tool-arg", f"name={entity}", "a=40", "b=2"]
    result = await inspector(tmp_path, target, era, *method)
    assert result.get("isError") is not True, result
    assert result["structuredContent"] == {"sum": "The sum of 40 and 2 is 42.", "created": [entity]}


@pytest.mark.parametrize(
    "method",
    [
        ["--method", "prompts/get", "--prompt-name", "everything__simple-prompt"],
        ["--method", "resources/read", "--uri", "demo://resource/static/document/architecture.md"],
    ],
    ids=["prompts-get", "resources-read"],
)
async def test_inspector_gets_a_prompt_or_reads_a_resource_right_after_launching_it(
    tmp_path: Path, client_config: Path, method: list[str]
) -> None:
    launch = ["--cwd", str(REPO_ROOT), sys.executable, "-m", "orchestrator", "serve", "-c", str(client_config)]
    result = await inspector(tmp_path, launch, "legacy", *method)
    assert result.get("messages") or result.get("contents"), result
