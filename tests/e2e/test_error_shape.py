"""Every failure of a tool call reaches the client in one shape, whatever failed and however the client calls.

A failed call is an ``isError`` result whose ``_meta["io.github.mcp-orchestrator/error"]``
holds ``type`` and ``server``, plus ``run_id`` and ``failed_step`` when a composite run
failed (``retry_after`` when a rate limit refused it); an unknown name is a JSON-RPC -32602
error whose ``data`` holds the same object (and the close names). The walk runs the real
aggregator over stdio in front of real fault servers, for a plain client and for a
2026-07-28 client that answers input rounds (whose calls run detached, between rounds).
"""

from __future__ import annotations

import secrets
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import mcp_types as types
import pytest
import yaml
from mcp import Client, MCPError

from tests.e2e.harness import aggregator_params, fault_entry, write_config

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path

    from mcp.client.session import ClientRequestContext

pytestmark = pytest.mark.anyio

ERROR_META_KEY = "io.github.mcp-orchestrator/error"
RUN_META_KEY = "io.github.mcp-orchestrator/run"
CALLERS = ["plain", "input-rounds"]


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


def _error(result: types.CallToolResult) -> dict[str, Any]:
    """The error object of a failed call, checked for the one shape."""
    assert result.is_error, _text(result)
    assert result.meta is not None, _text(result)
    error: dict[str, Any] = result.meta[ERROR_META_KEY]
    extra_fields = {"WorkflowExecutionError": {"run_id", "failed_step"}, "RateLimitedError": {"retry_after"}}
    assert set(error) == {"type", "server", *extra_fields.get(error.get("type", ""), set())}, error
    assert isinstance(error["type"], str)
    assert error["server"] is None or isinstance(error["server"], str)
    return error


def _config(tmp_path: Path) -> Path:
    """``f`` answers, refuses or breaks its outputSchema; ``h`` times out after 1 s; ``d`` dies; three composites."""
    workflows = tmp_path / "workflows"
    workflows.mkdir()
    documents: dict[str, dict[str, Any]] = {
        "doomed": {"steps": {"broken": {"tool": "f.fail", "with": {"message": "disk on fire"}}}},
        "guarded": {
            "input": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}},
            "steps": {"say": {"tool": "f.echo", "with": {"text": "${{ input.n }}"}}},
        },
        "orphan": {"steps": {"lost": {"tool": "f.no_such_tool", "with": {}}}},
    }
    for name, document in documents.items():
        document = {"version": 1, "name": name, "description": f"test workflow {name}", **document}
        (workflows / f"{name}.yaml").write_text(yaml.safe_dump(document), encoding="utf-8")
    servers = {"f": fault_entry("--bad-output-tool"), "h": fault_entry(timeout="1s"), "d": fault_entry()}
    return write_config(tmp_path, servers, workflows=[str(workflows)])


async def _sample(context: ClientRequestContext, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text="ok"), model="m")


@asynccontextmanager
async def _client(caller: str, config: Path) -> AsyncGenerator[Client, None]:
    # Declaring sampling makes a 2026-07-28 client's calls go through input rounds.
    options: dict[str, Any] = {"sampling_callback": _sample} if caller == "input-rounds" else {}
    async with Client(aggregator_params(config), **options) as client:
        yield client


@pytest.mark.parametrize("caller", CALLERS)
async def test_every_kind_of_failure_has_the_one_error_shape(tmp_path: Path, caller: str) -> None:
    async with _client(caller, _config(tmp_path)) as client:
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("f__ecoh", {})
        fine = await client.call_tool("f__echo", {"text": "fine"})
        invalid = await client.call_tool("f__add", {"a": "one"})
        invalid_composite = await client.call_tool("guarded", {"n": "seven"})
        withdrawn_composite = await client.call_tool("orphan", {})
        timeout = await client.call_tool("h__hang", {})
        refused = await client.call_tool("f__fail", {"message": "kaboom"})
        output_invalid = await client.call_tool("f__bad_output", {})
        step_failed = await client.call_tool("doomed", {})
        dead = await client.call_tool("d__crash", {})
        expired = None
        if caller == "input-rounds":
            expired = await client.session.call_tool("f__echo", {"text": "x"}, request_state=secrets.token_urlsafe(24))

    assert unknown.value.code == types.INVALID_PARAMS
    assert unknown.value.data == {"type": "UnknownToolError", "server": None, "suggestions": ["f__echo"]}
    assert not fine.is_error
    assert ERROR_META_KEY not in (fine.meta or {})

    assert _error(invalid) == {"type": "InvalidArgumentsError", "server": None}
    assert _text(invalid).startswith("invalid arguments for tool 'f__add':\n- ")
    assert _error(invalid_composite) == {"type": "InvalidArgumentsError", "server": None}
    assert _text(invalid_composite) == "invalid arguments for tool 'guarded':\n- n: 'seven' is not of type 'integer'"
    assert _error(withdrawn_composite) == {"type": "WorkflowUnavailable", "server": None}
    assert _error(timeout) == {"type": "DownstreamTimeout", "server": "h"}
    assert _error(dead) == {"type": "DownstreamUnavailable", "server": "d"}
    # The downstream's own error result: its content as it sent it, the error object added.
    assert _error(refused) == {"type": "DownstreamToolError", "server": "f"}
    assert _text(refused) == "kaboom"
    assert _error(output_invalid) == {"type": "DownstreamOutputInvalid", "server": "f"}

    assert step_failed.meta is not None
    run: dict[str, Any] = step_failed.meta[RUN_META_KEY]
    assert _error(step_failed) == {
        "type": "WorkflowExecutionError",
        "server": "f",
        "run_id": run["run_id"],
        "failed_step": "broken",
    }
    assert run["failed_step"] == "broken"  # the run's own _meta stays beside the error
    if expired is not None:
        assert isinstance(expired, types.CallToolResult)
        assert _error(expired) == {"type": "InputRoundExpired", "server": None}
