"""Transports to downstream servers, built from their config entries.

stdio children are started by ``_stdio``; HTTP and legacy SSE use the SDK's clients with the
server's configured headers (and nothing from the upstream request), over the egress guard:
every request's host is resolved and checked (``EgressRules``; the config URL's own origin may
reach private and loopback addresses, any other host must be public) and the connection goes
to the checked address. The config URL is checked once before the SDK's client starts, so a
refused server fails at once with the reason. A server that signs in with OAuth gets the
``httpx2.Auth`` its ``AuthForFn`` builds (the layer above owns the tokens; this one only
notices when the auth says a login is needed); its discovery and token requests go over the
same guarded client. Each transport is
wrapped so the supervisor learns the moment a connection ends (a stdio
child exiting closes its stdout): in-flight calls then fail at once and a restart begins.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import httpx2
from mcp.client import Transport
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from orchestrator._egress import EgressRules, GuardedTransport, resolve_checked
from orchestrator._sdk_internals import (
    McpHttpClientFactory,
    ReadStream,
    TransportStreams,
    WrappedReadStream,
    create_mcp_http_client,
)
from orchestrator.config import HttpServerSpec, ServerSpec, StdioServerSpec
from orchestrator.downstream._stdio import stdio_transport
from orchestrator.errors import DownstreamLoginRequired
from orchestrator.tracing import copy_trace_context_to_headers

if TYPE_CHECKING:
    from mcp.shared.message import SessionMessage

    from orchestrator.downstream._stderr import StderrDrain
    from orchestrator.downstream._stdio_calls import StdioCalls

__all__ = [
    "AuthForFn",
    "HttpStatusNote",
    "LoginRequiredFn",
    "LoginWatch",
    "TransportFactoryFn",
    "http_status_note",
    "open_transport",
    "secret_values",
]

TransportFactoryFn = Callable[[str], Transport]
"""Builds the transport to the server of a key in place of its config entry's (e.g. to an
in-process server); called for every connection attempt."""


AuthForFn = Callable[[str, HttpServerSpec], "httpx2.Auth | None"]
"""Builds the ``httpx2.Auth`` of one connection to the HTTP server of a key (``None``: none).

