"""One supervised client connection to one downstream MCP server: supervision and calls.

The supervisor connects, lists the server's catalogue (``_listing``), publishes it, and then
watches the connection: it probes the server while idle (``_health``) and re-lists on change
notifications. When the server fails to start, or its connection ends, it is retried with
capped, jittered back-off, forever. A server that needs an OAuth login (its auth says so)
waits quietly in ``needs_login`` instead, checking now and then (without a request to the
server) whether someone has logged in. Calls made while it is down fail at once with
``DownstreamNotConnected``; calls in flight when it dies fail at once too; calls while its
circuit breaker is open fail at once with ``DownstreamCircuitOpen``. Calls to read-only or
idempotent tools may be retried after a transport fault (``_retry``).

A lazy server (``start: lazy``) is connected on demand. Once its listing is known (kept from
its last run, or learnt by starting it once), it is ``cold``: not started, not probed, its
tools served. The first request that needs it starts it (concurrent ones share that start),
waits until its live listing has been published (and judged), then goes out; a start that
fails fails that request only, and the server stays cold. After ``idle_timeout`` with no
request in flight it is stopped again (its whole process group) and goes back to cold; a
connection it loses also leaves it cold until the next request.

Does not: list catalogues (``_listing``), decide which ``DownstreamError`` a lower-level
exception stands for (``_error_mapping``, applied to every request here), or answer the
server's own requests for input (``_caller_requests`` hands them to the caller's client).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from contextlib import AbstractContextManager, AsyncExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import anyio
import anyio.abc
import mcp_types as types
from mcp import Client, MCPError
from mcp.client.extension import advertise
from mcp_types import CONNECTION_CLOSED, HEADER_MISMATCH, REQUEST_TIMEOUT
from mcp_types.version import LATEST_HANDSHAKE_VERSION, MODERN_PROTOCOL_VERSIONS
from opentelemetry.trace import SpanKind

from orchestrator._masking import SecretMasker
from orchestrator._sdk_internals import check_tool_output, finish_tool_call, send_tool_call
from orchestrator._version import NAME, __version__
from orchestrator.catalog import APP_MIME_TYPE, UI_EXTENSION
from orchestrator.config import HttpServerSpec, ServerSpec, StdioServerSpec
from orchestrator.downstream._breaker import BreakerSnapshot, CircuitBreaker
from orchestrator.downstream._caller_requests import CallerRequests
from orchestrator.downstream._deadline import CallDeadline, current_deadline
from orchestrator.downstream._demand import DemandStart
from orchestrator.downstream._error_mapping import (
    REQUEST_FAULTS,
    closes_connection,
    describe_fault,
    downstream_error,
    interrupted_request_error,
    output_schema_error,
)
from orchestrator.downstream._health import HealthMonitor
from orchestrator.downstream._judged_client import JudgedClient, StreamsTransport
from orchestrator.downstream._listing import CatalogueWatch, ManifestFn, fetch_manifest
from orchestrator.downstream._progress import ProgressRelay
from orchestrator.downstream._retry import BackoffPolicy, RetryBudget, call_with_retries, reconnect_attempts
from orchestrator.downstream._stderr import StderrDrain
from orchestrator.downstream._transport import (
    AuthForFn,
    HttpStatusNote,
    LoginWatch,
    TransportFactoryFn,
    http_status_note,
    open_transport,
    secret_values,
)
from orchestrator.downstream._upstream_peer import UpstreamPeer, current_peer
from orchestrator.downstream._wire_result import WireResult
from orchestrator.errors import (
    DownstreamError,
    DownstreamLoginRequired,
    DownstreamNotConnected,
    DownstreamTimeout,
    DownstreamToolError,
    DownstreamUnavailable,
)
from orchestrator.tracing import DownstreamTransport, downstream_call_attributes, http_address, tracer, untraced

if TYPE_CHECKING:
    from mcp.shared.dispatcher import ProgressFnT

    from orchestrator._egress import EgressRules
    from orchestrator.catalog import ServerManifest
    from orchestrator.downstream._stdio_calls import StdioCalls

__all__ = ["DownstreamServer", "ServerState", "ServerStatus"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

ServerState = Literal["starting", "ready", "restarting", "needs_login", "cold", "stopped"]
HealthChangeFn = Callable[[], Awaitable[None]]
"""Told when the server becomes healthy or unhealthy (its ``status()`` says which)."""
ResourceUpdatedFn = Callable[[str, str], Awaitable[None]]
"""Told ``(server key, resource URI)`` when a server says one of its resources changed."""

_UNREADABLE_LIMIT = 1000
"""Unreadable stdout lines after which a connection counts as broken and is restarted."""
_CLIENT_INFO = types.Implementation(name=NAME, version=__version__)

# Apps reach the clients that render them: one connection serves every client, so the
# aggregator declares MCP Apps support downstream (both eras) and adapts the catalogue to each
# client upstream (a client without it is not shown app-only tools).
_APPS_EXTENSION = advertise(UI_EXTENSION, {"mimeTypes": [APP_MIME_TYPE]})
_LOGIN_POLL = 5.0
"""Seconds between checks, by a server waiting for a login, whether someone has logged in."""


def _is_plain_success(raw: dict[str, Any]) -> bool:
    """Whether a ``tools/call`` answer is a complete, successful result in the usual shape."""
    return (
        raw.get("resultType", "complete") == "complete"
        and isinstance(raw.get("content"), list)
        and raw.get("isError") in (None, False)
    )


def _login_required(exc: BaseException) -> DownstreamLoginRequired | None:
    """The ``DownstreamLoginRequired`` in ``exc`` (escaping a transport, it arrives in exception groups)."""
    if isinstance(exc, DownstreamLoginRequired):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in cast("tuple[BaseException, ...]", exc.exceptions):  # pyright: ignore[reportUnknownMemberType]
            found = _login_required(inner)
            if found is not None:
                return found
    return _login_required(exc.__cause__) if exc.__cause__ is not None else None


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """A snapshot of one downstream server's health, for ``doctor``, ``status`` and logs.

    Attributes:
        healthy: Connected and answering probes; an unhealthy server's tools are withdrawn
            unless its ``health.on_unhealthy`` is ``keep``.
        health_reason: Why it is not healthy (``None`` when it is).
        breaker: Its circuit breaker's state.
        restarts: Connections lost since it first came up (a lazy server stopped when idle
            is not counted).
    """

    server: str
    state: ServerState
    protocol_version: str | None
    tool_count: int
    last_error: str | None
    start_seconds: float | None
    stderr_tail: str
    healthy: bool = False
    health_reason: str | None = None
    breaker: BreakerSnapshot | None = None
    restarts: int = 0


class DownstreamServer:
    """A downstream server kept connected by a supervisor task (``run``)."""

    def __init__(
        self,
        name: str,
        spec: ServerSpec,
        *,
        on_manifest: ManifestFn,
        policy: BackoffPolicy | None = None,
        prefix: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        on_resource_updated: ResourceUpdatedFn | None = None,
        on_health_change: HealthChangeFn | None = None,
        transports: TransportFactoryFn | None = None,
        egress: Callable[[], EgressRules] | None = None,
        auth_for: AuthForFn | None = None,
    ) -> None:
        self.name = name
        self._egress = egress
        self._transports = transports
        self._auth_for = auth_for
        self._needs_login: DownstreamLoginRequired | None = None
        """Set while only an OAuth login can bring the server up; told by its auth."""
        self._on_resource_updated = on_resource_updated
        self._extra_env = extra_env
        self.spec = spec
        self._on_manifest = on_manifest
        self._policy = policy or BackoffPolicy()
        self._prefix = prefix
        self._client: Client | None = None
        # The stdio child of a connection and its writer of pass-through requests, while connected.
        self._line_calls: tuple[Client, StdioCalls] | None = None
        self._lost: anyio.Event | None = None
        self._state: ServerState = "starting"
        self._last_error: str | None = None
        self._start_seconds: float | None = None
        self._masker = SecretMasker(secret_values(spec))
        self._drain = StderrDrain(name, self._masker) if isinstance(spec, StdioServerSpec) else None
        self._tool_count = 0
        self._settled = anyio.Event()
        self._caller_requests = CallerRequests(name, lambda: self.spec.input_timeout)
        self._catalogue = CatalogueWatch(name, self._list_all, self._publish_relisted, lambda: self.spec.timeout)
        self._inflight: set[anyio.CancelScope] = set()
        self._unreadable = 0
        self._on_health_change = on_health_change
        self.health = HealthMonitor(name, spec.health, self._health_changed)
        self._breaker = CircuitBreaker(name, spec.circuit_breaker)
        self._retry_budget = RetryBudget(spec.retry.budget_ratio, spec.retry.min_retries)
        self._connected = anyio.Event()
        """Set while connected; a fresh, unset one replaces it when the connection is lost."""
        self._restarts = 0
        self._subscribed: set[str] = set()
        self._demand = DemandStart(spec.start == "lazy")
        self._ever_connected = False

    async def _health_changed(self) -> None:
        if self._on_health_change is not None:
            await self._on_health_change()

    # ----------------------------------------------------------------- status

    def status(self) -> ServerStatus:
        """The server's current health."""
        client = self._client
        return ServerStatus(
            server=self.name,
            state=self._state,
            protocol_version=client.protocol_version if client is not None else None,
            tool_count=self._tool_count,
            last_error=self._masker.mask(self._last_error) if self._last_error else None,
            start_seconds=self._start_seconds,
            stderr_tail=self._drain.tail() if self._drain is not None else "",
            healthy=self.health.healthy,
            health_reason=self._masker.mask(self.health.reason) if self.health.reason else None,
            breaker=self._breaker.snapshot(),
            restarts=self._restarts,
        )

    @property
    def settled(self) -> bool:
        """Whether the first start attempt has succeeded or failed."""
        return self._settled.is_set()

    async def wait_settled(self) -> None:
        """Wait until the first start attempt has succeeded or failed."""
        await self._settled.wait()

    @property
    def extensions(self) -> frozenset[str]:
        """The extensions the server declared when it last connected (none while it is not connected)."""
        client = self._client
        declared = client.server_capabilities.extensions if client is not None else None
        return frozenset(declared or ())

    @property
    def lazy(self) -> bool:
        """Whether the server is ``start: lazy``."""
        return self._demand.lazy

    @property
    def cold(self) -> bool:
        """Whether it is a lazy server that is not running now (a request would start it)."""
        return self._state == "cold"

    async def relist(self) -> None:
        """List the server again now, as if it said its lists changed, and wait until that listing is published.

        Nothing to do while it is not connected: its next connection lists it anyway. A wait
        for a connection that drops meanwhile does not end by itself; bound it.
        """
        if self._client is None:
            return
        await self._catalogue.relisted()

    def reconfigure(self, spec: ServerSpec, prefix: str | None) -> None:
        """Take on changed settings that need no new connection (see ``DownstreamPool.apply``).

        Switched to ``eager``, a cold server is started now and kept connected; switched to
        ``lazy``, a connected one is stopped once idle for ``idle_timeout``; a changed
        ``idle_timeout`` counts from the last request.
        """
        old, self.spec, self._prefix = self.spec, spec, prefix
        self._demand.reconfigure(spec.start == "lazy")
        self.health.reconfigure(spec.health)
        if spec.circuit_breaker != old.circuit_breaker:
            self._breaker = CircuitBreaker(self.name, spec.circuit_breaker)
        if spec.retry != old.retry:
            self._retry_budget = RetryBudget(spec.retry.budget_ratio, spec.retry.min_retries)

    def reshape(self, manifest: ServerManifest) -> ServerManifest:
        """``manifest`` with this server's current prefix and tool filter."""
        return replace(manifest, prefix=self._prefix, tool_filter=self.spec.tools)

    @property
    def healthy(self) -> bool:
        """Whether the server is fit to serve (see ``HealthMonitor``; a cold server is)."""
        return self.health.healthy

    # ------------------------------------------------------------ lazy start

    async def serve_cold(self, tool_count: int) -> None:
        """Before ``run``: its listing is known (kept from its last run), so it starts only when needed."""
        self._demand.on_demand = True
        self._state = "cold"
        self._tool_count = tool_count
        await self.health.mark_cold()

    def settle(self) -> None:
        """Its first start attempt counts as made (a cold server whose kept listing is published)."""
        self._settled.set()

    async def wake(self) -> None:
        """Start a cold lazy server and wait until its live listing is published; at once otherwise.

        Concurrent callers share one start. The wait is bounded by the server's ``timeout``
        (a start still under way then goes on, for the next request).

        Raises:
            DownstreamUnavailable: It failed to start (or stopped while starting).
            DownstreamLoginRequired: It needs an OAuth login first.
            DownstreamTimeout: It did not start within its ``timeout``.
        """
        demand = self._demand
        waking = demand.pending
        if waking is None:
            if not demand.on_demand or (self._client is not None and not demand.idle_stop):
                return
            waking = demand.request_start()
        limit = self.spec.timeout
        with anyio.move_on_after(limit):
            await waking.done.wait()
        if not waking.done.is_set():
            raise DownstreamTimeout(self.name, f"did not start within {limit:g}s (lazy: started by this call)", limit)
        error = waking.error
        if error is not None:  # a fresh one for each waiter: one exception raised in many tasks mixes tracebacks
            raise type(error)(error.server, error.detail)

    async def _go_cold(self) -> None:
        """Stopped (its process group gone): cold, tools still served, until a request needs it."""
        self._demand.went_cold()
        self._state = "cold"
        logger.info("server %r is cold: stopped until a call needs it", self.name)
        await self.health.mark_cold()

    async def _stop_when_idle(self, lost: anyio.Event) -> None:
        """While lazy: close the connection once no request has been in flight for ``idle_timeout``."""
        await self._demand.wait_idle(lambda: bool(self._inflight), lambda: self.spec.idle_timeout)
        logger.info("server %r: idle for %gs; stopping it until a call needs it", self.name, self.spec.idle_timeout)
        lost.set()

    # ------------------------------------------------------------- supervisor

    async def run(self) -> None:
        """Keep the server connected (a lazy one: when needed) until cancelled; never returns otherwise."""
        try:
            async with anyio.create_task_group() as watchers:
                while True:
                    if self._demand.on_demand:
                        await self._serve_on_demand(watchers)
                        continue
                    async for attempt in reconnect_attempts(self.name, self._policy):
                        with attempt:
                            await self._serve_once(watchers)
                    if self._demand.idle_stop:
                        await self._go_cold()
                        continue
                    self._state = "restarting"
                    logger.warning("server %r connection ended; reconnecting", self.name)
        finally:
            self._state = "stopped"
            self._client = None
            self._demand.finish_start(DownstreamNotConnected(self.name, "stopped"))

    async def _serve_on_demand(self, watchers: anyio.abc.TaskGroup) -> None:
        """Cold until a request asks for the server; then one start, served until idle or lost."""
        await self._demand.wait_for_request()
        self._state = "starting"
        try:
            await self._serve_once(watchers)
            problem = None if self._demand.idle_stop else "connection ended"
        except DownstreamUnavailable as exc:  # the request that asked has been told; the next one tries again
            problem = exc.detail
        if problem is not None:
            logger.warning("server %r (lazy): %s; cold until a call needs it", self.name, problem)
            # A start that ended before it was up; after an idle stop, a pending start is a new one.
            self._demand.finish_start(DownstreamUnavailable(self.name, self._last_error or problem))
        if self._demand.on_demand:
            await self._go_cold()

    async def _serve_once(self, watchers: anyio.abc.TaskGroup) -> None:
        """``_connect_once``, again every few seconds, quietly, while the server needs a login."""
        while True:
            try:
                await self._connect_once(watchers)
                return
            except DownstreamLoginRequired:
                # Only `orchestrator login` helps: no back-off warnings; the auth checks the store
                # before it sends anything, so waiting costs no request to the server.
                await anyio.sleep(_LOGIN_POLL)

    def _login_needed(self, needed: DownstreamLoginRequired) -> None:
        """The server's auth says only a login can help (from the transport, before the error unwinds)."""
        self._needs_login = needed

    def _auth(self) -> LoginWatch | None:
        if self._auth_for is None or not isinstance(self.spec, HttpServerSpec):
            return None
        auth = self._auth_for(self.name, self.spec)
        return LoginWatch(auth, self._login_needed) if auth is not None else None

    async def _wait_for_login(self, needed: DownstreamLoginRequired) -> DownstreamLoginRequired:
        """Enter ``needs_login``: tools withdrawn, the reason kept, logged once per reason."""
        if self._last_error != needed.detail or self._state != "needs_login":
            logger.warning("server %r: %s", self.name, needed.detail)
        self._needs_login = needed
        self._state = "needs_login"
        self._last_error = needed.detail
        self._demand.finish_start(DownstreamLoginRequired(self.name, needed.detail))
        await self.health.mark_unhealthy(needed.detail)
        self._settled.set()
        return needed

    async def _connect_once(self, watchers: anyio.abc.TaskGroup) -> None:
        """Connect, publish the catalogue, and wait until the connection ends.

        Returns normally when a connection that had been stable ends (the back-off resets);
        raises ``DownstreamUnavailable`` when the server fails to start or dies soon after.
        """
        lost = anyio.Event()
        started = time.monotonic()
        self._unreadable = 0
        drain = self._drain
        connected = False
        try:
            async with AsyncExitStack() as stack:
                transport = self._transports(self.name) if self._transports is not None else None
                line_calls: list[StdioCalls] = []
                streams = await stack.enter_async_context(
                    open_transport(
                        self.spec,
                        lost,
                        drain,
                        self._extra_env,
                        transport=transport,
                        egress=self._egress() if self._egress is not None else None,
                        auth=self._auth(),
                        on_calls=line_calls.append,
                    )
                )
                client = JudgedClient(
                    self._catalogue.relisted,
                    StreamsTransport(streams),
                    mode="auto",
                    cache=None,
                    # Bounds the handshake and listings; calls pass their own timeout.
                    read_timeout_seconds=self.spec.timeout,
                    client_info=_CLIENT_INFO,
                    extensions=[_APPS_EXTENSION],
                    sampling_callback=self._caller_requests.on_sampling,
                    elicitation_callback=self._caller_requests.on_elicitation,
                    list_roots_callback=self._caller_requests.on_list_roots,
                    logging_callback=self._caller_requests.on_log,
                    message_handler=self._on_message,
                    log_level="info",
                )
                self._line_calls = (client, line_calls[0]) if line_calls else None
                # One trace per connection groups the handshake and the listings.
                with tracer.start_as_current_span(f"connect {self.name}", kind=SpanKind.INTERNAL):
                    await stack.enter_async_context(client)
                    manifest = await self._list_all(client)
                connected = True
                await self._serve_connected(client, manifest, lost, time.monotonic() - started, watchers)
        # Boundary: whatever a third-party server does wrong is logged and retried, never fatal.
        except Exception as exc:
            needed = _login_required(exc)
            if needed is not None:
                raise await self._wait_for_login(needed) from None
            if not connected:
                self._last_error = f"failed to start: {describe_fault(exc)}"
                failure = DownstreamUnavailable(self.name, self._last_error)
                self._demand.finish_start(failure)
                if not self._demand.on_demand:  # a cold server's tools stay served: the next call tries again
                    self._state = "restarting"
                    await self.health.mark_unhealthy(self._last_error)
                self._settled.set()
                raise failure from exc
            logger.info("server %r: connection closed with an error: %s", self.name, describe_fault(exc))
        if self._demand.idle_stop:
            return
        healthy_for = time.monotonic() - started
        self._last_error = "connection lost"
        if healthy_for < self._policy.stable_after:
            raise DownstreamUnavailable(self.name, f"connection lost after {healthy_for:.1f}s")

    async def _serve_connected(
        self,
        client: Client,
        manifest: ServerManifest,
        lost: anyio.Event,
        start_seconds: float,
        watchers: anyio.abc.TaskGroup,
    ) -> None:
        """Publish the catalogue and keep it current (and probed) until the connection is lost."""
        self._start_seconds = start_seconds
        self._client = client
        self._lost = lost
        self._state = "ready"
        self._last_error = None
        self._needs_login = None
        self._tool_count = len(manifest.tools)
        self._connected.set()
        logger.info(
            "server %r ready: %d tools, protocol %s, %.2fs",
            self.name,
            len(manifest.tools),
            client.protocol_version,
            start_seconds,
        )
        try:
            await self._on_manifest(manifest)
            await self.health.mark_healthy()
            # Settled only now: a caller waiting for start-up finds these tools in the catalogue,
            # and a request that started a lazy server meets its live listing as judged.
            self._settled.set()
            self._demand.restart_idle_clock()  # a lazy server's idle time counts from here
            self._demand.finish_start(None)
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._catalogue.watch, client, manifest)
                tg.start_soon(self.health.probe_while_connected, lambda: self._probe(client))
                tg.start_soon(self._stop_when_idle, lost)
                if self._subscribed and self._ever_connected:
                    tg.start_soon(self._resubscribe)
                self._ever_connected = True
                await lost.wait()
                tg.cancel_scope.cancel()
        finally:
            self._forget(client)
            self._lost = None
            self._state = "restarting"
            # Calls in flight on a dead connection fail now, not at their timeout.
            for scope in list(self._inflight):
                scope.cancel()
            if not self._demand.idle_stop:
                self._restarts += 1
            if not self._demand.idle_stop and not self._demand.on_demand:  # a lazy server goes cold, not down
                watchers.start_soon(self.health.watch_downtime, self._connected, lambda: self._last_error)

    async def _resubscribe(self) -> None:
        """After a restart: the new process knows nothing of the subscriptions clients hold."""
        for uri in list(self._subscribed):
            try:
                await self.subscribe_resource(uri)
            except DownstreamError as exc:
                logger.info("server %r: could not renew the subscription to %s: %s", self.name, uri, exc)

    def _forget(self, client: Client) -> None:
        """The connection of ``client`` is gone: calls fail fast until a new one is up."""
        if self._client is client:
            self._client = None
            self._connected = anyio.Event()
        if self._line_calls is not None and self._line_calls[0] is client:
            self._line_calls = None

    def _connection_closed(self, client: Client) -> None:
        """A request learnt that the connection of ``client`` closed: the supervisor restarts it."""
        lost = self._lost
        self._forget(client)
        if lost is not None:
            lost.set()

    async def wait_connected(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for the server to be connected; whether it is."""
        with anyio.move_on_after(timeout):
            await self._connected.wait()
        return self._client is not None

    async def _probe(self, client: Client) -> None:
        """One health probe: any answer, even an error, proves the server alive.

        Raises:
            TimeoutError: The server did not answer in time.
            ConnectionError: The connection closed under the probe.
        """
        try:
            with untraced():  # housekeeping: a probe every interval would drown real traces
                if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
                    await client.session.send_discover(client.protocol_version)
                else:
                    await client.session.send_ping()
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                raise TimeoutError from exc
            if exc.code == CONNECTION_CLOSED:
                raise ConnectionError("connection closed") from exc

    async def _list_all(self, client: Client) -> ServerManifest:
        return await fetch_manifest(client, self.name, self._prefix, self.spec.tools)

    async def _publish_relisted(self, manifest: ServerManifest) -> None:
        self._tool_count = len(manifest.tools)
        await self._on_manifest(manifest)

    # ------------------------------------------------------------ notifications

    async def _on_message(self, message: types.ServerNotification | Exception) -> None:
        if isinstance(message, Exception):
            self._unreadable += 1
            if self._unreadable <= 10 or self._unreadable % 100 == 0:
                # Only the kind of fault: the line itself may hold anything, secrets included.
                logger.warning(
                    "server %r sent an unreadable message (%d so far): %s",
                    self.name,
                    self._unreadable,
                    type(message).__name__,
                )
            if self._unreadable >= _UNREADABLE_LIMIT and self._lost is not None:
                logger.error("server %r sent %d unreadable messages; restarting it", self.name, self._unreadable)
                self._lost.set()
            return
        if isinstance(
            message,
            types.ToolListChangedNotification
            | types.PromptListChangedNotification
            | types.ResourceListChangedNotification,
        ):
            self._catalogue.changed()
        elif isinstance(message, types.ResourceUpdatedNotification) and self._on_resource_updated is not None:
            await self._on_resource_updated(self.name, str(message.params.uri))

    # -------------------------------------------------------------------- calls

    async def call_tool(
        self,
        tool: str,
        arguments: dict[str, Any] | None,
        *,
        timeout: float | None = None,
        progress: ProgressFnT | None = None,
        peer: UpstreamPeer | None = None,
        meta: dict[str, Any] | None = None,
        retry: bool = False,
    ) -> types.CallToolResult:
        """Call ``tool`` on this server.

        Args:
            tool: The tool's name on this server.
            arguments: Its arguments.
            timeout: The call's time limit (retries included); default the server's ``timeout``.
            progress: Where the server's progress notifications go.
            peer: The upstream client of the call (for sampling, elicitation, roots, logs).
            meta: Extra ``_meta`` for the request.
            retry: Whether the call may be retried after a transport fault (by the server's
                ``retry`` settings): only for tools known to be read-only or idempotent.

        Raises:
            DownstreamNotConnected: The server is not connected.
            DownstreamCircuitOpen: Its circuit breaker is open.
            DownstreamUnavailable: It died during the call, or its transport failed.
            DownstreamTimeout: The call ran past its timeout (the server was sent a cancellation).
            DownstreamToolError: The server answered with a JSON-RPC error.
            DownstreamOutputInvalid: Its result does not fit the tool's own ``outputSchema``.
        """
        relay = ProgressRelay(progress) if progress is not None else None

        async def attempt(attempt_limit: float) -> types.CallToolResult:
            async def send(client: Client) -> types.CallToolResult:
                with self._output_checked(tool):
                    result = await client.call_tool(
                        tool,
                        arguments,
                        # The limit is kept by `_request`'s deadline, which stops while a person answers.
                        read_timeout_seconds=math.inf,
                        progress_callback=relay,
                        meta=cast("types.RequestParamsMeta", meta) if meta else None,
                    )
                if relay is not None:
                    await relay.drained()  # its last progress report goes before the result
                return self._masked(result) if result.is_error else result

            return await self._request(f"tools/call {tool}", send, attempt_limit, peer)

        return await self._attempts(attempt, timeout, retry=retry)

    async def call_tool_wire(
        self,
        tool: str,
        arguments: dict[str, Any] | None,
        *,
        timeout: float | None = None,
        peer: UpstreamPeer | None = None,
        retry: bool = False,
    ) -> WireResult | types.CallToolResult:
        """``call_tool`` without progress or extra ``_meta``, its usual answer left as the server sent it.

        A successful ``resultType: complete`` answer comes back as its JSON object, untyped; its
        structured content is checked against the tool's ``outputSchema`` as ``call_tool``
        checks it. An error result, or one reached through input rounds, comes back typed,
        exactly as from ``call_tool``.

        Raises:
            DownstreamError: As for ``call_tool``.
        """

        async def attempt(attempt_limit: float) -> WireResult | types.CallToolResult:
            async def send(client: Client) -> WireResult | types.CallToolResult:
                with self._output_checked(tool):
                    try:
                        raw = await send_tool_call(client, tool, arguments, self._line_requests(client))
                    except MCPError as exc:
                        if exc.code != HEADER_MISMATCH:
                            raise
                        # Nothing ran: Client.call_tool re-lists the tool and sends it again.
                        raw = None
                    if raw is not None and _is_plain_success(raw):
                        await check_tool_output(client, tool, raw)
                        return WireResult(raw, client.protocol_version or LATEST_HANDSHAKE_VERSION)
                    if raw is None:
                        result = await client.call_tool(tool, arguments, read_timeout_seconds=math.inf)
                    else:
                        result = await finish_tool_call(client, tool, arguments, raw)
                        if not result.is_error:
                            await client.session.validate_tool_result(tool, result)
                return self._masked(result) if result.is_error else result

            return await self._request(f"tools/call {tool}", send, attempt_limit, peer)

        return await self._attempts(attempt, timeout, retry=retry)

    def _line_requests(self, client: Client) -> Callable[[str, Mapping[str, Any]], Awaitable[dict[str, Any]]] | None:
        """How ``client``'s stdio child takes a request written beside the SDK's, if it is one."""
        line_calls = self._line_calls
        return line_calls[1].request if line_calls is not None and line_calls[0] is client else None

    async def _attempts(self, attempt: Callable[[float], Awaitable[_T]], timeout: float | None, *, retry: bool) -> _T:
        """One ``attempt`` of a call, or several by the server's ``retry`` settings when ``retry`` allows."""
        limit = timeout if timeout is not None else self.spec.timeout
        if not retry or self.spec.retry.max_attempts <= 1:
            return await attempt(limit)
        return await call_with_retries(
            self.name,
            attempt,
            spec=self.spec.retry,
            timeout=limit,
            budget=self._retry_budget,
            before_retry=self._await_reconnect,
        )

    @contextmanager
    def _output_checked(self, tool: str) -> Generator[None]:
        """Turn the SDK client's failed ``outputSchema`` check of ``tool``'s result into ``DownstreamOutputInvalid``."""
        try:
            yield
        except RuntimeError as exc:
            invalid = output_schema_error(self.name, tool, exc, mask=self._masker.mask)
            if invalid is None:
                raise
            # The server broke its own contract: the operator should hear of it, once per call.
            logger.warning("%s", invalid)
            raise invalid from exc

    async def _await_reconnect(self, time_left: float) -> None:
        """Before a retry: give a server that died mid-call a moment to be connected again."""
        if self._demand.on_demand:  # a lazy server is started again by the retry itself
            return
        await self.wait_connected(min(time_left, self.spec.retry.reconnect_wait))

    async def get_prompt(
        self, prompt: str, arguments: dict[str, str] | None, *, peer: UpstreamPeer | None = None
    ) -> types.GetPromptResult:
        """Get ``prompt`` from this server.

        Raises:
            DownstreamError: As for ``call_tool``.
        """

        async def send(client: Client) -> types.GetPromptResult:
            return await client.get_prompt(prompt, arguments)

        return await self._request(f"prompts/get {prompt}", send, self.spec.timeout, peer)

    async def read_resource(self, uri: str, *, peer: UpstreamPeer | None = None) -> types.ReadResourceResult:
        """Read the resource ``uri`` from this server.

        Raises:
            DownstreamError: As for ``call_tool``.
        """

        async def send(client: Client) -> types.ReadResourceResult:
            return await client.read_resource(uri)

        return await self._request(f"resources/read {uri}", send, self.spec.timeout, peer)

    async def complete(
        self,
        ref: types.PromptReference | types.ResourceTemplateReference,
        argument: types.CompletionArgument,
        context: types.CompletionContext | None,
    ) -> types.CompleteResult:
        """Ask this server for completions; a server without the capability offers none.

        Raises:
            DownstreamError: As for ``call_tool``.
        """
        client = self._client
        if client is not None and client.server_capabilities.completions is None:
            return types.CompleteResult(completion=types.Completion(values=[]))

        async def send(client: Client) -> types.CompleteResult:
            return await client.complete(
                ref, {"name": argument.name, "value": argument.value}, context.arguments if context else None
            )

        return await self._request("completion/complete", send, self.spec.timeout, None)

    async def subscribe_resource(self, uri: str, *, subscribe: bool = True) -> None:
        """Subscribe to (or unsubscribe from) updates of ``uri`` on a handshake-era server.

        A server without the capability, or on 2026-07-28 (where updates ride
        ``subscriptions/listen``), is left alone. Subscriptions are remembered and made
        again when the server comes back after a restart.

        Raises:
            DownstreamError: As for ``call_tool``.
        """
        if subscribe and self._demand.on_demand:
            await self.wake()  # a cold server is started for it (and renews it on each start)
        if subscribe:
            self._subscribed.add(uri)
        else:
            self._subscribed.discard(uri)
        client = self._client
        if client is None or client.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return
        caps = client.server_capabilities.resources
        if caps is None or not caps.subscribe:
            return

        async def send(client: Client) -> types.EmptyResult:
            if subscribe:
                return await client.subscribe_resource(uri)  # pyright: ignore[reportDeprecated]
            return await client.unsubscribe_resource(uri)  # pyright: ignore[reportDeprecated]

        method = "resources/subscribe" if subscribe else "resources/unsubscribe"
        await self._request(f"{method} {uri}", send, self.spec.timeout, None)

    async def _request(
        self, what: str, send: Callable[[Client], Awaitable[_T]], limit: float, peer: UpstreamPeer | None
    ) -> _T:
        if self._demand.on_demand:
            await self.wake()
        client = self._client
        if client is None:
            if self._needs_login is not None:
                raise DownstreamLoginRequired(self.name, self._needs_login.detail)
            reason = f" ({self._last_error})" if self._last_error else ""
            raise DownstreamNotConnected(self.name, f"not connected{reason}")
        trial = self._breaker.admit()
        token = current_peer.set(peer)
        # The HTTP client's response hook runs in a copy of this context: it fills this in.
        note = HttpStatusNote()
        note_token = http_status_note.set(note)
        # One scope does both jobs: the supervisor cancels it when the connection is lost, and its
        # deadline is the request's time limit (cancelling it sends the server a cancellation).
        scope = anyio.CancelScope()
        deadline = CallDeadline(scope, limit)
        deadline_token = current_deadline.set(deadline)
        self._inflight.add(scope)
        self._demand.request_started_or_ended()
        outcome_known = False
        try:
            try:
                with scope, self._caller_requests.tracking(peer, deadline), self._call_attributes(client):
                    result = await send(client)
                    outcome_known = True
                    self._record_outcome(None, trial)
                    return result
                if self._needs_login is not None:
                    raise DownstreamLoginRequired(self.name, self._needs_login.detail)
                raise interrupted_request_error(self.name, what, limit, connection_lost=self._client is not client)
            except REQUEST_FAULTS as exc:
                if self._needs_login is not None:
                    raise DownstreamLoginRequired(self.name, self._needs_login.detail) from None
                if closes_connection(exc):
                    self._connection_closed(client)
                raise downstream_error(
                    self.name, exc, what, limit, mask=self._masker.mask, http_status=note.status
                ) from exc
        except DownstreamError as exc:
            outcome_known = True
            self._record_outcome(exc, trial)
            raise
        finally:
            if trial and not outcome_known:
                self._breaker.release_trial()
            self._inflight.discard(scope)
            self._demand.request_started_or_ended()
            http_status_note.reset(note_token)
            current_deadline.reset(deadline_token)
            current_peer.reset(token)

    def _record_outcome(self, exc: DownstreamError | None, trial: bool) -> None:
        """Feed the breaker and the health monitor with how a request ended (``None``: an answer)."""
        if isinstance(exc, DownstreamTimeout):
            self.health.request_probe()  # a hung server, or only a slow tool? A probe tells.
            self._breaker.record_failure("timed out", trial=trial)
        elif isinstance(exc, DownstreamUnavailable):
            self._breaker.record_failure("transport fault", trial=trial)
        elif isinstance(exc, DownstreamToolError) and exc.code == types.INTERNAL_ERROR:
            self.health.saw_activity()
            self._breaker.record_failure("internal error", trial=trial)
        else:
            self.health.saw_activity()  # an answer, even an error one: the server is alive
            self._breaker.record_success(trial=trial)

    def _call_attributes(self, client: Client) -> AbstractContextManager[object]:
        """Describe this server to the SDK's client spans of a call (MCP semantic conventions)."""
        if isinstance(self.spec, StdioServerSpec):
            return downstream_call_attributes(self.name, "stdio", protocol_version=client.protocol_version)
        address, port = http_address(self.spec.url)
        transport: DownstreamTransport = "sse" if self.spec.type == "sse" else "http"
        return downstream_call_attributes(
            self.name, transport, address=address, port=port, protocol_version=client.protocol_version
        )

    def _masked(self, result: types.CallToolResult) -> types.CallToolResult:
        """An error result with this server's configured secrets masked: errors never carry secrets."""
        if not self._masker:
            return result
        content = [
            block.model_copy(update={"text": self._masker.mask(block.text)})
            if isinstance(block, types.TextContent)
            else block
            for block in result.content
        ]
        return result.model_copy(update={"content": content})
