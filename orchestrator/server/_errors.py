"""The single place where orchestrator errors become MCP wire errors.

A failing tool call is a tool result with ``isError: true`` (the model can read it and
react); an unknown tool, prompt or resource is a JSON-RPC error, as the spec requires.
"""

from __future__ import annotations

import mcp_types as types
from mcp import MCPError

from orchestrator.errors import DownstreamError, DownstreamToolError, OrchestratorError, UnknownToolError

__all__ = ["ERROR_META_KEY", "request_error", "tool_error_result"]

ERROR_META_KEY = "io.github.mcp-orchestrator/error"
"""``_meta`` key of an error result: the error class and, where known, the server."""

_RESOURCE_NOT_FOUND = -32002


def _error_type(exc: OrchestratorError) -> str:
    return type(exc).__name__


def tool_error_result(exc: OrchestratorError, extra_meta: dict[str, object] | None = None) -> types.CallToolResult:
    """A ``tools/call`` result that reports ``exc`` to the caller."""
    meta: dict[str, object] = {"type": _error_type(exc)}
    if isinstance(exc, DownstreamError):
        meta["server"] = exc.server
    if extra_meta:
        meta.update(extra_meta)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=str(exc))],
        is_error=True,
        _meta={ERROR_META_KEY: meta},
    )


def request_error(exc: OrchestratorError) -> MCPError:
    """The JSON-RPC error for ``exc`` in a request other than ``tools/call``."""
    if isinstance(exc, UnknownToolError):
        code = _RESOURCE_NOT_FOUND if exc.kind == "resource" else types.INVALID_PARAMS
        # The message says "did you mean"; data gives the same names to a program.
        data = {"suggestions": list(exc.suggestions)} if exc.suggestions else None
        return MCPError(code=code, message=str(exc), data=data)
    if isinstance(exc, DownstreamToolError):
        return MCPError(code=exc.code, message=str(exc))
    return MCPError(code=types.INTERNAL_ERROR, message=str(exc))
