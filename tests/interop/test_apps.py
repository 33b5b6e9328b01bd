"""Real apps through the aggregator, seen by the MCP Inspector as a host sees them.

``@modelcontextprotocol/server-debug`` (an MCP Apps example from npm: a tool with a widget, two
app-only tools its widget calls by their own names, results with ``structuredContent``,
``_meta`` and resource links) and our two-copies fixture (``tests/fakes/app_server.py``) are
probed with the Inspector CLI's ``--app-info`` (resourceUri, visibility, CSP, permissions,
domain, MIME type of each tool's app, as a host reads them) directly and through
``orchestrator serve`` over stdio and HTTP, in both protocol eras: the aggregator must show
what the server shows, but for the documented rewrites.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import mcp_types as types
import pytest
from mcp import Client, MCPError
from mcp.client.extension import advertise

from orchestrator.catalog import APP_MIME_TYPE, UI_EXTENSION
from tests.e2e.harness import REPO_ROOT, aggregator_params, http_aggregator, write_config
from tests.interop._peers import INSPECTOR, NODE22, NODE_MODULES, require, run

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.anyio, pytest.mark.npm, pytest.mark.slow]

DEBUG = NODE_MODULES / ".bin" / "mcp-server-debug"
ERAS = ["legacy", "modern"]
HOST = [advertise(UI_EXTENSION, {"mimeTypes": [APP_MIME_TYPE]})]


def debug_command(tmp_path: Path) -> list[str]:
    """The debug server over stdio, logging its widget's events to a file of the test's own."""
    require(DEBUG)
    return [str(DEBUG), "--stdio", f"--log-file={tmp_path / 'debug-events.jsonl'}"]


def fixture_command(label: str) -> list[str]:
    return [sys.executable, "-m", "tests.fakes.app_server", "--label", label]


def entry(command: list[str]) -> dict[str, Any]:
    return {"command": command[0], "args": command[1:], "cwd": str(REPO_ROOT)}


async def app_info(home: Path, target: list[str], era: str) -> dict[str, dict[str, Any]]:
    """What the Inspector, declaring apps, reads of each tool's app: toolName -> its line."""
    require(NODE22, INSPECTOR)
    argv = [NODE22, INSPECTOR, "--cli", "--format", "json", "--advertise-apps", "--app-info"]
    done = await run(
        [*argv, "--protocol-era", era, *target, "--method", "tools/list"], env={"HOME": str(home)}, timeout=90
    )
    assert done.returncode == 0, done.describe()
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return {line["toolName"]: line for line in lines}


def through(config: Path, transport: str, url: str) -> list[str]:
    """Inspector arguments naming ``orchestrator serve`` on ``config`` (stdio) or its HTTP endpoint."""
    if transport == "stdio":
        return ["--cwd", str(REPO_ROOT), sys.executable, "-m", "orchestrator", "serve", "-c", str(config)]
    return ["--transport", "http", "--server-url", url]


def unprefixed(lines: dict[str, dict[str, Any]], prefix: str) -> dict[str, dict[str, Any]]:
    """Lines of the tools named ``{prefix}__…``, keyed and named by their servers' own names."""
    own = f"{prefix}__"
    return {
        name[len(own) :]: {**line, "toolName": name[len(own) :]} for name, line in lines.items() if name.startswith(own)
    }


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_the_inspector_sees_a_real_app_through_the_aggregator_as_it_does_directly(
    tmp_path: Path, transport: str, era: str
) -> None:
    command = debug_command(tmp_path)
    direct = await app_info(tmp_path, command, "legacy")  # the debug server speaks 2025-11-25
    assert direct["debug-tool"]["hasApp"] is True
    assert direct["debug-refresh"]["visibility"] == ["app"]
    config = write_config(tmp_path, {"debug": entry(command)})
    async with http_aggregator(config) as url:
        seen = await app_info(tmp_path, through(config, transport, url), era)
    assert unprefixed(seen, "debug") == direct


@pytest.mark.parametrize("era", ERAS)
async def test_the_inspector_sees_each_clashing_widget_with_its_own_csp_and_a_rewritten_link(
    tmp_path: Path, era: str
) -> None:
    direct = await app_info(tmp_path, fixture_command("alpha"), "legacy")
    assert direct["show_view"]["csp"] == {
        "connectDomains": ["https://api.example.com"],
        "resourceDomains": ["https://cdn.example.com"],
    }
    config = write_config(tmp_path, {"alpha": entry(fixture_command("alpha")), "beta": entry(fixture_command("beta"))})
    async with http_aggregator(config) as url:
        seen = await app_info(tmp_path, through(config, "http", url), era)
    for label in ("alpha", "beta"):
        exposed = f"ui://{label}/widget/view.html"
        # Each server's own app, as it is directly; only the link to it is rewritten.
        expected = {
            name: {**line, "resourceUri": exposed} if "resourceUri" in line else line for name, line in direct.items()
        }
        assert unprefixed(seen, label) == expected


async def test_the_real_widget_s_calls_and_results_round_trip(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"debug": entry(debug_command(tmp_path))})
    async with Client(aggregator_params(config), extensions=HOST) as host:
        names = {tool.name for tool in (await host.list_tools()).tools}
        assert {"debug__debug-tool", "debug__debug-refresh", "debug__debug-log"} <= names
        widget = await host.read_resource("ui://debug-tool/mcp-app.html")
        (content,) = widget.contents
        assert isinstance(content, types.TextResourceContents)
        assert content.mime_type == APP_MIME_TYPE
        assert "debug-refresh" in content.text  # the widget calls its tools by their own names

        arguments = {"contentType": "resourceLink", "multipleBlocks": False}
        result = await host.call_tool("debug__debug-tool", arguments)
        assert not result.is_error
        assert (result.meta or {})["debugInfo"]["serverVersion"] == "1.0.0"
        assert result.structured_content is not None
        assert result.structured_content["config"]["contentType"] == "resourceLink"
        (link,) = result.content
        assert isinstance(link, types.ResourceLink)
        assert link.uri == "debug://linked-resource"

        # What the widget's buttons send, through the host: the server's own names.
        refreshed = await host.call_tool("debug-refresh", {})
        assert refreshed.structured_content is not None
        assert refreshed.structured_content["counter"] >= 1
        logged = await host.call_tool("debug-log", {"type": "click", "payload": {"button": "refresh"}})
        assert logged.structured_content == {"logged": True, "logFile": str(tmp_path / "debug-events.jsonl")}
    assert json.loads((tmp_path / "debug-events.jsonl").read_text().splitlines()[-1])["type"] == "click"

    async with Client(aggregator_params(config)) as model:
        assert {tool.name for tool in (await model.list_tools()).tools} == {"debug__debug-tool"}
        with pytest.raises(MCPError, match="unknown tool"):
            await model.call_tool("debug__debug-refresh", {})
