"""The one module that touches the MCP SDK's private modules (bottom layer: no orchestrator imports).

The SDK keeps its stream protocols, transport stream pair, HTTP client factory (and its
default timeouts), its OpenTelemetry span helpers, its client session's request stamping and
result checks, and a request's connection private. We need each of them, so every such import and attribute
access stands here and an SDK upgrade changes one file. On top of the stream protocols sits
``WrappedReadStream``, the base for read streams that wrap another one: subclasses override
``receive`` (and ``aclose`` if they must); iteration, the context manager protocol and
``last_context`` (the sender's context variables, which the SDK's dispatchers restore
around each message's handler) come from here.
"""

from __future__ import annotations

import contextvars
import math
from typing import TYPE_CHECKING, Any, Self, cast

import anyio
import httpx2
import mcp_types as types
from mcp.client._transport import TransportStreams
from mcp.client.session import _later_revision_fields  # pyright: ignore[reportPrivateUsage]
from mcp.shared._httpx_utils import (
    MCP_DEFAULT_SSE_READ_TIMEOUT,
    MCP_DEFAULT_TIMEOUT,
    McpHttpClientFactory,
)
from mcp.shared._httpx_utils import create_mcp_http_client as _sdk_http_client
from mcp.shared._otel import inject_trace_context
from mcp.shared._otel import otel_span as sdk_span
from mcp.shared._stream_protocols import ReadStream, WriteStream
from mcp.shared.inbound import MCP_NAME_HEADER, encode_header_value
from mcp_types.version import LATEST_HANDSHAKE_VERSION

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping
    from types import TracebackType

    from mcp import Client
    from mcp.server.connection import Connection
    from mcp.server.context import ServerRequestContext
    from mcp.shared.dispatcher import CallOptions
    from mcp.shared.message import SessionMessage

__all__ = [
    "McpHttpClientFactory",
    "ReadStream",
    "TransportStreams",
    "WrappedReadStream",
    "WriteStream",
    "check_tool_output",
    "create_mcp_http_client",
    "finish_tool_call",
    "inject_trace_context",
    "later_revision_fields",
    "request_connection",
    "sdk_span",
    "send_tool_call",
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


async def send_tool_call(
    client: Client,
    name: str,
    arguments: dict[str, Any] | None,
    via: Callable[[str, Mapping[str, Any]], Awaitable[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """``tools/call`` sent as ``Client.call_tool`` sends it, its result left as the server sent it.

    The request is stamped as the session stamps every request (at 2026-07-28: the protocol
    version, client info and capabilities in ``_meta``; the ``Mcp-*`` headers over HTTP). The
    SDK would build a typed request, then validate and type the result; a proxy that forwards
    the result needs neither. As the session does, fields of a revision later than the one
    negotiated are dropped. ``via`` sends the stamped request instead of the session's
    dispatcher (a stdio child's own line writer).

    Raises:
        MCPError: The server answered with an error, or the connection closed.
    """
    session = client.session
    params: dict[str, Any] = {"name": name}
    if arguments is not None:
        params["arguments"] = arguments
    data: dict[str, Any] = {"method": "tools/call", "params": params}
    opts: CallOptions = {}
    session._stamp(data, opts)  # pyright: ignore[reportPrivateUsage]
    opts.setdefault("headers", {}).setdefault(MCP_NAME_HEADER, encode_header_value(name))
    if via is not None:
        raw = await via("tools/call", data["params"])
    else:
        raw = await session._dispatcher.send_raw_request("tools/call", data["params"], opts)  # pyright: ignore[reportPrivateUsage]
    foreign = _later_revision_fields("tools/call", client.protocol_version or LATEST_HANDSHAKE_VERSION)
    if foreign and not foreign.isdisjoint(raw):
        raw = {key: value for key, value in raw.items() if key not in foreign}
    return raw


async def check_tool_output(client: Client, name: str, raw: dict[str, Any]) -> None:
    """``ClientSession.validate_tool_result`` on a successful result as sent (``send_tool_call``'s).

    The same check with the session's cached validator, without typing the whole result first.

    Raises:
        RuntimeError: As ``validate_tool_result`` raises it (the structured content is missing
            or does not fit the tool's ``outputSchema``, or the schema is not valid).
    """
    session = client.session
    schemas = session._tool_output_schemas  # pyright: ignore[reportPrivateUsage]
    if name not in schemas:  # never listed by this session: the SDK lists first, then checks
        typed = session._call_tool_adapter.validate_python(raw, by_name=False)  # pyright: ignore[reportPrivateUsage]
        if isinstance(typed, types.CallToolResult):
            await session.validate_tool_result(name, typed)
        return
    schema = schemas[name]
    if schema is None:
        return
    if "structuredContent" not in raw:
        raise RuntimeError(f"Tool {name} has an output schema but did not return structured content")
    from jsonschema import exceptions as jsonschema_exceptions
    from referencing.exceptions import Unresolvable

    validator = session._output_schema_validator(name, schema)  # pyright: ignore[reportPrivateUsage]
    try:
        error = cast(
            "Exception | None",
            jsonschema_exceptions.best_match(validator.iter_errors(raw["structuredContent"])),  # pyright: ignore[reportUnknownMemberType]
        )
    except Unresolvable as exc:
        raise RuntimeError(f"Invalid schema for tool {name}: {exc}") from exc
    if error is not None:
        raise RuntimeError(f"Invalid structured content returned by tool {name}: {error}") from error


async def finish_tool_call(
    client: Client, name: str, arguments: dict[str, Any] | None, raw: dict[str, Any]
) -> types.CallToolResult:
    """The result ``Client.call_tool`` makes of ``raw``, the first answer to ``send_tool_call``.

    It is checked and typed as the session does, and input rounds the server asks for are
    answered through the client's callbacks, as ``Client.call_tool`` answers them.

    Raises:
        MCPError: A later round was answered with an error.
        pydantic.ValidationError: ``raw`` is not a ``tools/call`` result.
        RuntimeError: The server answered with a result shape this client did not ask for.
    """
    session = client.session
    first = session._call_tool_adapter.validate_python(raw, by_name=False)  # pyright: ignore[reportPrivateUsage]

    async def retry(
        responses: types.InputResponses | None, state: str | None
    ) -> types.CallToolResult | types.InputRequiredResult | types.Result:
        return await session.call_tool(
            name,
            arguments,
            read_timeout_seconds=math.inf,
            input_responses=responses,
            request_state=state,
            allow_input_required=True,
            allow_claimed=True,
        )

    result = await client._drive_input_required(first, retry)  # pyright: ignore[reportPrivateUsage]
    if not isinstance(result, types.CallToolResult):
        raise RuntimeError(f"Tool {name} answered with a result shape this client did not ask for")
    return result


def later_revision_fields(method: str, version: str) -> frozenset[str]:
    """Result keys of ``method`` that revisions after ``version`` added (the SDK client drops them)."""
    return _later_revision_fields(method, version)


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
