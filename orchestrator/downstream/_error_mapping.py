"""Lower-level exceptions of a downstream request, mapped to the ``DownstreamError`` tree.

The one place that decides what a fault means: a JSON-RPC error answer (``MCPError``), the
SDK's own timeout, a broken transport (``OSError``, anyio's broken or closed streams) and an
HTTP 5xx (which the SDK reports only as an internal error) each become the most specific
``DownstreamError``, so retries and the circuit breaker can decide by type alone. A tool
result that breaks the tool's own ``outputSchema``, which the SDK client reports as a bare
``RuntimeError``, becomes ``DownstreamOutputInvalid`` (``output_schema_error``).
``describe_fault`` words any of them for a log line or a status report.

Does not: hold state, log, or act on a fault: the connection forgets a closed connection
(``closes_connection`` tells it which faults mean that) and feeds the breaker. A server's
error text reaches a message only through the caller's ``mask``, which hides configured
secret values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, cast

import anyio
import mcp_types as types
from mcp import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT

from orchestrator._egress import EgressError
from orchestrator._schema_messages import explain_error, field_path, schema_violation
from orchestrator.errors import (
    DownstreamError,
    DownstreamOutputInvalid,
    DownstreamTimeout,
    DownstreamToolError,
    DownstreamUnavailable,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "REQUEST_FAULTS",
    "RequestFault",
    "closes_connection",
    "describe_fault",
    "downstream_error",
    "interrupted_request_error",
    "output_schema_error",
]

RequestFault = MCPError | TimeoutError | OSError | anyio.BrokenResourceError | anyio.ClosedResourceError
"""What a downstream request may raise below the orchestrator's own errors."""

REQUEST_FAULTS: Final = (MCPError, TimeoutError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)
"""``RequestFault`` as an ``except`` clause takes it."""

_MAX_PROBLEM = 200
"""Longest problem text kept in a message: jsonschema quotes the offending value whole."""
_WHOLE_CONTENT = "(structuredContent)"


def downstream_error(
    server: str,
    exc: RequestFault,
    what: str,
    limit: float,
    *,
    mask: Callable[[str], str],
    http_status: int | None = None,
) -> DownstreamError:
    """The ``DownstreamError`` that ``exc``, raised during the request ``what``, stands for.

    Args:
        server: The downstream server's key.
        exc: What the SDK or the transport raised.
        what: The request, for the message (``"tools/call search"``).
        limit: The request's time limit in seconds, for a timeout's message.
        mask: Hides secrets in the text of a server's error answer.
        http_status: The 5xx status an HTTP response of this request had, if any.

    Returns:
        ``DownstreamUnavailable`` for a transport fault, a lost connection or an HTTP 5xx;
        ``DownstreamTimeout`` for a timeout; ``DownstreamToolError`` for any other error answer.
    """
    if isinstance(exc, MCPError):
        if http_status is not None and exc.code == types.INTERNAL_ERROR:
            return DownstreamUnavailable(server, f"HTTP {http_status} during {what}")
        if exc.code == REQUEST_TIMEOUT:
            return _timed_out(server, what, limit)
        if exc.code == CONNECTION_CLOSED:
            return DownstreamUnavailable(server, f"connection lost during {what}")
        return DownstreamToolError(server, mask(exc.message), exc.code)
    if isinstance(exc, TimeoutError):
        return _timed_out(server, what, limit)
    return DownstreamUnavailable(server, f"transport failed during {what}: {describe_fault(exc)}")


def output_schema_error(
    server: str, tool: str, exc: RuntimeError, *, mask: Callable[[str], str]
) -> DownstreamOutputInvalid | None:
    """The ``DownstreamOutputInvalid`` that the SDK client's ``exc`` from ``tools/call`` stands for, if any.

    The SDK client checks a tool's result against the ``outputSchema`` the server listed for
    the tool and reports a failed check only as a ``RuntimeError``: with the jsonschema
    ``ValidationError`` as its cause when the structured content does not fit, otherwise
    recognisable by its text alone (no structured content; a schema that is not valid).

    Args:
        server: The downstream server's key.
        tool: The tool's name on that server.
        exc: What ``Client.call_tool`` raised.
        mask: Hides secrets in the server's words (the offending value is quoted).

    Returns:
        The error naming the tool and the offending field, or ``None`` when ``exc`` is not a
        failed output check (then it is not the downstream's fault: let it propagate).
    """
    cause = schema_violation(exc.__cause__)
    if cause is not None:
        path, problem = explain_error(cause)
        field = field_path(path)
        message = (
            f"tool {tool!r} returned structured content that does not match its outputSchema: "
            f"{field or _WHOLE_CONTENT}: {mask(_shortened(problem))}"
        )
        return DownstreamOutputInvalid(server, message, tool=tool, field=field)
    text = str(exc)
    if text == f"Tool {tool} has an output schema but did not return structured content":
        message = f"tool {tool!r} returned no structured content although it declares an outputSchema"
        return DownstreamOutputInvalid(server, message, tool=tool, field=None)
    prefix = f"Invalid schema for tool {tool}:"
    if text.startswith(prefix):
        lines = text.removeprefix(prefix).strip().splitlines()
        problem = lines[0] if lines else "invalid"
        message = f"tool {tool!r} declares an outputSchema that is not a valid JSON Schema: {mask(_shortened(problem))}"
        return DownstreamOutputInvalid(server, message, tool=tool, field=None)
    return None


def interrupted_request_error(server: str, what: str, limit: float, *, connection_lost: bool) -> DownstreamError:
    """The error of a request whose cancel scope fired: its connection was lost, or its time ran out."""
    if connection_lost:
        return DownstreamUnavailable(server, f"connection lost during {what}")
    return _timed_out(server, what, limit)


def closes_connection(exc: RequestFault) -> bool:
    """Whether ``exc`` says the connection itself is gone (not only this request)."""
    return isinstance(exc, MCPError) and exc.code == CONNECTION_CLOSED


def describe_fault(exc: BaseException) -> str:
    """A one-line description of an exception, without secrets (no argument values)."""
    if isinstance(exc, BaseExceptionGroup):
        inner = cast("tuple[BaseException, ...]", exc.exceptions)  # pyright: ignore[reportUnknownMemberType]
        return "; ".join(describe_fault(e) for e in inner)
    if isinstance(exc, MCPError):
        return f"{exc.message} (code {exc.code})"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, EgressError):
        return str(exc)  # says what was refused and why, in full
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _timed_out(server: str, what: str, limit: float) -> DownstreamTimeout:
    return DownstreamTimeout(server, f"{what} timed out after {limit:g}s", limit)


def _shortened(text: str) -> str:
    return text if len(text) <= _MAX_PROBLEM else text[: _MAX_PROBLEM - 3] + "..."
