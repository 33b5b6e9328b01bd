"""A downstream result that breaks its tool's own outputSchema: a tool error naming server, tool and field.

The SDK client checks every structured result against the tool's listed outputSchema; a
result that fails the check is refused, and the caller gets an ``isError`` result of type
``DownstreamOutputInvalid`` (a composite step calling the tool fails with it), in both
protocol eras of the caller and of the downstream server, over stdio and HTTP, with a
warning in the aggregator's log and no traceback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mcp_types as types
import pytest
import yaml
from mcp import Client

from tests.e2e.harness import aggregator_command, aggregator_params, fault_entry, logged_process, write_config

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

ERROR_META_KEY = "io.github.mcp-orchestrator/error"
LISTENING = r"listening on (\S+)"
MODES = ["auto", "legacy"]
MISMATCH = "returned structured content that does not match its outputSchema: n: 'seven' is not of type 'integer'"


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


def _error(result: types.CallToolResult) -> dict[str, Any]:
    assert result.is_error, _text(result)
    assert result.meta is not None, _text(result)
    error: dict[str, Any] = result.meta[ERROR_META_KEY]
    return error


def _config(tmp_path: Path) -> Path:
    """``f`` serves both eras, ``old`` only the handshake era; ``counted`` is a composite calling ``f.bad_output``."""
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    document: dict[str, Any] = {
        "version": 1,
        "name": "counted",
        "description": "test workflow counted",
        "steps": {"count": {"tool": "f.bad_output", "with": {}}},
    }
    (workflows / "counted.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    servers = {"f": fault_entry("--bad-output-tool"), "old": fault_entry("--bad-output-tool", "--legacy-only")}
    return write_config(tmp_path, servers, workflows=[str(workflows)])


@pytest.mark.parametrize("mode", MODES)
async def test_a_result_breaking_its_output_schema_is_a_tool_error_naming_server_tool_and_field(
    tmp_path: Path, mode: str
) -> None:
    async with Client(aggregator_params(_config(tmp_path)), mode=mode) as client:
        for server in ("f", "old"):
            broken = await client.call_tool(f"{server}__bad_output", {})
            assert _error(broken) == {"type": "DownstreamOutputInvalid", "server": server}
            assert _text(broken) == f"server {server!r}: tool 'bad_output' {MISMATCH}"

            missing = await client.call_tool(f"{server}__bad_output", {"n": 7, "structured": False})
            assert _error(missing) == {"type": "DownstreamOutputInvalid", "server": server}
            assert _text(missing) == (
                f"server {server!r}: tool 'bad_output' returned no structured content "
                "although it declares an outputSchema"
            )

            # The server and its connection are fine: a valid result of the same tool goes through.
            fine = await client.call_tool(f"{server}__bad_output", {"n": 7})
            assert not fine.is_error, _text(fine)
            assert fine.structured_content == {"n": 7}

        step_failed = await client.call_tool("counted", {})
    error = _error(step_failed)
    assert (error["type"], error["server"], error["failed_step"]) == ("WorkflowExecutionError", "f", "count")
    run_id = error["run_id"]
    assert _text(step_failed) == (
        f"run {run_id}: step 'count' failed: output_invalid: server 'f': tool 'bad_output' {MISMATCH}"
    )


@pytest.mark.parametrize("mode", MODES)
async def test_over_http_the_log_has_a_warning_and_no_traceback(tmp_path: Path, mode: str) -> None:
    config = write_config(tmp_path, {"f": fault_entry("--bad-output-tool")})
    async with logged_process(aggregator_command(config), LISTENING) as (match, log):
        async with Client(match.group(1), mode=mode) as client:
            broken = await client.call_tool("f__bad_output", {})
        await log.wait_for(rf"WARNING .*server 'f': tool 'bad_output' {MISMATCH}")
        text = log.text
    assert _error(broken) == {"type": "DownstreamOutputInvalid", "server": "f"}
    assert _text(broken) == f"server 'f': tool 'bad_output' {MISMATCH}"
    assert "Traceback" not in text
    assert "RuntimeError" not in text
