"""Lower-level exceptions of a downstream request, mapped to the ``DownstreamError`` tree.

The one place that decides what a fault means: a JSON-RPC error answer (``MCPError``), the
SDK's own timeout, a broken transport (``OSError``, anyio's broken or closed streams) and an
HTTP 5xx (which the SDK reports only as an internal error) each become the most specific
``DownstreamError``, so retries and the circuit breaker can decide by type alone.
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

from orchestrator.errors import DownstreamError, DownstreamTimeout, DownstreamToolError, DownstreamUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "REQUEST_FAULTS",
    "RequestFault",
    "closes_connection",
    "describe_fault",
    "downstream_error",
    "interrupted_request_error",
]

RequestFault = MCPError | TimeoutError | OSError | anyio.BrokenResourceError | anyio.ClosedResourceError
"""What a downstream request may raise below the orchestrator's own errors."""

REQUEST_FAULTS: Final = (MCPError, TimeoutError, OSError, anyio.BrokenResourceError, anyio.ClosedResourceError)
"""``RequestFault`` as an ``except`` clause takes it."""


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
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _timed_out(server: str, what: str, limit: float) -> DownstreamTimeout:
    return DownstreamTimeout(server, f"{what} timed out after {limit:g}s", limit)
