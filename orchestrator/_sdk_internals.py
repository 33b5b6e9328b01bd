"""The one module that touches the MCP SDK's private modules (bottom layer: no orchestrator imports).

The SDK keeps its stream protocols, transport stream pair, HTTP client factory (and its
default timeouts) and a
request's connection private. We need each of them, so every such import and attribute
access stands here and an SDK upgrade changes one file. On top of the stream protocols sits
``WrappedReadStream``, the base for read streams that wrap another one: subclasses override
``receive`` (and ``aclose`` if they must); iteration, the context manager protocol and
``last_context`` (the sender's context variables, which the SDK's dispatchers restore
around each message's handler) come from here.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any, Self

import anyio
import httpx2
from mcp.client._transport import TransportStreams
from mcp.shared._httpx_utils import (
    MCP_DEFAULT_SSE_READ_TIMEOUT,
    MCP_DEFAULT_TIMEOUT,
    McpHttpClientFactory,
)
from mcp.shared._httpx_utils import create_mcp_http_client as _sdk_http_client
from mcp.shared._stream_protocols import ReadStream, WriteStream

if TYPE_CHECKING:
    from types import TracebackType

    from mcp.server.connection import Connection
    from mcp.server.context import ServerRequestContext
    from mcp.shared.message import SessionMessage

__all__ = [
    "McpHttpClientFactory",
    "ReadStream",
    "TransportStreams",
    "WrappedReadStream",
    "WriteStream",
    "create_mcp_http_client",
    "request_connection",
]


def create_mcp_http_client(
    headers: dict[str, str] | None = None,
    timeout: httpx2.Timeout | None = None,
    auth: httpx2.Auth | None = None,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> httpx2.AsyncClient:
    """The SDK's HTTP client for its transports (its timeouts, no redirects), over ``transport`` if given."""
    if transport is None:
        return _sdk_http_client(headers=headers, timeout=timeout, auth=auth)
    return httpx2.AsyncClient(
        headers=headers,
        timeout=timeout or httpx2.Timeout(MCP_DEFAULT_TIMEOUT, read=MCP_DEFAULT_SSE_READ_TIMEOUT),
        auth=auth,
        transport=transport,
    )


def request_connection(ctx: ServerRequestContext[Any, Any]) -> Connection:
    """The connection a request arrived on: one per handshake-era session; one per request at 2026-07-28."""
    # The SDK offers no public accessor for a request's connection yet.
    return ctx.session._connection  # pyright: ignore[reportPrivateUsage]


class WrappedReadStream:
    """Delegates to ``inner``; a subclass changes what ``receive`` does."""

    def __init__(self, inner: ReadStream[SessionMessage | Exception]) -> None:
        self._inner = inner

    @property
    def last_context(self) -> contextvars.Context | None:
        """The context the last item was sent in, where the wrapped stream keeps it.

        Over streamable HTTP that is the task that posted the request whose response stream
        carried the item: a server-to-client request then runs in its caller's context.
        """
        context: object = getattr(self._inner, "last_context", None)
        return context if isinstance(context, contextvars.Context) else None

    async def receive(self) -> SessionMessage | Exception:
        """The next item of the wrapped stream."""
        return await self._inner.receive()

    async def aclose(self) -> None:
        """Close the wrapped stream."""
        await self._inner.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.aclose()
