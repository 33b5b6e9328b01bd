"""The public embedding API: the whole aggregator as one async context manager.

Owns wiring the layers together (config → downstream pool → merged catalogue and composite
tools → one MCP server), for the command line and for any application that embeds the
aggregator the way it would embed an HTTP client::

    async with Aggregator(load_config("orchestrator.yaml")) as aggregator:
        tools = await aggregator.list_tools()
        result = await aggregator.call("analytics_get_metrics", {"service": "api"})

Does not: parse arguments, print, configure logging, install a tracer provider (pass the
handle of ``orchestrator.telemetry.configure_tracing`` to have one), install signal handlers
(unless a ``serve_*`` method is asked to), or touch file descriptor 1 (except
``serve_stdio``, which serves this process's stdin and stdout and keeps stray prints off
the protocol stream while it does).
"""

from __future__ import annotations

import logging
import os
import signal
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import anyio
import anyio.abc

from orchestrator import auth, runs, trust
from orchestrator import store as state_db
from orchestrator import workflow as workflows
from orchestrator.auth import AuditLog, InProcessLimiter, RateLimiter, SharedRateLimiter, definition_change_record
from orchestrator.catalog import Catalog, close_names
from orchestrator.config import HttpServerSpec, OrchestratorConfig, load_config
from orchestrator.downstream import DownstreamPool, ServerStatus, secret_values
from orchestrator.errors import ConfigError, InvalidArgumentsError, StoreError, UsageError
from orchestrator.server import (
    ROUND_OWNER_PURPOSE,
    CallControls,
    Composites,
    HttpSecurity,
    Loaded,
    OrchestratorServer,
    PoolInvoker,
    Reloader,
    ReloadRecord,
    ReplicaFeed,
    ReplicaMark,
    StatusReporter,
    WorkerSeat,
    http_app,
    http_auth,
    reserved_tool_names,
    serve_http,
    serve_stdio,
)
from orchestrator.tracing import Redactor

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
    from types import TracebackType

    import mcp_types as types
    from starlette.types import ASGIApp

    from orchestrator.store import Store
    from orchestrator.telemetry import TracingHandle
    from orchestrator.trust import ServedChange
    from orchestrator.workflow import Approver, RunResult, StepEventFn, ToolInvoker, WorkflowPlan, WorkflowSpec

__all__ = ["Aggregator"]

logger = logging.getLogger("orchestrator")

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_MAINTENANCE_PERIOD = 3600.0
"""Seconds between prunings of expired authorization requests, codes and tokens."""


_CONSENT_KEY_PURPOSE = "consent page sessions"
"""What the key derived from the secrets key signs, for replicas sharing a state database."""


