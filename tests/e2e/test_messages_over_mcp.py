"""What an MCP client reads from ``orchestrator serve``: errors that say what fits, one version, one run-id format."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from typing import TYPE_CHECKING

import mcp_types as types
import pytest
import yaml
from mcp import Client, MCPError

from tests.e2e.harness import REPO_ROOT, aggregator_params, fault_entry, write_config

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

RUN_META_KEY = "io.github.mcp-orchestrator/run"


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


def _config(tmp_path: Path) -> Path:
    """The example ticket tracker and the fault server, with one composite whose input has an enum."""
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    document = {
        "version": 1,
        "name": "incident_report",
        "description": "Echo a status.",
        "input": {"type": "object", "properties": {"status": {"enum": ["open", "closed"]}}},
        "steps": {"say": {"tool": "f.echo", "with": {"text": "${{ input.status || 'none' }}"}}},
        "output": {"value": "${{ steps.say.result.text }}"},
    }
    (workflows / "incident_report.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    tracker = {"command": sys.executable, "args": ["-m", "examples.servers.tracker"], "cwd": str(REPO_ROOT)}
    return write_config(tmp_path, {"tickets": tracker, "f": fault_entry()}, workflows=[str(workflows)])


async def test_an_unknown_tool_is_invalid_params_with_close_names_in_message_and_data(tmp_path: Path) -> None:
    async with Client(aggregator_params(_config(tmp_path))) as client:
        with pytest.raises(MCPError) as typo:
            await client.call_tool("tickets__serch", {})
        with pytest.raises(MCPError) as composite:
            await client.call_tool("incident_reprot", {})
        with pytest.raises(MCPError) as nothing_close:
            await client.call_tool("weather", {})

    assert typo.value.code == types.INVALID_PARAMS
    assert typo.value.message == "unknown tool 'tickets__serch'; did you mean 'tickets__search_tickets'?"
    # data is the error object every failure carries (see test_error_shape), plus the close names.
    assert typo.value.data == {"type": "UnknownToolError", "server": None, "suggestions": ["tickets__search_tickets"]}
    assert composite.value.message == "unknown tool 'incident_reprot'; did you mean 'incident_report'?"
    assert nothing_close.value.message == "unknown tool 'weather'"
    assert nothing_close.value.data == {"type": "UnknownToolError", "server": None, "suggestions": []}


async def test_values_outside_an_enum_name_the_field_and_the_allowed_values(tmp_path: Path) -> None:
    async with Client(aggregator_params(_config(tmp_path))) as client:
        downstream = await client.call_tool("tickets__search_tickets", {"status": "clsoed"})
        composite = await client.call_tool("incident_report", {"status": "clsoed"})

    assert downstream.is_error
    assert _text(downstream) == (
        "invalid arguments for tool 'tickets__search_tickets':\n"
        '- status: "clsoed" is not one of "open", "in_progress", "closed", null'
    )
    assert composite.is_error
    assert _text(composite) == (
        "invalid arguments for tool 'incident_report':\n" + '- status: "clsoed" is not one of "open", "closed"'
    )


async def test_server_info_carries_the_package_version_and_a_run_id_has_32_hex_characters(tmp_path: Path) -> None:
    async with Client(aggregator_params(_config(tmp_path))) as client:
        info = client.server_info
        result = await client.call_tool("incident_report", {"status": "open"})

    assert info is not None
    assert (info.name, info.version) == ("mcp-orchestrator", importlib.metadata.version("mcp-orchestrator"))
    assert not result.is_error, _text(result)
    assert result.meta is not None
    assert re.fullmatch(r"[0-9a-f]{32}", result.meta[RUN_META_KEY]["run_id"])
