"""The single place where orchestrator errors become MCP wire errors.

A failing tool call is a tool result with ``isError: true`` (the model can read it and
react); an unknown tool, prompt or resource is a JSON-RPC error, as the spec requires
(``tools/call`` of an unknown name is -32602, a resource -32002). Nothing else builds an
error result, and every one carries the same object, ``error_fields``, under
``_meta["io.github.mcp-orchestrator/error"]``:

``type`` (always)
    The class name of the error in ``orchestrator.errors``: ``InvalidArgumentsError``,
    ``DownstreamTimeout``, ``WorkflowExecutionError``...
``server`` (always; may be ``null``)
    The configured key of the downstream server whose failure it is: the server that timed
    out, died, refused the call or answered with its own ``isError`` result, or, for a
    composite, the server whose call failed the step. ``null`` when no server is at fault
    (invalid arguments, an expired input round, a withdrawn composite, an expression).
``run_id``, ``failed_step`` (only when a composite run failed: ``type`` is ``WorkflowExecutionError``)
    The run, and its failed step, or ``(input)``, ``(output)``, ``(run)`` for a failure of the
    run as a whole. A composite's other ``_meta`` (its run and trace ids under
    ``io.github.mcp-orchestrator/run``) stays beside it.
``retry_after`` (only when a rate limit refused the call: ``type`` is ``RateLimitedError``)
    Seconds until the same call would be admitted, rounded up to the millisecond.

A downstream tool's own error result keeps its content (and any ``_meta`` of its own); only
the error object is added, with ``type`` ``DownstreamToolError``. A JSON-RPC error carries
the same object as its ``data``, plus ``suggestions`` (close names) for an unknown name.
Callers decide by these fields, never by a message's text.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp import MCPError

from orchestrator.errors import (
    DownstreamError,
    DownstreamToolError,
    InternalError,
    InvalidArgumentsError,
    OrchestratorError,
    RateLimitedError,
    RateLimitsUnavailable,
    StoreError,
    UnknownToolError,
    WorkflowExecutionError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ERROR_META_KEY",
    "client_message",
    "downstream_error_result",
    "error_fields",
    "internal_error_result",
    "refused_call_error",
    "request_error",
    "tool_error_result",
]

ERROR_META_KEY = "io.github.mcp-orchestrator/error"
"""``_meta`` key of every error result: ``{"type", "server"}``, plus ``run_id`` and ``failed_step`` for a run,
``retry_after`` for a rate limit."""

_RESOURCE_NOT_FOUND = -32002


def error_fields(exc: OrchestratorError) -> dict[str, Any]:
    """The error object of ``exc`` as the wire carries it (see the module docstring)."""
    server = exc.server if isinstance(exc, DownstreamError | WorkflowExecutionError) else None
    fields: dict[str, Any] = {"type": type(exc).__name__, "server": server}
    if isinstance(exc, WorkflowExecutionError):
        fields["run_id"] = exc.run_id
        fields["failed_step"] = exc.step_id
    if isinstance(exc, RateLimitedError):
        fields["retry_after"] = math.ceil(exc.retry_after * 1000) / 1000
    return fields


def client_message(exc: OrchestratorError) -> str:
    """What a client is told of ``exc``: its message, except where the state database or Redis is (the log has it)."""
    if isinstance(exc, StoreError):
        return f"the state database: {exc.detail}"
    if isinstance(exc, RateLimitsUnavailable):
        return f"the rate limits cannot be checked: {exc.detail}"
    return str(exc)


def tool_error_result(exc: OrchestratorError, meta: Mapping[str, Any] | None = None) -> types.CallToolResult:
    """A ``tools/call`` result that reports ``exc`` to the caller.

    Args:
        exc: The failure; its message (``client_message``) is the result's text.
        meta: Other ``_meta`` entries the result carries beside the error (a composite's run).
    """
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=client_message(exc))],
        is_error=True,
        _meta={**(meta or {}), ERROR_META_KEY: error_fields(exc)},
    )


def downstream_error_result(result: types.CallToolResult, server: str) -> types.CallToolResult:
    """A downstream tool's own ``isError`` result, passed on with the error object added.

    Its content and its other ``_meta`` entries are kept as the server sent them.
    """
    fields = {"type": DownstreamToolError.__name__, "server": server}
    return result.model_copy(update={"meta": {**(result.meta or {}), ERROR_META_KEY: fields}})


def internal_error_result(exc: BaseException) -> types.CallToolResult:
    """The result of a call that failed with an unexpected exception (a bug, logged by the caller).

    Only the exception's type is told: its message may hold anything.
    """
    return tool_error_result(InternalError(type(exc).__name__))


def request_error(exc: OrchestratorError) -> MCPError:
    """The JSON-RPC error for ``exc``: an unknown name, or a failure of a request other than ``tools/call``.

    Invalid arguments are -32602: they reach here only from a request that cannot answer with a
    tool result (a task-augmented ``tools/call``, which must answer with a task or an error).
    """
    data = error_fields(exc)
    if isinstance(exc, UnknownToolError):
        code = _RESOURCE_NOT_FOUND if exc.kind == "resource" else types.INVALID_PARAMS
        # The message says "did you mean"; data gives the same names to a program.
        return MCPError(code=code, message=str(exc), data={**data, "suggestions": list(exc.suggestions)})
    if isinstance(exc, InvalidArgumentsError):
        return MCPError(code=types.INVALID_PARAMS, message=str(exc), data=data)
    if isinstance(exc, DownstreamToolError):
        return MCPError(code=exc.code, message=str(exc), data=data)
    return MCPError(code=types.INTERNAL_ERROR, message=client_message(exc), data=data)


def refused_call_error(result: types.CallToolResult) -> MCPError:
    """The JSON-RPC error for a call refused before anything ran (a rate limit), as its error ``result`` says.

    For a request that cannot answer with a tool result: a task-augmented ``tools/call`` of
    the 2025-11-25 era answers with a task or an error. ``data`` is the result's error object.
    """
    text = next((block.text for block in result.content if isinstance(block, types.TextContent)), "refused")
    return MCPError(code=types.INTERNAL_ERROR, message=text, data=(result.meta or {}).get(ERROR_META_KEY))