class Aggregator:
    """Many MCP servers served as one: start them, list and call their tools, run workflows, serve.

    Entering starts every enabled server of the config concurrently (a lazy server whose last
    listing the state database keeps is served from it instead, and started by the first call
    that needs it) and returns at once
    (calls and listings made while servers are still starting wait for them, up to the
    start-up grace); leaving stops them all, whole process groups included. An instance is
    entered once.

    Args:
        config: The configuration, from ``load_config``.
        tracing: What ``orchestrator.telemetry.configure_tracing`` returned, so stdio children
            export their spans where this process does and, when the config asks, tool
            payloads are recorded (redacted) on spans. Default: no tracing set up here; spans
            go to whatever tracer provider the application installed.
        env: Where the config's bearer tokens (``serve.auth``) are read from; default ``os.environ``.
        startup_grace: How long a listing or call waits for servers still on their first
            start attempt.
    """

    def __init__(
        self,
        config: OrchestratorConfig,
        *,
        tracing: TracingHandle | None = None,
        env: Mapping[str, str] | None = None,
        startup_grace: float = 20.0,
    ) -> None:
        self._initial_config = config
        self._tracing = tracing
        self._env = os.environ if env is None else env
        self._consent_key: bytes | None = None  # a worker's, shared with its siblings
        self._startup_grace = startup_grace
        self._exit_stack = AsyncExitStack()
        self._pool: DownstreamPool | None = None
        self._server: OrchestratorServer | None = None
        self._reloader: Reloader | None = None
        self._store: Store | None = None
        self._state_stack = AsyncExitStack()
        """Holds the state database open; closed after everything that uses it has stopped."""
        self._opening_state = anyio.Lock()

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> Self:
        """Start the servers and build the catalogue and composites.

        Raises:
            WorkflowDefinitionError: A workflow file of the config is invalid (every problem listed).
            RuntimeError: The instance was entered before.
        """
        if self._pool is not None:
            raise RuntimeError("an Aggregator is entered once")
        composites = Composites.from_config(self._initial_config)
        child_env = self._tracing.child_environment if self._tracing is not None else None
        gate = trust.TrustGate(self._state, on_change=self._audit_served_change)
        # Listings are kept when the pins have opened the database anyway, or the server is lazy.
        manifests = trust.StoredManifests(self._state, opened=lambda: self._store)
        async with AsyncExitStack() as stack:
            stack.push_async_callback(self._state_stack.aclose)
            auth_for = await self._downstream_auth()
            self._pool = await stack.enter_async_context(
                DownstreamPool.running(
                    self._initial_config,
                    reserved=reserved_tool_names(self._initial_config, composites.names),
                    child_env=child_env,
                    gate=gate,
                    auth_for=auth_for,
                    manifests=manifests,
                )
            )
            self._server = await stack.enter_async_context(
                OrchestratorServer(
                    self._pool,
                    composites,
                    startup_grace=self._startup_grace,
                    redactor=self._redactor(self._initial_config),
                )
            )
            self._reloader = Reloader(self._server, self._pool, self._load_again)
            self._exit_stack = stack.pop_all()
        return self

    async def _downstream_auth(self) -> trust.DownstreamAuthFactory | None:
        """The OAuth tokens of servers with ``auth: oauth``: the state database opened, and the secrets key.

        ``None`` when no server signs in with OAuth (the state database stays closed). Only
        stored tokens are used and refreshed here; ``orchestrator login`` gets them.

        Raises:
            StoreError: The state database cannot be opened.
            SecretKeyError: The key for secrets at rest cannot be used.
        """
        servers = self._initial_config.enabled_servers().values()
        if not any(isinstance(spec, HttpServerSpec) and spec.auth is not None for spec in servers):
            return None
        store = await self._state()
        box = trust.open_secret_box(self._state_url(self._initial_config), self._env)
        return trust.DownstreamAuthFactory(store.engine, box)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop every server (their whole process groups)."""
        await self._exit_stack.aclose()

    @property
    def server(self) -> OrchestratorServer:
        """The MCP server over the catalogue (for serving it on a transport of your own)."""
        if self._server is None:
            raise RuntimeError("enter the Aggregator first (async with)")
        return self._server

    @property
    def pool(self) -> DownstreamPool:
        """The downstream connections."""
        if self._pool is None:
            raise RuntimeError("enter the Aggregator first (async with)")
        return self._pool

    @property
    def config(self) -> OrchestratorConfig:
        """The configuration served now (a reload replaces it)."""
        return self._pool.config if self._pool is not None else self._initial_config

    @property
    def catalog(self) -> Catalog:
        """The merged catalogue of the servers that are up: tools, prompts, resources, name mappings."""
        return self.pool.catalog

    @property
    def composites(self) -> Composites:
        """The composite tools of the config's workflows, active or withdrawn."""
        return self.server.composites

    def statuses(self) -> list[ServerStatus]:
        """Every server's state, health and last error, in config order."""
        return self.pool.statuses()

    async def wait_for_servers(self, timeout: float = 30.0) -> list[ServerStatus]:
        """Wait until every server's first start attempt has finished (at most ``timeout`` s); their statuses.

        A server that failed to start keeps retrying in the background; its status says why.
        """
        await self.pool.wait_settled(timeout, initial_only=True)
        # Start-up is over: a composite that does not fit now is withdrawn, and says why (logged).
        self.composites.refresh(self.catalog, withheld=self.pool.withheld)
        return self.statuses()

    # ----------------------------------------------------------------- the catalogue

    async def list_tools(self) -> list[types.Tool]:
        """Every tool served: the servers' tools under their exposed names, then the active composites."""
        return await self.server.list_tools()

    async def call(self, name: str, arguments: Mapping[str, Any] | None = None) -> types.CallToolResult:
        """Call a tool (or composite) by its exposed name, as an MCP client would.

        Failures of the call itself (invalid arguments, a dead, slow or failing server, a
        failed workflow step) come back as a result with ``is_error`` set and the error's
        type in its ``_meta``, as a client would see them.

        Raises:
            UnknownToolError: No tool is exposed under ``name`` (its ``suggestions`` say what is).
        """
        return await self.server.call(name, dict(arguments or {}))

    # ------------------------------------------------------------------- workflows

    def find_workflow(self, workflow: str | Path | WorkflowSpec) -> WorkflowSpec:
        """The workflow a ``run`` means: a spec as is, a workflow file, or the name of a configured composite.

        Raises:
            UsageError: Neither a file nor a composite of the config has that name; names what does.
            WorkflowDefinitionError: The file, or a workflow file of the config, is invalid.
        """
        if isinstance(workflow, workflows.WorkflowSpec):
            return workflow
        if Path(workflow).is_file():
            return workflows.load_workflow(workflow)
        target = str(workflow)
        # Entered, the composites are in memory (and current after a reload); before, read the files.
        if self._server is not None:
            by_name = self._server.composites.specs
        else:
            by_name = {spec.name: spec for spec in workflows.load_workflows(self.config.workflows)}
        if target in by_name:
            return by_name[target]
        names = sorted(by_name)
        close = close_names(target, names)
        hint = f"; did you mean {' or '.join(repr(name) for name in close)}?" if close else ""
        known = f"the config's composites: {', '.join(names)}" if names else "the config has no composites"
        raise UsageError(f"no workflow file or composite named {target!r}{hint} ({known})")

    def plan(self, workflow: str | Path | WorkflowSpec) -> WorkflowPlan:
        """``workflow`` compiled against the live catalogue (servers not up are reported, not guessed).

        Raises:
            UsageError: See ``find_workflow``.
            WorkflowDefinitionError: The workflow is invalid, or does not fit the servers' tools.
        """
        spec = self.find_workflow(workflow)
        path = spec.source.path if spec.source else None
        down = [status.server for status in self.statuses() if status.state not in ("ready", "cold")]
        return workflows.compile_workflow(spec, path, catalog=self.catalog, unavailable_servers=down)

    async def run(
        self,
        workflow: str | Path | WorkflowSpec | WorkflowPlan,
        arguments: Mapping[str, Any] | None = None,
        *,
        on_event: StepEventFn | None = None,
        invoker: Callable[[ToolInvoker], ToolInvoker] | None = None,
        approver: Approver | None = None,
    ) -> RunResult:
        """Run a workflow once against the live servers.

        Args:
            workflow: A compiled plan, a spec, a workflow file, or the name of a configured composite.
            arguments: The workflow's input; its schema's defaults are applied.
            on_event: Awaited as steps start, retry and finish.
            invoker: Wraps the live servers' invoker (a ``RecordingInvoker`` keeps every call).
            approver: Asked before each approval step; without one, a workflow that has them
                fails before calling anything.

        Returns:
            The run's result; a failed step fails the run (``status == "failed"``, ``error``
            names the step), a declined approval stops it (``status == "declined"``); it does
            not raise.

        Raises:
            UsageError: No such workflow file or composite.
            WorkflowDefinitionError: The workflow is invalid or does not fit the servers' tools.
            InvalidArgumentsError: ``arguments`` do not match the workflow's input schema.
        """
        if not isinstance(workflow, workflows.WorkflowPlan):
            await self.wait_for_servers(self._startup_grace)
        plan = workflow if isinstance(workflow, workflows.WorkflowPlan) else self.plan(workflow)
        applied, problems = workflows.validate_input(plan, arguments)
        if problems:
            raise InvalidArgumentsError(plan.name, problems)
        live: ToolInvoker = PoolInvoker(self.pool)
        return await workflows.execute(
            plan,
            applied,
            live if invoker is None else invoker(live),
            on_event=on_event,
            catalogue_version=self.server.catalogue_version,
            approver=approver,
        )

    # --------------------------------------------------------------------- reload

    @property
    def last_reload(self) -> ReloadRecord | None:
        """How the last reload went, if there was one."""
        return self._reloader.last if self._reloader is not None else None

    async def reload(self, trigger: str = "reload requested") -> ReloadRecord:
        """Read the config file (and its workflows) again and apply what changed, without dropping clients.

        A config with problems changes nothing; the record lists them.
        """
        if self._reloader is None:
            raise RuntimeError("enter the Aggregator first (async with)")
        return await self._reloader.reload(trigger)

    def _load_again(self) -> Loaded:
        source = self.config.source
        if source is None:
            raise ConfigError("<config>", ["the config was not read from a file: there is nothing to read again"])
        fresh = load_config(source)
        return Loaded(fresh, Composites.from_config(fresh), self._redactor(fresh))

    def _redactor(self, config: OrchestratorConfig) -> Redactor | None:
        """Only when payload recording is on: every configured secret of ``config`` is masked."""
        if self._tracing is None or not self._tracing.record_payloads:
            return None
        tokens = config.serve.auth.shared_tokens(self._env)
        return Redactor.from_secrets(tokens, *(secret_values(spec) for spec in config.servers.values()))

    # ---------------------------------------------------------------------- serve

    async def serve_stdio(self, *, handle_signals: bool = False) -> None:
        """Serve MCP over this process's stdin and stdout until the client closes stdin.

        While serving, file descriptor 1 points at stderr, so a stray print cannot corrupt the
        protocol stream; it is restored afterwards. With ``serve.watch`` in the config, edits
        of the config or workflow files are applied live.

        Args:
            handle_signals: For a process whose main job this is: SIGTERM and SIGINT stop
                serving gracefully, SIGHUP reloads the config.
        """
        async with self._call_controls(over_http=False), anyio.create_task_group() as tg:
            self._start_background(tg, handle_signals)
            manager = await self._start_runs(tg)
            if handle_signals:
                tg.start_soon(_cancel_on_signals, tg.cancel_scope, manager)
            await serve_stdio(self.server)
            self._stop_runs(manager)
            tg.cancel_scope.cancel()

    def http_security(self, host: str | None = None, path: str | None = None) -> HttpSecurity:
        """The HTTP guard's rules for serving on ``host`` (default the config's ``serve.host``).

        Entered, with the embedded authorization server configured, the state must be open
        (``open_state``) first; not entered, this only checks that the address is allowed.

        Raises:
            ConfigError: ``host`` is not a loopback address and no credentials are configured,
                or the authentication settings do not fit together.
        """
        serve = self.config.serve
        source = str(self.config.source or "<config>")
        host = host or serve.host
        auth = None
        if self._server is not None:
            auth = http_auth(
                serve,
                self._env,
                server=self._server,
                store=self._store,
                path=path or serve.path,
                source=source,
                consent_key=self._consent_key,
            )
        return HttpSecurity.from_config(serve, host, self._env, source, auth)

    async def open_state(self) -> Store:
        """Open the state database (``state.url``), migrating it first; closed when the aggregator exits.

        ``serve_http`` does this itself; call it before ``http_app`` when the embedded OAuth
        server is configured. Opening twice returns the same store.

        Raises:
            StoreError: The database cannot be opened or migrated.
            RuntimeError: The aggregator is not entered.
        """
        if self._server is None:
            raise RuntimeError("enter the Aggregator first (async with)")
        return await self._state()

    async def _state(self) -> Store:
        """The state database, opened on first use (the pins of the first listing, or serving)."""
        async with self._opening_state:
            if self._store is None:
                self._store = await self._state_stack.enter_async_context(state_db.open_store(self._state_url()))
            return self._store

    def _state_url(self, config: OrchestratorConfig | None = None):
        """The state database's URL in ``config`` (default: the configuration served now)."""
        config = config or self.config
        return state_db.state_url(config.state, self._env, str(config.source or "<config>"))

    def _shared_secrets(self) -> trust.SecretBox:
        """The secrets key of the state database, which replicas sharing the database share too."""
        return trust.open_secret_box(self._state_url(), self._env)

    def _state_is_shared(self) -> bool:
        """Whether the state database is PostgreSQL, which replicas on several machines may share."""
        return self._state_url().get_backend_name() == "postgresql"

    async def _audit_served_change(self, change: ServedChange) -> None:
        """A definition served although it differs from its pin (``trust: warn``) goes to the audit log."""
        audit = self._server.controls.audit if self._server is not None else None
        if audit is not None:
            await audit.record(
                definition_change_record(
                    server=change.server,
                    kind=change.kind,
                    name=change.name,
                    change=change.change,
                    fields=change.fields,
                    digest=change.digest,
                )
            )

    def http_app(self, *, host: str | None = None, path: str | None = None) -> ASGIApp:
        """The streamable HTTP ASGI app, to run in an ASGI server of your own (with lifespan events on).

        The app checks ``Origin``, ``Host`` and bearer tokens as ``serve_http`` does, and
        answers ``/healthz``, ``/readyz`` and ``/status``.

        Args:
            host: The address the ASGI server binds, which decides the Host check and whether
                a token is required; default the config's ``serve.host``.
            path: The MCP endpoint's path; default the config's ``serve.path``.

        Raises:
            ConfigError: ``host`` is not a loopback address and no bearer token is configured.
        """
        security = self.http_security(host, path)
        return http_app(
            self.server,
            security,
            path=path or self.config.serve.path,
            reporter=StatusReporter(self.server, self._reloader),
        )

    async def serve_http(
        self,
        *,
        host: str | None = None,
        port: int | None = None,
        path: str | None = None,
        on_listening: Callable[[str], None] | None = None,
        handle_signals: bool = False,
        seat: WorkerSeat | None = None,
    ) -> None:
        """Serve streamable HTTP until cancelled, then stop gracefully.

        Args:
            host: Bind address; default the config's ``serve.host`` (loopback unless set).
            port: TCP port (0 picks a free one); default the config's ``serve.port``.
            path: The MCP endpoint's path; default the config's ``serve.path``.
            on_listening: Told the endpoint URL once the socket is bound.
            handle_signals: For a process whose main job this is: SIGTERM and SIGINT stop
                serving gracefully, SIGHUP reloads the config.
            seat: Serve as one worker of ``orchestrator serve --workers N`` (set by its
                supervisor, which owns the listening socket).

        Raises:
            ConfigError: ``host`` is not a loopback address and no bearer token is configured.
        """
        serve = self.config.serve
        if serve.auth.oauth is not None:  # its clients and grants are in the state database
            await self.open_state()
        if seat is not None:
            self._consent_key = seat.consent_key()
        elif serve.auth.oauth is not None and self._state_is_shared():
            # Replicas: a person's browser may reach any of them between two steps of a sign-in,
            # so they sign its cookies alike, with a key derived from the secrets key they share.
            self._consent_key = self._shared_secrets().derived_key(_CONSENT_KEY_PURPOSE)
        replica = None
        if serve.advertise_url is not None and self._state_is_shared():
            box = self._shared_secrets()
            replica = ReplicaMark(
                trust.SecretBox(box.derived_key(ROUND_OWNER_PURPOSE), box.location), serve.advertise_url
            )
        security = self.http_security(host, path)
        # Workers serving together share their rate limits' buckets through the state database.
        async with self._call_controls(over_http=True, shared_limits=seat is not None), anyio.create_task_group() as tg:
            self._start_background(tg, handle_signals)
            manager = await self._start_runs(tg)
            if security.auth is not None and security.auth.maintenance is not None:
                tg.start_soon(_every, _MAINTENANCE_PERIOD, security.auth.maintenance)
            if self._state_is_shared():
                # Replicas (or workers) on PostgreSQL hear of each other's pins and catalogue changes.
                await tg.start(ReplicaFeed(await self.open_state(), self.server).run)
            await serve_http(
                self.server,
                security,
                port=serve.port if port is None else port,
                path=path or serve.path,
                on_listening=on_listening,
                reporter=StatusReporter(self.server, self._reloader),
                handle_signals=handle_signals,
                seat=seat,
                replica=replica,
            )
            self._stop_runs(manager)
            tg.cancel_scope.cancel()

    @asynccontextmanager
    async def _call_controls(self, *, over_http: bool, shared_limits: bool = False) -> AsyncGenerator[None, None]:
        """Rate limits and the audit log around serving: the audit log on by default over HTTP only.

        Args:
            over_http: Serving over HTTP: rate limits apply (stdio has only the local owner).
            shared_limits: Keep the rate limits' buckets in the state database, so that the
                processes serving from it (``serve --workers``) enforce one limit between them.
                Always so when the state database is PostgreSQL: replicas share it. With
                ``state.redis_url`` set, the buckets are in that Redis instead, whatever this says.

        Raises:
            StoreError: The state database, needed by the audit log or shared limits, cannot be used.
            RateLimitsUnavailable: ``state.redis_url`` is set and that Redis cannot be used.
        """
        config = self.config
        audit_on = config.audit.enabled if config.audit.enabled is not None else over_http
        limiter = RateLimiter(config.serve.rate_limits)
        controls = CallControls()
        async with AsyncExitStack() as stack:
            # No limiter when none is set: nothing to check on each call.
            if over_http and limiter.enabled:
                if config.state.redis_url is not None:
                    # Named through the package, so redis-py loads only when a Redis is configured.
                    url = config.state.redis_url.get_secret_value()
                    redis = auth.RedisRateLimiter(config.serve.rate_limits, url)
                    controls.limiter = await stack.enter_async_context(redis)
                elif shared_limits or self._state_is_shared():
                    store = await self.open_state()
                    shared = SharedRateLimiter(config.serve.rate_limits, store)
                    controls.limiter = await stack.enter_async_context(shared)
                else:
                    controls.limiter = InProcessLimiter(limiter)
            if audit_on:
                store = await self.open_state()
                controls.audit = await stack.enter_async_context(AuditLog(store, config.audit))
            self.server.controls = controls
            try:
                yield
            finally:
                self.server.controls = CallControls()

    async def _start_runs(self, tg: anyio.abc.TaskGroup) -> runs.RunManager | None:
        """Journal composite runs in the state database, resume those a dead process left, and
        prune finished ones past ``runs.retention``.

        Only with composites to run (and ``runs.journal`` on): otherwise the state database
        stays closed.
        """
        config = self.config
        if not config.runs.journal or not self.server.composites.names:
            return None
        store = await self.open_state()
        manager = runs.RunManager(
            store, self.server.run_hooks(), lease=config.runs.lease, approval_timeout=config.runs.approval_timeout
        )
        await tg.start(manager.serve)
        tg.start_soon(runs.keep_pruning, store, config.runs.retention)
        self.server.task_ttl = config.runs.retention
        self.server.runs = manager
        return manager

    def _stop_runs(self, manager: runs.RunManager | None) -> None:
        """Before serving stops: runs cut short by the shutdown are left for the next process."""
        if manager is not None:
            manager.stop()

    def _start_background(self, tg: anyio.abc.TaskGroup, on_sighup: bool) -> None:
        assert self._reloader is not None
        # While serving, an approval made by another process shows in the list without a call
        # (``trust.recheck``, read at each turn: a reload may change it).
        tg.start_soon(_every, lambda: self.config.trust.recheck, self.pool.recheck)
        if on_sighup:
            tg.start_soon(self._reloader.watch_signals)
        if self.config.serve.watch and self.config.source is not None:
            tg.start_soon(self._reloader.watch_files)


async def _every(period: float | Callable[[], float], job: Callable[[], Awaitable[object]]) -> None:
    """Run ``job`` now and then every ``period`` seconds, until cancelled; a failure is logged, not fatal."""
    while True:
        try:
            await job()
        except StoreError as exc:
            logger.warning("state maintenance failed: %s", exc)
        await anyio.sleep(period() if callable(period) else period)


async def _cancel_on_signals(
    scope: anyio.CancelScope, manager: runs.RunManager | None = None, signals: Iterable[signal.Signals] = _STOP_SIGNALS
) -> None:
    """Cancel ``scope`` at the first SIGTERM or SIGINT: a graceful stop (children stopped, spans flushed).

    Runs in flight are left to the next process (``RunManager.stop``), not cancelled.
    """
    with anyio.open_signal_receiver(*signals) as received:
        async for signum in received:
            logger.info("received %s; shutting down", signal.Signals(signum).name)
            if manager is not None:
                manager.stop()
            scope.cancel()
            return