It raises ``DownstreamLoginRequired`` from its flow when only ``orchestrator login`` can help."""
LoginRequiredFn = Callable[[DownstreamLoginRequired], None]


class LoginWatch(httpx2.Auth):
    """Runs another auth's flow, and tells ``on_login_required`` the moment it says a login is needed.

    The error also ends the connection (it escapes the transport); being told first lets the
    calls in flight fail with it rather than with "connection lost".
    """

    def __init__(self, inner: httpx2.Auth, on_login_required: LoginRequiredFn) -> None:
        self._inner = inner
        self._on_login_required = on_login_required

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        flow = self._inner.async_auth_flow(request)
        try:
            outgoing = await flow.__anext__()
            while True:
                response = yield outgoing
                outgoing = await flow.asend(response)
        except StopAsyncIteration:
            return
        except DownstreamLoginRequired as exc:
            self._on_login_required(exc)
            raise
        finally:
            await flow.aclose()


@dataclass(slots=True)
class HttpStatusNote:
    """Filled in by the HTTP client when a request of the current call got a 5xx status."""

    status: int | None = None


http_status_note: ContextVar[HttpStatusNote | None] = ContextVar("orchestrator_http_status_note", default=None)
"""Set around a downstream request; the SDK reports an HTTP 5xx only as a JSON-RPC internal
error, and this tells the two apart (a 502/503/504 is a transport fault worth a retry)."""


async def _note_server_error(response: httpx2.Response) -> None:
    note = http_status_note.get()
    if note is not None and response.status_code >= 500:
        note.status = response.status_code


def secret_values(spec: ServerSpec) -> tuple[str, ...]:
    """Every configured secret of a server (env values, header values), for masking."""
    if isinstance(spec, StdioServerSpec):
        return tuple(v.get_secret_value() for v in spec.env.values())
    return tuple(v.get_secret_value() for v in spec.headers.values())


class _WatchedReadStream(WrappedReadStream):
    """A read stream that sets ``lost`` when the underlying stream ends for any reason."""

    def __init__(self, inner: ReadStream[SessionMessage | Exception], lost: anyio.Event) -> None:
        super().__init__(inner)
        self._lost = lost

    async def receive(self) -> SessionMessage | Exception:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._lost.set()
            raise

    async def aclose(self) -> None:
        self._lost.set()
        await self._inner.aclose()


@asynccontextmanager
async def _http(
    spec: HttpServerSpec, egress: EgressRules, auth: httpx2.Auth | None
) -> AsyncGenerator[TransportStreams, None]:
    headers = {k: v.get_secret_value() for k, v in spec.headers.items()}
    # Checked here too, before the SDK's client runs: a refusal inside it would be a failed POST.
    await resolve_checked(httpx2.URL(spec.url), egress, "config")
    http_client_factory = _guarded(spec, egress)
    if spec.type == "sse":
        async with sse_client(
            spec.url, headers=headers, httpx_client_factory=http_client_factory, auth=auth
        ) as streams:
            yield streams
        return
    async with (
        http_client_factory(headers=headers, auth=auth) as http_client,
        streamable_http_client(spec.url, http_client=http_client) as streams,
    ):
        yield streams


def _guarded(spec: HttpServerSpec, egress: EgressRules) -> McpHttpClientFactory:
    """Makes ``_traced_http_client``s whose every connection passes the egress guard."""

    def factory(
        headers: dict[str, str] | None = None, timeout: httpx2.Timeout | None = None, auth: httpx2.Auth | None = None
    ) -> httpx2.AsyncClient:
        return _traced_http_client(headers, timeout, auth, transport=GuardedTransport(egress, config_urls=[spec.url]))

    return factory


def _traced_http_client(
    headers: dict[str, str] | None = None,
    timeout: httpx2.Timeout | None = None,
    auth: httpx2.Auth | None = None,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> httpx2.AsyncClient:
    """The SDK's HTTP client, also carrying each message's trace context as HTTP headers."""
    client = create_mcp_http_client(headers=headers, timeout=timeout, auth=auth, transport=transport)
    client.event_hooks["request"].append(copy_trace_context_to_headers)
    client.event_hooks["response"].append(_note_server_error)
    return client


@asynccontextmanager
async def open_transport(
    spec: ServerSpec,
    lost: anyio.Event,
    drain: StderrDrain | None,
    extra_env: Mapping[str, str] | None = None,
    *,
    transport: Transport | None = None,
    egress: EgressRules | None = None,
    auth: httpx2.Auth | None = None,
    on_calls: Callable[[StdioCalls], None] | None = None,
) -> AsyncGenerator[TransportStreams, None]:
    """Open ``transport``, or the one ``spec`` describes; ``lost`` is set when the connection ends.

    Args:
        spec: The server's entry.
        lost: Set when the connection ends.
        drain: Where a stdio child's stderr goes.
        extra_env: More environment for a stdio child.
        transport: Use this instead of what ``spec`` describes.
        egress: The rules HTTP connections follow (default: nothing in ``egress.allow``).
        auth: Authenticates every HTTP request (OAuth), for an HTTP server.
        on_calls: Given a stdio child's ``StdioCalls`` (the pass-through path's requests).

    Raises:
        OSError: The stdio command could not be started, or an HTTP server's name does not resolve.
        EgressRefused: An HTTP server's URL resolves to an address it may not reach.
    """
    async with AsyncExitStack() as stack:
        if transport is not None:
            read, write = await stack.enter_async_context(transport)
        elif isinstance(spec, StdioServerSpec):
            assert drain is not None, "stdio servers need a stderr drain"
            read, write = await stack.enter_async_context(stdio_transport(spec, drain, extra_env, on_calls))
        else:
            read, write = await stack.enter_async_context(_http(spec, egress or EgressRules(), auth))
        try:
            yield _WatchedReadStream(read, lost), write
        finally:
            lost.set()
