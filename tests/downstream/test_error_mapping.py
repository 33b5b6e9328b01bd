"""Lower-level faults of a downstream request become the most specific ``DownstreamError``."""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client, MCPError
from mcp.server import Server
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

from orchestrator.downstream._error_mapping import (
    RequestFault,
    closes_connection,
    describe_fault,
    downstream_error,
    interrupted_request_error,
    output_schema_error,
)
from orchestrator.errors import DownstreamOutputInvalid, DownstreamTimeout, DownstreamToolError, DownstreamUnavailable
from tests.fakes.inprocess import memory_transport


def _hide_token(text: str) -> str:
    return text.replace("s3cret", "***")


def _mapped(exc: RequestFault, http_status: int | None = None) -> object:
    return downstream_error("docs", exc, "tools/call search", 2.5, mask=_hide_token, http_status=http_status)


def test_an_error_answer_is_a_tool_error_with_its_code_and_secrets_masked() -> None:
    error = _mapped(MCPError(types.INVALID_PARAMS, "bad token s3cret"))
    assert isinstance(error, DownstreamToolError)
    assert (error.server, error.code) == ("docs", types.INVALID_PARAMS)
    assert "s3cret" not in str(error)
    assert "bad token ***" in str(error)
    assert not error.retryable


def test_an_internal_error_during_an_http_5xx_is_a_transport_fault() -> None:
    error = _mapped(MCPError(types.INTERNAL_ERROR, "Server error"), http_status=503)
    assert isinstance(error, DownstreamUnavailable)
    assert "HTTP 503 during tools/call search" in str(error)
    assert isinstance(_mapped(MCPError(types.INTERNAL_ERROR, "boom")), DownstreamToolError), "no 5xx: an answer"


@pytest.mark.parametrize("exc", [MCPError(REQUEST_TIMEOUT, "Request timed out"), TimeoutError()])
def test_a_timeout_names_its_limit_and_is_retryable(exc: RequestFault) -> None:
    error = _mapped(exc)
    assert isinstance(error, DownstreamTimeout)
    assert error.timeout == 2.5
    assert "tools/call search timed out after 2.5s" in str(error)
    assert error.retryable


def test_a_closed_connection_is_unavailable_and_closes_the_connection() -> None:
    closed = MCPError(CONNECTION_CLOSED, "Connection closed")
    assert isinstance(_mapped(closed), DownstreamUnavailable)
    assert "connection lost during tools/call search" in str(_mapped(closed))
    assert closes_connection(closed)
    assert not closes_connection(MCPError(REQUEST_TIMEOUT, "Request timed out"))
    assert not closes_connection(OSError("broken pipe"))


@pytest.mark.parametrize(
    "exc", [BrokenPipeError(32, "Broken pipe"), anyio.BrokenResourceError(), anyio.ClosedResourceError()]
)
def test_a_broken_transport_is_unavailable_and_retryable(exc: RequestFault) -> None:
    error = _mapped(exc)
    assert isinstance(error, DownstreamUnavailable)
    assert f"transport failed during tools/call search: {type(exc).__name__}" in str(error)
    assert error.retryable


def test_an_interrupted_request_is_a_lost_connection_or_a_timeout() -> None:
    lost = interrupted_request_error("docs", "prompts/get p", 1.0, connection_lost=True)
    assert isinstance(lost, DownstreamUnavailable)
    assert "connection lost during prompts/get p" in str(lost)
    late = interrupted_request_error("docs", "prompts/get p", 1.0, connection_lost=False)
    assert isinstance(late, DownstreamTimeout)
    assert "prompts/get p timed out after 1s" in str(late)


def test_a_fault_is_described_in_one_line_group_members_included() -> None:
    group = BaseExceptionGroup("two", [MCPError(-32000, "gone"), TimeoutError()])
    assert describe_fault(group) == "gone (code -32000); timed out"
    assert describe_fault(ConnectionRefusedError(111, "Connection refused")) == (
        "ConnectionRefusedError: [Errno 111] Connection refused"
    )


async def _refused_result(output_schema: dict[str, Any], structured: dict[str, Any]) -> RuntimeError:
    """What the SDK client raises when tool ``t`` declares ``output_schema`` and returns ``structured``."""

    async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        tool = types.Tool(name="t", input_schema={"type": "object"}, output_schema=output_schema)
        return types.ListToolsResult(tools=[tool])

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return types.CallToolResult(content=[], structured_content=structured)

    server: Server[Any] = Server("s", on_list_tools=list_tools, on_call_tool=call_tool)
    async with Client(memory_transport(server)) as client:
        with pytest.raises(RuntimeError) as refused:
            await client.call_tool("t", {})
    return refused.value


@pytest.mark.anyio
async def test_a_result_breaking_the_output_schema_names_the_tool_and_field_masked_and_short() -> None:
    item = {"type": "object", "properties": {"id": {"type": "integer"}}}
    schema = {"type": "object", "properties": {"items": {"type": "array", "items": item}}}
    exc = await _refused_result(schema, {"items": [{"id": 1}, {"id": "s3cret" + "x" * 500}]})
    error = output_schema_error("docs", "t", exc, mask=_hide_token)
    assert isinstance(error, DownstreamOutputInvalid)
    assert (error.server, error.tool, error.field) == ("docs", "t", "items[1].id")
    assert str(error).startswith(
        "server 'docs': tool 't' returned structured content that does not match its outputSchema: items[1].id: '***xxx"
    )
    assert "s3cret" not in str(error)
    assert len(str(error)) < 350
    assert not error.retryable


@pytest.mark.anyio
async def test_a_result_missing_a_required_top_level_field_names_the_whole_content() -> None:
    schema = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}
    error = output_schema_error("docs", "t", await _refused_result(schema, {}), mask=_hide_token)
    assert isinstance(error, DownstreamOutputInvalid)
    assert error.field == ""
    assert str(error) == (
        "server 'docs': tool 't' returned structured content that does not match its outputSchema: "
        "(structuredContent): 'n' is a required property"
    )


@pytest.mark.anyio
async def test_an_invalid_output_schema_is_the_servers_fault_with_no_field() -> None:
    error = output_schema_error("docs", "t", await _refused_result({"type": "nonsense"}, {}), mask=_hide_token)
    assert isinstance(error, DownstreamOutputInvalid)
    assert error.field is None
    assert str(error).startswith("server 'docs': tool 't' declares an outputSchema that is not a valid JSON Schema: ")
    assert "\n" not in str(error)


def test_another_runtime_error_is_not_an_output_fault() -> None:
    assert output_schema_error("docs", "t", RuntimeError("something else broke"), mask=_hide_token) is None
    # The SDK's text about another tool is not this call's fault either.
    other = RuntimeError("Tool u has an output schema but did not return structured content")
    assert output_schema_error("docs", "t", other, mask=_hide_token) is None
