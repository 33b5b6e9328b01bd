"""The entry ``install`` writes, run as written by a client, serves the orchestrator's catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
from mcp import Client, StdioServerParameters

from orchestrator.cli.install._client_files import client_config_path
from tests.cli.helpers import orchestrator, read_json, write_json
from tests.e2e.harness import fault_entry, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("home")]


def _params(entry: dict[str, Any], cwd: Path) -> StdioServerParameters:
    # No env: the SDK then passes only a minimal whitelist (HOME, PATH, ...), as GUI clients do;
    # and a working folder unrelated to the config or the checkout.
    return StdioServerParameters(command=entry["command"], args=entry["args"], cwd=str(cwd))


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def test_the_installed_entry_run_as_written_serves_the_catalogue(tmp_path: Path) -> None:
    write_config(Path.cwd(), {"f": fault_entry("--tools", "search")})
    assert orchestrator("install", "claude-desktop") == 0
    entry = read_json(client_config_path("claude-desktop"))["mcpServers"]["mcp-orchestrator"]

    async with Client(_params(entry, tmp_path)) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"f__echo", "f__search"} <= names
        result = await client.call_tool("f__echo", {"text": "through the entry"})
        assert not result.is_error
        assert "through the entry" in _text(result)


async def test_after_install_from_the_single_entry_serves_the_migrated_servers(tmp_path: Path) -> None:
    write_json(
        client_config_path("claude-desktop"),
        {"mcpServers": {"alpha": fault_entry("--name", "alpha"), "beta": fault_entry("--name", "beta")}},
    )
    assert orchestrator("install", "--from", "claude-desktop") == 0
    [entry] = read_json(client_config_path("claude-desktop"))["mcpServers"].values()

    async with Client(_params(entry, tmp_path)) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"alpha__echo", "beta__echo"} <= names
        assert not (await client.call_tool("beta__echo", {"text": "hi"})).is_error
