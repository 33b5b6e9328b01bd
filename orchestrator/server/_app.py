"""The upstream MCP server: the merged catalogue served as one MCP server.

Built on the SDK's low-level ``Server`` because the catalogue changes at run time. Serves
clients of both protocol eras: handshake-era connections get ``list_changed`` on their
session, 2026-07-28 clients through ``subscriptions/listen``. Errors reach the wire only
through ``orchestrator.server._errors``.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio
import mcp_types as types
from mcp import MCPError
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler
from mcp.shared.subscriptions import PromptsListChanged, ResourcesListChanged, ResourceUpdated, ToolsListChanged
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from opentelemetry import trace

from orchestrator._sdk_internals import request_connection
from orchestrator._version import NAME, __version__
from orchestrator.auth import OWNER, AccessPolicy, Principal
from orchestrator.catalog import (
    UI_EXTENSION,
    VERSION_LENGTH,
    ExposedCatalogue,
    catalogue_digest,
    close_names,
    exposed_catalogue,
    relinked_result,
)
from orchestrator.downstream import CatalogChange, DownstreamPool, UpstreamPeer, WireResult
from orchestrator.errors import (
    DownstreamError,
    InputRoundExpired,
    InvalidArgumentsError,
    OrchestratorError,
    StoreError,
    UnknownToolError,
)
from orchestrator.server._access import (
    AuditingInvoker,
    CallControls,
    GrantCheckingInvoker,
    ServedBy,
    request_principal,
)
from orchestrator.server._approvals import elicitation_approver
from orchestrator.server._apps import AppTools
from orchestrator.server._composites import RUN_META_KEY, Composites
from orchestrator.server._durable import ServerRunHooks, run_principal
from orchestrator.server._errors import downstream_error_result, request_error, tool_error_result
from orchestrator.server._extensions import client_declares, with_extension
from orchestrator.server._pages import InvalidCursor, cursor_for, page_start
from orchestrator.server._pass_through import PlainCall, plain_call, served_wire_result
from orchestrator.server._plans import RUN_PLAN_TOOL_NAME, Plans
from orchestrator.server._request_peer import RequestPeer
from orchestrator.server._rounds import InputRounds, RoundState
from orchestrator.server._search_mode import (
    SEARCH_INSTRUCTIONS,
    SEARCH_TOOLS,
    CatalogueSize,
    SearchMode,
    ToolCallRequest,
    call_tool_request,
)
from orchestrator.server._task_inputs import ApprovalInputs
from orchestrator.server._task_methods import TaskMethods
from orchestrator.server._validate import ArgumentValidator
from orchestrator.server._wire_lists import WireLists
from orchestrator.tracing import (
    ATTR_CATALOGUE_VERSION,
    ATTR_PASS_THROUGH,
    ATTR_TOOL_CALL_ARGUMENTS,
    ATTR_TOOL_CALL_RESULT,
    Redactor,
    current_trace_id,
    record_payload,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Sequence

    from mcp.server.connection import Connection
    from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
    from mcp.server.models import InitializationOptions
    from mcp.shared.dispatcher import ProgressFnT
    from pydantic import BaseModel

    from orchestrator.catalog import Catalog
    from orchestrator.runs import RunManager
    from orchestrator.store import RunRecord
    from orchestrator.workflow import ToolInvoker

__all__ = ["CATALOGUE_VERSION_META_KEY", "TRACE_META_KEY", "OrchestratorServer"]

logger = logging.getLogger(__name__)

TRACE_META_KEY = "io.github.mcp-orchestrator/trace"
"""``_meta`` key of a plain call's result when tracing is on: ``{"trace_id": ...}``."""

CATALOGUE_VERSION_META_KEY = "io.github.mcp-orchestrator/catalogue-version"
"""``_meta`` key of ``initialize``/``server/discover`` and of every list result: the catalogue version.

The version is the first 16 hex characters of the SHA-256 of every exposed definition in
RFC 8785 canonical JSON (``orchestrator.catalog.ExposedCatalogue``); it changes whenever any
exposed tool, prompt, resource or resource template does."""

_INSTRUCTIONS = (
    "Tools from several MCP servers, merged. Each tool name starts with its server's prefix; "
    "composite tools run a whole workflow of tool calls in one call."
)


def _with_version_meta(result: dict[str, Any], version: str) -> dict[str, Any]:
    meta: object = result.get("_meta")
    result["_meta"] = {
        **(cast("dict[str, Any]", meta) if isinstance(meta, dict) else {}),
        CATALOGUE_VERSION_META_KEY: version,
    }
    return result


_VERSION_INSTRUCTIONS = (
    f"Every list result carries the catalogue version (a digest of every definition served) in "
    f"_meta[{CATALOGUE_VERSION_META_KEY!r}]; it changes whenever any definition does."
)


class _AggregatorServer(Server[Any]):
    """A low-level server whose handshake advertises ``listChanged`` for every list."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options
            or NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True),
            experimental_capabilities,
            extensions,
        )


def _can_answer_input(ctx: ServerRequestContext[Any, Any]) -> bool:
    """A 2026-07-28 client that declared sampling, elicitation or roots can answer input rounds."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    caps = ctx.session.client_capabilities
    return caps is not None and any(cap is not None for cap in (caps.sampling, caps.elicitation, caps.roots))


_ResultT = TypeVar("_ResultT", types.CallToolResult, types.GetPromptResult, types.ReadResourceResult)


def _without_server_info(result: _ResultT) -> _ResultT:
    """A downstream result without the downstream's ``serverInfo`` stamp: the client talks to us."""
    meta = result.meta
    if not meta or types.SERVER_INFO_META_KEY not in meta:
        return result
    rest = {key: value for key, value in meta.items() if key != types.SERVER_INFO_META_KEY}
    return result.model_copy(update={"meta": rest or None})


def _with_trace_id(result: types.CallToolResult) -> types.CallToolResult:
    """The result with the call's trace id in ``_meta``, so a user can open the trace."""
    trace_id = current_trace_id()
    if trace_id is None:
        return result
    return result.model_copy(update={"meta": {**(result.meta or {}), TRACE_META_KEY: {"trace_id": trace_id}}})


class OrchestratorServer:
    """Serves a ``DownstreamPool``'s catalogue; forwards calls, progress, cancellation and logs.

    Use it as an async context manager while serving: calls that wait for a 2026-07-28
    client's input (sampling, elicitation) run in its task group between rounds.
    """

    def __init__(
        self,
        pool: DownstreamPool,
        composites: Composites | None = None,
        *,
        startup_grace: float = 20.0,
        redactor: Redactor | None = None,
    ) -> None:
        """Serve ``pool`` and, when given, composite tools.

        Args:
            pool: The running downstream pool (its reserved names should be the composites').
            composites: Workflow composite tools to serve next to the catalogue's tools.
            startup_grace: How long the first listings wait for servers still starting, so a
                client that lists tools right after connecting sees every healthy server.
            redactor: When given, tool arguments and results are recorded on spans through it
                (``tracing.record_payloads``); off by default.
        """
        self._pool = pool
        self._redactor = redactor
        self.composites = composites or Composites(())
        self.composites.refresh(pool.catalog, quiet=True, withheld=pool.withheld)
        self._startup_grace = startup_grace
        self._bus = InMemorySubscriptionBus()
        self._listen = ListenHandler(self._bus)
        # Handshake-era connections, to notify of list changes; weak so closed ones vanish.
        self._legacy_connections: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._change_listeners: list[Callable[[], None]] = []
        # Resources each handshake-era connection subscribed to, to relay their updates.
        self._subscriptions: weakref.WeakKeyDictionary[Connection, set[str]] = weakref.WeakKeyDictionary()
        # Who holds a subscription to each exposed URI (connections, listen streams): the
        # downstream is subscribed while anyone is, and unsubscribed when the last one leaves.
        self._subscribers: dict[str, set[Hashable]] = {}
        # The level each handshake-era connection asked for with logging/setLevel (default: all).
        self._log_levels: weakref.WeakKeyDictionary[Connection, types.LoggingLevel] = weakref.WeakKeyDictionary()
        self._validator = ArgumentValidator()
        # The served catalogue's digest, made once per change of what is served: the
        # catalogue and the composites' tools it was made from are compared by identity.
        self._digest: tuple[Catalog, tuple[types.Tool, ...], str] | None = None
        # Every tool served, made once per change of the catalogue, the composites or tasks.
        self._tools: tuple[Catalog, tuple[types.Tool, ...], bool, tuple[types.Tool, ...]] | None = None
        self.search = SearchMode(lambda: self._pool.config.catalog)
        """What ``tools/list`` shows (every tool, or search's meta-tools) and the search itself."""
        self.apps = AppTools()
        self._wire_lists = WireLists()
        """The served tools as a model sees them (without app-only ones), and apps' calls by own names."""
        self._exit_stack = AsyncExitStack()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._rounds: InputRounds | None = None
        self._worker_mark = ""
        self.controls = CallControls()
        """Rate limits and the audit log of calls; off unless the serving process sets them."""
        self._plans: Plans | None = None
        self.runs: RunManager | None = None
        """Where composite runs are journalled (and resumed after a crash); ``None``: in memory only."""
        self.task_ttl: float | None = None
        """Seconds an MCP task is kept after it was created, at least (``runs.retention``); ``None``: unlimited."""
        self.lowlevel = _AggregatorServer(
            NAME,
            version=__version__,
            instructions=_INSTRUCTIONS,
            get_tool_input_schema=self._input_schema,
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_prompts=self._list_prompts,
            on_get_prompt=self._get_prompt,
            on_list_resources=self._list_resources,
            on_list_resource_templates=self._list_resource_templates,
            on_read_resource=self._read_resource,
            on_subscribe_resource=self._subscribe_resource,
            on_unsubscribe_resource=self._unsubscribe_resource,
            on_completion=self._complete,
            on_subscriptions_listen=self._listen_with_resources,
        )
        # Deprecated at 2026-07-28 (SEP-2577), but handshake-era clients set it.
        self.lowlevel.add_request_handler("logging/setLevel", types.SetLevelRequestParams, self._set_level)
        self.lowlevel.middleware.append(self._remember_connection)
        self.lowlevel.middleware.append(self._stamp_catalogue_version)
        self.lowlevel.middleware.append(self._advertise_apps)
        self.lowlevel.middleware.append(self._serve_wire_lists)
        self.lowlevel.middleware.append(self._pass_through_calls)
        self.tasks = TaskMethods(self, self.lowlevel)
        self.tasks.inputs = ApprovalInputs(lambda: self.runs)
        """MCP tasks (both eras) over ``runs``, offered while it is set."""
        pool.add_listener(self._on_catalog_change)
        pool.add_resource_listener(self._on_resource_updated)

    @property
    def catalog(self) -> Catalog:
        """The catalogue being served now."""
        return self._pool.catalog

    @property
    def pool(self) -> DownstreamPool:
        """The downstream servers behind the catalogue."""
        return self._pool

    def exposed(self) -> ExposedCatalogue:
        """Everything served now (catalogue tools, composites, prompts, resources, templates) and its version.

        Made at each call, for the few that want the definitions (``orchestrator tools``): the
        server keeps only the digest (``catalogue_version``), not a copy of every definition.
        """
        return exposed_catalogue(self._pool.catalog, self.composites.tools())

    @property
    def catalogue_version(self) -> str:
        """The version of the catalogue served now (see ``CATALOGUE_VERSION_META_KEY``).

        Computed once per change of what is served, not per request.
        """
        catalog, composite_tools = self._pool.catalog, self.composites.tools()
        cached = self._digest
        if cached is None or cached[0] is not catalog or cached[1] is not composite_tools:
            digest = catalogue_digest(catalog, composite_tools)
            if cached is None or cached[2] != digest:
                logger.info("catalogue version %s", digest[:VERSION_LENGTH])
            cached = self._digest = (catalog, composite_tools, digest)
        return cached[2][:VERSION_LENGTH]

    def policy(self) -> AccessPolicy:
        """The access policy over what is served now."""
        return AccessPolicy(self._pool.catalog, self.composites.active)

    @property
    def plans(self) -> Plans | None:
        """``run_plan``, while the served config says ``catalog.plans`` (and no composite took the name)."""
        spec = self._pool.config.catalog  # the pool's config: a reload applies at once
        if not spec.plans or RUN_PLAN_TOOL_NAME in self.composites.names:
            return None
        if self._plans is None or self._plans.limits != spec.plan_limits:
            self._plans = Plans(spec.plan_limits)
        return self._plans

    def _offers_plans(self, name: str) -> bool:
        """Whether ``name`` is ``run_plan`` and it is offered: any principal may call it (each step is checked)."""
        return name == RUN_PLAN_TOOL_NAME and self.plans is not None

    # ------------------------------------------------------------ change fan-out

    async def _remember_connection(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        # Every handshake-era connection starts with initialize: remember it once, there.
        if ctx.method == "initialize":
            self._legacy_connections.add(request_connection(ctx))
        return await call_next(ctx)

    async def _stamp_catalogue_version(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """The catalogue version in the handshake's (or discovery's) instructions and ``_meta``.

        Only once every server's first start attempt is over: before that the version would be
        of a catalogue still filling up (a stdio client always connects then), and the
        handshake must not wait for servers. The instructions say where the version always is.
        """
        result = await call_next(ctx)
        if ctx.method not in ("initialize", "server/discover") or not isinstance(result, dict):
            return result
        instructions = result.get("instructions")
        lines = [instructions] if isinstance(instructions, str) else []
        lines.append(_VERSION_INSTRUCTIONS)
        if self.search.spec.mode == "search" or (self._pool.settled and self.search.searching(self._model_tools())):
            lines.append(SEARCH_INSTRUCTIONS)
        if self._pool.settled:
            version = self.catalogue_version
            lines.append(f"Catalogue version {version} when you connected.")
            result = _with_version_meta(result, version)
        result["instructions"] = "\n\n".join(lines)
        return result

    async def _advertise_apps(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """The MCP Apps extension in the handshake's (or discovery's) capabilities, when apps are behind us.

        Until every server's first start attempt is over, whether one offers apps is not known
        (a stdio client always connects then): the extension is declared, which costs a client
        nothing, rather than missed.
        """
        result = await call_next(ctx)
        if ctx.method in ("initialize", "server/discover") and isinstance(result, dict) and self._offers_apps():
            return with_extension(result, UI_EXTENSION)
        return result

    def _offers_apps(self) -> bool:
        """Whether a server behind us offers apps: it declared the extension, or a tool links one."""
        if not self._pool.settled:
            return True
        return self.apps.offers_apps(self._served_tools()) or self._pool.declares_extension(UI_EXTENSION)

    async def _on_catalog_change(self, catalog: Catalog, change: CatalogChange) -> None:
        self._validator.forget()
        composites_changed = self.composites.refresh(
            catalog, quiet=not self._pool.settled, withheld=self._pool.withheld
        )
        if composites_changed and not change.tools:
            change = CatalogChange(tools=True, prompts=change.prompts, resources=change.resources)
        await self._notify(change)
        if change.tools:
            self._prepare_search()

    def _prepare_search(self) -> None:
        """Build the search index of what is served now in the background, so no search waits for it."""
        tools = self._model_tools()
        if self._task_group is not None and self.search.searching(tools):
            self._task_group.start_soon(self.search.prepare, tools, self._pool.catalog)

    def set_redactor(self, redactor: Redactor | None) -> None:
        """Record payloads through ``redactor`` from now on (``None``: record nothing)."""
        self._redactor = redactor

    async def set_composites(self, composites: Composites) -> bool:
        """Serve ``composites`` instead of the current ones (a reload); runs in flight go on.

        Returns:
            Whether the listed composite tools changed (clients were sent ``list_changed``).
        """
        before = self.composites.tools()
        self.composites = composites
        composites.refresh(self._pool.catalog, quiet=not self._pool.settled, withheld=self._pool.withheld)
        changed = composites.tools() != before
        if changed:
            await self._notify(CatalogChange(tools=True, prompts=False, resources=False))
        return changed

    async def catalog_spec_changed(self) -> None:
        """The ``catalog:`` section changed (a reload): clients are told the tool list changed."""
        await self._notify(CatalogChange(tools=True, prompts=False, resources=False))
        self._prepare_search()

    def add_change_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after clients were told a list changed (``catalogue_version`` may differ now).

        It is called in the middle of the change: it must not block (set a flag, an event).
        """
        self._change_listeners.append(listener)

    async def _notify(self, change: CatalogChange) -> None:
        """Tell every client which lists changed: listen streams (2026-07-28) and sessions."""
        try:
            await self._notify_clients(change)
        finally:
            for listener in self._change_listeners:
                listener()

    async def _notify_clients(self, change: CatalogChange) -> None:
        if change.tools:
            await self._bus.publish(ToolsListChanged())
        if change.prompts:
            await self._bus.publish(PromptsListChanged())
        if change.resources:
            await self._bus.publish(ResourcesListChanged())
        for connection in list(self._legacy_connections):
            try:
                if change.tools:
                    await connection.send_tool_list_changed()
                if change.prompts:
                    await connection.send_prompt_list_changed()
                if change.resources:
                    await connection.send_resource_list_changed()
            # Boundary: one dead client connection must not stop the others' notifications.
            except Exception as exc:
                logger.debug("could not notify a client of a list change: %s", type(exc).__name__)
                self._legacy_connections.discard(connection)

    # ------------------------------------------------------------------ tools

    def _list_meta(self) -> dict[str, Any]:
        return {CATALOGUE_VERSION_META_KEY: self.catalogue_version}

    async def list_tools(self) -> list[types.Tool]:
        """Every tool served: the catalogue's, then the active composites (after the start-up grace).

        While runs are durable, composites say they can run as MCP tasks (``execution``).
        """
        await self._pool.wait_settled(self._startup_grace, initial_only=True)
        plans = self.plans
        return [*self._served_tools(), *((plans.tool(),) if plans is not None else ())]

    def _served_tools(self) -> tuple[types.Tool, ...]:
        """Every tool served now, the same tuple until the catalogue, the composites or tasks change."""
        catalog, composites, tasks = self._pool.catalog, self.composites.tools(), self.runs is not None
        cached = self._tools
        if cached is not None and cached[0] is catalog and cached[1] is composites and cached[2] == tasks:
            return cached[3]
        tools = (*catalog.tools, *(self.tasks.with_task_support(composites) if tasks else composites))
        self._tools = (catalog, composites, tasks, tools)
        return tools

    def _model_tools(self) -> tuple[types.Tool, ...]:
        """The served tools a model may see: all but those only an app may call (the same tuple while served is)."""
        return self.apps.model_facing(self._served_tools())

    def catalogue_size(self) -> CatalogueSize:
        """How many tokens the full tool list takes, and whether the model is shown it or search."""
        return self.search.size(self._model_tools())

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=await self._listed_tools(ctx), _meta=self._list_meta())

    async def _serve_wire_lists(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """The four lists answered from their definitions' wire form, made once per change (``WireLists``)."""
        meta = self._list_meta
        served: tuple[BaseModel, ...]
        listed: Sequence[BaseModel]
        if ctx.method == "tools/list":
            listed = await self._listed_tools(ctx)
            served, field, envelope = self._served_tools(), "tools", types.ListToolsResult(tools=[], _meta=meta())
        elif ctx.method == "prompts/list":
            listed = await self._listed_prompts(ctx)
            served, field = self._pool.catalog.prompts, "prompts"
            envelope = types.ListPromptsResult(prompts=[], _meta=meta())
        elif ctx.method == "resources/list":
            listed = await self._listed_resources(ctx)
            served, field = self._pool.catalog.resources, "resources"
            envelope = types.ListResourcesResult(resources=[], _meta=meta())
        elif ctx.method == "resources/templates/list":
            listed = await self._listed_templates(ctx)
            served, field = self._pool.catalog.resource_templates, "resourceTemplates"
            envelope = types.ListResourceTemplatesResult(resource_templates=[], _meta=meta())
        else:
            return await call_next(ctx)
        page, next_cursor = self._page_of(ctx, listed)
        result = self._wire_lists.result(
            ctx.method,
            field,
            ctx.protocol_version,
            served=served,
            listed=page,
            envelope=envelope,
            server_info=self.lowlevel.server_info_stamp,
        )
        if next_cursor is not None:
            result["nextCursor"] = next_cursor
        return result

    def _page_of(
        self, ctx: ServerRequestContext[Any, Any], listed: Sequence[BaseModel]
    ) -> tuple[Sequence[BaseModel], str | None]:
        """The page of ``listed`` the request's cursor names (``serve.page_size`` long), and the next page's cursor.

        Raises:
            MCPError: -32602: the cursor is not one this catalogue made (see ``_pages``).
        """
        raw = ctx.params or {}
        cursor: object = raw.get("cursor")
        size = self._pool.config.serve.page_size
        if cursor is None and size is None:
            return listed, None
        version = self.catalogue_version
        try:
            start = page_start(cursor, version) if isinstance(cursor, str) else 0
        except InvalidCursor as exc:
            raise MCPError(code=types.INVALID_PARAMS, message=str(exc)) from exc
        end = len(listed) if size is None else start + size
        return listed[start:end], cursor_for(version, end) if end < len(listed) else None

    async def _listed_tools(self, ctx: ServerRequestContext[Any, Any]) -> list[types.Tool]:
        """The tools the request's caller is shown (grants, search mode, apps), after the start-up grace."""
        await self._pool.wait_settled(self._startup_grace, initial_only=True)
        model_tools = self._model_tools()
        # A host that renders apps keeps app-only tools from its model; to any other client the
        # list is the model's.
        apps = client_declares(ctx, UI_EXTENSION)
        served = self._served_tools() if apps else model_tools
        principal = request_principal(ctx)
        tools = list(served) if principal.grant.everything else self.policy().tools(principal, served)
        if self.search.searching(model_tools):
            tools = self.search.listed(tools, also=self.apps.kept_in_search if apps else None)
        plans = self.plans
        if plans is not None:  # to every caller: each step of a plan is checked against its grant
            tools.append(plans.tool())
        return tools

    async def _search_tools(self, principal: Principal, arguments: dict[str, Any]) -> types.CallToolResult:
        """``search_tools``: the best matches among the tools ``principal`` may use, with their definitions."""
        await self._pool.wait_settled(self._startup_grace, initial_only=True)
        policy = None if principal.grant.everything else self.policy()

        def allowed(name: str) -> bool:
            return policy is None or policy.tool_allowed(principal, name)

        try:
            return await self.search.search(arguments, self._model_tools(), self._pool.catalog, allowed)
        except InvalidArgumentsError as exc:  # a blank query
            return tool_error_result(exc)

    def mark_ids(self, mark: str) -> None:
        """Begin the ids of suspended calls with ``mark``: one worker of several (``serve --workers``)."""
        self._worker_mark = mark
        if self._rounds is not None:
            self._rounds.token_prefix = mark

    async def __aenter__(self) -> OrchestratorServer:
        self._task_group = task_group = await self._exit_stack.enter_async_context(anyio.create_task_group())
        self._rounds = InputRounds(task_group, token_prefix=self._worker_mark)
        self._prepare_search()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()
        await self._exit_stack.aclose()

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        name, arguments = params.name, params.arguments or {}
        principal = request_principal(ctx)
        meta_call = name in self.search.reserved
        if meta_call:
            answer = await self._meta_tool_call(principal, name, arguments)
            if isinstance(answer, types.CallToolResult):
                return answer
            # call_tool(name, arguments) is the call of that tool, through all a call goes through.
            name, arguments = answer.name, answer.arguments
        await self._wait_for_tool(name)
        try:
            name = self._app_facing_name(ctx, principal, name, by_model=meta_call)
            self._check_granted(principal, name)
            if self._rounds is not None and _can_answer_input(ctx):
                if params.request_state is not None:
                    if not self._rounds.owns(params.request_state):
                        return tool_error_result(InputRoundExpired())
                    return await self._rounds.resume(ctx, params.request_state, params.input_responses)
                self._check_known(name)  # unknown tools fail here, not in the detached task

                async def detached(peer: UpstreamPeer, state: RoundState) -> types.CallToolResult:
                    return await self._controlled_call(name, arguments, state.report_progress, peer, principal)

                return await self._rounds.start(ctx, detached)

            async def progress(progress: float, total: float | None, message: str | None) -> None:
                await ctx.session.report_progress(progress, total, message)

            return await self._controlled_call(name, arguments, progress, self._request_peer(ctx), principal)
        except UnknownToolError as exc:
            if meta_call:  # the model named a tool that is not there: a result it can read and correct
                return tool_error_result(exc)
            raise request_error(exc) from exc

    async def _pass_through_calls(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        """Serve ``tools/call`` of a plain downstream tool on the pass-through path (``_pass_through``).

        Every other call, and any request not a call, goes on to the typed handler.
        """
        if ctx.method != "tools/call":
            return await call_next(ctx)
        chosen = self._pass_through_call(ctx)
        if chosen is None:
            return await call_next(ctx)
        call, principal = chosen
        name, arguments = call.name, call.arguments
        version = self.catalogue_version
        span = trace.get_current_span()
        span.set_attribute(ATTR_CATALOGUE_VERSION, version)
        span.set_attribute(ATTR_PASS_THROUGH, True)
        try:
            result = await self.controls.call(
                principal,
                name,
                arguments,
                lambda: self._call_downstream_wire(name, arguments, self._request_peer(ctx)),
                lambda _: self._served_by(name, None, version),
            )
        except UnknownToolError as exc:  # gone since it was chosen: as the typed path says it
            raise request_error(exc) from exc
        trace_id = current_trace_id()
        ours = {TRACE_META_KEY: {"trace_id": trace_id}} if trace_id is not None else {}
        return served_wire_result(result, ctx.protocol_version, self.lowlevel.server_info_stamp, ours)

    def _pass_through_call(self, ctx: ServerRequestContext[Any, Any]) -> tuple[PlainCall, Principal] | None:
        """The call and its caller when the pass-through path serves ``ctx``; ``None`` for the typed path.

        The path takes a call of a catalogue tool that the caller may use, with nothing else
        to do on the way: no progress to relay, no input rounds the client could answer, no
        app links to rewrite, no payloads to record. Anything else, including every call the
        typed path answers with an error, goes there.
        """
        if self._redactor is not None or not self._pool.config.serve.pass_through or _can_answer_input(ctx):
            return None
        call = plain_call(ctx.params)
        if call is None or not request_connection(ctx).initialize_accepted:
            return None
        name = call.name
        catalog = self._pool.catalog
        if not catalog.has_tool(name) or name in self.search.reserved or name in self.composites.names:
            return None
        if self._offers_plans(name) or self.apps.app_only(self._served_tools(), name):
            return None
        principal = request_principal(ctx)
        if not principal.grant.everything and not self.policy().tool_allowed(principal, name):
            return None
        if catalog.relinks(catalog.route_tool(name).server):
            return None
        return call, principal

    async def _call_downstream_wire(
        self, name: str, arguments: dict[str, Any], peer: UpstreamPeer | None
    ) -> WireResult | types.CallToolResult:
        """``_call_downstream`` on the pass-through path: a successful result stays as the server sent it."""
        try:
            server = await self._checked_call(name, arguments)
            result = await self._pool.call_tool_wire(name, arguments, peer=peer)
        except UnknownToolError:
            raise
        except OrchestratorError as exc:
            return tool_error_result(exc)
        if isinstance(result, WireResult):
            return result
        result = _without_server_info(result)
        return downstream_error_result(result, server) if result.is_error else result

    async def _meta_tool_call(
        self, principal: Principal, name: str, arguments: dict[str, Any]
    ) -> types.CallToolResult | ToolCallRequest:
        """``search_tools``'s answer, or the call a ``call_tool`` asks for; invalid arguments are a tool error."""
        meta_tool = self.search.meta_tool(name)
        assert meta_tool is not None, "only the names search mode reserves come here"
        try:
            problems = self._validator.problems(meta_tool, arguments)
            if problems:
                raise InvalidArgumentsError(name, problems)
            if name != SEARCH_TOOLS:
                return call_tool_request(arguments)
        except InvalidArgumentsError as exc:
            return tool_error_result(exc)
        version = self.catalogue_version
        return await self.controls.call(
            principal,
            name,
            arguments,
            lambda: self._search_tools(principal, arguments),
            lambda _: ServedBy(catalogue_version=version),
        )

    def _app_facing_name(
        self, ctx: ServerRequestContext[Any, Any], principal: Principal, name: str, *, by_model: bool
    ) -> str:
        """The exposed tool a call names, as apps see the catalogue.

        A tool only an app may call does not exist for a model (a ``call_tool`` from search mode)
        or for a client that renders no apps. A client that renders apps may name an app-visible
        tool by its server's own name (what an app's code calls it), while that is unambiguous.

        Raises:
            UnknownToolError: An app-only tool called by a model; or an own name several tools have.
        """
        served = self._served_tools()
        apps = not by_model and client_declares(ctx, UI_EXTENSION)
        if self.apps.app_only(served, name):
            if not apps:
                raise UnknownToolError("tool", name)
            return name
        catalog = self._pool.catalog
        if not apps or catalog.has_tool(name) or name in self.composites.names or self._offers_plans(name):
            return name

        def allowed(exposed: str) -> bool:
            return principal.grant.everything or self.policy().tool_allowed(principal, exposed)

        return self.apps.resolve(catalog, name, allowed) or name

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        """A tool's input schema by name, for the SDK's header checks (saves a full tools/list)."""
        meta_tool = self.search.meta_tool(name) if name in self.search.reserved else None
        if meta_tool is not None:
            return meta_tool.input_schema
        plan = self.composites.plan(name)
        if plan is not None:
            return plan.input_schema
        try:
            return self._pool.catalog.tool(name).input_schema
        except UnknownToolError:
            return None

    def _check_granted(self, principal: Principal, name: str) -> None:
        """A tool the principal may not use is, to them, a tool that does not exist (no oracle).

        Raises:
            UnknownToolError: ``principal`` is not granted ``name``.
        """
        if principal.grant.everything or self._offers_plans(name):
            return
        policy = self.policy()
        if not policy.tool_allowed(principal, name):
            # Suggestions come from what this principal may see only: no oracle for the rest.
            visible = [
                tool.name for tool in policy.tools(principal, [*self._pool.catalog.tools, *self.composites.tools()])
            ]
            raise UnknownToolError("tool", name, close_names(name, visible))

    def _check_known(self, name: str) -> None:
        if name not in self.composites.names and not self._offers_plans(name):
            # Known but withdrawn (its server is unhealthy): the call answers with a tool error.
            with contextlib.suppress(DownstreamError):
                self._pool.tool(name)

    async def _wait_for_tool(self, name: str) -> None:
        """Let a call that arrives during start-up wait for the servers, as listing does.

        A name that is served already goes at once; an unknown one (or a composite not yet
        active) waits, at most the start-up grace, for servers still on their first attempt.
        """
        if name in self.composites.names:
            if name not in self.composites.active:
                await self._pool.wait_settled(self._startup_grace)
            return
        if not self._pool.catalog.has_tool(name):
            await self._pool.wait_settled(self._startup_grace)

    async def call(
        self,
        name: str,
        arguments: dict[str, Any],
        *,
        progress: ProgressFnT | None = None,
        peer: UpstreamPeer | None = None,
    ) -> types.CallToolResult:
        """Call a tool by exposed name, as a client would; failures come back as error results.

        Raises:
            UnknownToolError: No tool is exposed under ``name``.
        """
        await self._wait_for_tool(name)
        return await self._controlled_call(name, arguments, progress, peer, OWNER)

    async def _controlled_call(
        self,
        name: str,
        arguments: dict[str, Any],
        progress: ProgressFnT | None,
        peer: UpstreamPeer | None,
        principal: Principal,
    ) -> types.CallToolResult:
        """``_recorded_call`` through the rate limits and the audit log (``controls``).

        The call is made against the catalogue served when it arrives: its version goes on the
        call's span and in its audit record.
        """
        version = self.catalogue_version
        trace.get_current_span().set_attribute(ATTR_CATALOGUE_VERSION, version)
        return await self.controls.call(
            principal,
            name,
            arguments,
            lambda: self._recorded_call(name, arguments, progress, peer, principal, version),
            lambda result: self._served_by(name, result, version),
        )

    def _served_by(self, name: str, result: types.CallToolResult | None, version: str) -> ServedBy:
        """Where a call went, for its audit record: the downstream tool, or a composite's run."""
        if name in self.composites.names or self._offers_plans(name):
            run: object = (result.meta or {}).get(RUN_META_KEY) if result is not None else None
            run_id = cast("dict[str, object]", run).get("run_id") if isinstance(run, dict) else None
            return ServedBy(run_id=run_id if isinstance(run_id, str) else None, catalogue_version=version)
        if self._pool.catalog.has_tool(name):
            route = self._pool.catalog.route_tool(name)
            return ServedBy(server=route.server, downstream_tool=route.name, catalogue_version=version)
        return ServedBy(catalogue_version=version)

    async def start_composite_task(self, name: str, arguments: dict[str, Any], principal: Principal) -> RunRecord:
        """Start composite ``name`` for ``principal`` as a durable background run (an MCP task).

        Grants and rate limits are the caller's to check first, as for a call; each step's
        call is checked against the principal's grant and audited as a run's steps are.

        Raises:
            UnknownToolError: ``name`` is not a composite.
            WorkflowUnavailable: The composite is withdrawn (its tools do not fit the catalogue).
            InvalidArgumentsError: ``arguments`` do not fit its input schema; nothing ran.
            StoreError: Runs are not journalled here (``runs.journal`` off, or not serving),
                or the journal cannot be written; nothing ran.
        """
        if self.runs is None:
            raise StoreError("run journal", "durable runs are off here (runs.journal), so tasks are not offered")
        await self._wait_for_tool(name)
        version = self.catalogue_version
        return await self.composites.start(
            self._pool,
            name,
            arguments,
            runs=self.runs,
            principal=run_principal(principal),
            wrap_invoker=self._step_invoker(principal, name, version),
            catalogue_version=version,
        )

    async def runs_as_task(self, name: str, principal: Principal) -> bool:
        """Whether tool ``name`` can run as an MCP task for ``principal``: a composite, with durable runs on.

        Raises:
            UnknownToolError: ``principal`` may not call ``name``, or no tool has that name.
        """
        if name in self.search.reserved:
            return False  # search_tools and call_tool answer at once
        await self._wait_for_tool(name)
        self._check_granted(principal, name)
        if self._offers_plans(name):
            return False  # plans run in memory only: never as a task
        if name in self.composites.names:
            return self.runs is not None
        self._pool.catalog.tool(name)
        return False

    async def call_as_task(
        self, name: str, arguments: dict[str, Any], principal: Principal
    ) -> RunRecord | types.CallToolResult:
        """Start composite ``name`` as an MCP task, through what a call passes: grant, rate limit, audit.

        The audit record is of the start (its run id names the task); each step's call is
        checked and audited as the run goes, as a synchronous run's are.

        Returns:
            The run as journalled, or, when a rate limit refused the call, its error result
            (nothing started).

        Raises:
            UnknownToolError: ``principal`` may not call ``name``, or it is not a composite.
            WorkflowUnavailable: The composite is withdrawn (its tools do not fit the catalogue).
            InvalidArgumentsError: ``arguments`` do not fit its input schema; nothing ran.
            StoreError: Runs are not journalled here, or the journal cannot be written.
        """
        await self._wait_for_tool(name)
        self._check_granted(principal, name)
        version = self.catalogue_version
        trace.get_current_span().set_attribute(ATTR_CATALOGUE_VERSION, version)
        started: list[RunRecord] = []

        async def start() -> types.CallToolResult:
            record = await self.start_composite_task(name, arguments, principal)
            started.append(record)
            run = {"run_id": record.id, "status": record.status}
            return types.CallToolResult(content=[], _meta={RUN_META_KEY: run})

        result = await self.controls.call(
            principal, name, arguments, start, lambda result: self._served_by(name, result, version)
        )
        return started[0] if started else result

    def run_hooks(self) -> ServerRunHooks:
        """What a ``RunManager`` needs from this server to resume runs no request waits on."""
        return ServerRunHooks(
            self._pool, lambda principal, composite: self._step_invoker(principal, composite, self.catalogue_version)
        )

    def _step_invoker(
        self, principal: Principal, composite: str, version: str
    ) -> Callable[[ToolInvoker], ToolInvoker] | None:
        """How a run's step calls are checked (grants) and recorded (audit), if at all."""
        audit = self.controls.audit
        if principal.grant.everything and audit is None:
            return None

        def wrap(invoker: ToolInvoker) -> ToolInvoker:
            if not principal.grant.everything:
                invoker = GrantCheckingInvoker(invoker, principal, self.policy)
            if audit is not None:
                invoker = AuditingInvoker(invoker, principal, audit, composite, version)
            return invoker

        return wrap

    async def _recorded_call(
        self,
        name: str,
        arguments: dict[str, Any],
        progress: ProgressFnT | None,
        peer: UpstreamPeer | None,
        principal: Principal,
        version: str,
    ) -> types.CallToolResult:
        """``_call``, with arguments and result recorded on the span when payload recording is on."""
        if self._redactor is None:  # the default: nothing recorded, nothing to do per call
            return await self._call(name, arguments, progress, peer, principal, version)
        span = trace.get_current_span()
        record_payload(span, ATTR_TOOL_CALL_ARGUMENTS, arguments, self._redactor)
        result = await self._call(name, arguments, progress, peer, principal, version)
        record_payload(span, ATTR_TOOL_CALL_RESULT, result.model_dump(mode="json", by_alias=True), self._redactor)
        return result

    async def _call(
        self,
        name: str,
        arguments: dict[str, Any],
        progress: ProgressFnT | None,
        peer: UpstreamPeer | None,
        principal: Principal,
        version: str,
    ) -> types.CallToolResult:
        plans = self.plans
        if name == RUN_PLAN_TOOL_NAME and plans is not None:
            return await plans.run(
                self._pool,
                arguments,
                principal=principal,
                policy=self.policy(),
                progress=progress,
                peer=peer,
                wrap_invoker=self._step_invoker(principal, name, version),
                catalogue_version=version,
                approver=elicitation_approver(peer, self._pool.config.runs.approval_timeout),
            )
        if name in self.composites.names:
            try:
                return await self.composites.call(
                    self._pool,
                    name,
                    arguments,
                    progress=progress,
                    peer=peer,
                    wrap_invoker=self._step_invoker(principal, name, version),
                    catalogue_version=version,
                    runs=self.runs,
                    principal=run_principal(principal),
                    approver=elicitation_approver(peer, self._pool.config.runs.approval_timeout),
                )
            except UnknownToolError:
                raise
            except OrchestratorError as exc:  # withdrawn, or invalid arguments: nothing ran
                return tool_error_result(exc)
        return _with_trace_id(await self._call_downstream(name, arguments, progress, peer))

    async def _checked_call(self, name: str, arguments: dict[str, Any]) -> str:
        """The server a call of downstream tool ``name`` goes to, once the tool and ``arguments`` pass.

        Raises:
            UnknownToolError: No tool is exposed under ``name``.
            DownstreamError: It is withdrawn or held back (why is in the error: a tool error).
            InvalidArgumentsError: ``arguments`` do not fit its input schema.
        """
        tool = await self._pool.admitted_tool(name)
        server = self._pool.catalog.route_tool(name).server
        problems = self._validator.problems(tool, arguments)
        if problems:
            raise InvalidArgumentsError(name, problems)
        return server

    async def _call_downstream(
        self, name: str, arguments: dict[str, Any], progress: ProgressFnT | None, peer: UpstreamPeer | None
    ) -> types.CallToolResult:
        try:
            server = await self._checked_call(name, arguments)
            result = _without_server_info(await self._pool.call_tool(name, arguments, progress=progress, peer=peer))
            catalog = self._pool.catalog
            if catalog.relinks(server):  # links to its resources exposed under other URIs follow them
                result = relinked_result(result, lambda uri: catalog.relink(server, uri))
        except UnknownToolError:
            raise
        except OrchestratorError as exc:
            return tool_error_result(exc)
        return downstream_error_result(result, server) if result.is_error else result

    # ---------------------------------------------------------------- prompts

    async def _list_prompts(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=await self._listed_prompts(ctx), _meta=self._list_meta())

    async def _listed_prompts(self, ctx: ServerRequestContext[Any, Any]) -> list[types.Prompt]:
        await self._pool.wait_settled(self._startup_grace, initial_only=True)
        prompts = list(self._pool.catalog.prompts)
        principal = request_principal(ctx)
        if not principal.grant.everything:
            policy = self.policy()
            prompts = [prompt for prompt in prompts if policy.prompt_allowed(principal, prompt.name)]
        return prompts

    async def _get_prompt(
        self, ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        await self._pool.wait_settled(self._startup_grace)
        try:
            principal = request_principal(ctx)
            if not principal.grant.everything and not self.policy().prompt_allowed(principal, params.name):
                raise UnknownToolError("prompt", params.name)
            return _without_server_info(
                await self._pool.get_prompt(params.name, params.arguments, peer=self._request_peer(ctx))
            )
        except OrchestratorError as exc:
            raise request_error(exc) from exc

    # -------------------------------------------------------------- resources

    async def _list_resources(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=await self._listed_resources(ctx), _meta=self._list_meta())

    async def _listed_resources(self, ctx: ServerRequestContext[Any, Any]) -> list[types.Resource]:
        await self._pool.wait_settled(self._startup_grace, initial_only=True)
        resources = list(self._pool.catalog.resources)
        principal = request_principal(ctx)
        if not principal.grant.everything:
            policy = self.policy()
            resources = [resource for resource in resources if policy.resource_allowed(principal, str(resource.uri))]
        return resources

    async def _list_resource_templates(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        templates = await self._listed_templates(ctx)
        return types.ListResourceTemplatesResult(resource_templates=templates, _meta=self._list_meta())

    async def _listed_templates(self, ctx: ServerRequestContext[Any, Any]) -> list[types.ResourceTemplate]:
        await self._pool.wait_settled(self._startup_grace, initial_only=True)
        templates = list(self._pool.catalog.resource_templates)
        principal = request_principal(ctx)
        if not principal.grant.everything:
            policy = self.policy()
            templates = [
                template for template in templates if policy.template_allowed(principal, template.uri_template)
            ]
        return templates

    async def _complete(
        self, ctx: ServerRequestContext[Any, Any], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        await self._pool.wait_settled(self._startup_grace)
        try:
            self._check_reference(request_principal(ctx), params.ref)
            return await self._pool.complete(params.ref, params.argument, params.context)
        except OrchestratorError as exc:
            raise request_error(exc) from exc

    async def _subscribe_resource(
        self, ctx: ServerRequestContext[Any, Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        await self._pool.wait_settled(self._startup_grace, initial_only=True)
        connection = request_connection(ctx)
        uri = str(params.uri)
        try:
            self._check_resource(request_principal(ctx), uri)
        except OrchestratorError as exc:
            raise request_error(exc) from exc
        mine = self._subscriptions.get(connection)
        if mine is None:
            mine = self._subscriptions[connection] = set()
            # A client that goes away without unsubscribing still lets go of its subscriptions.
            connection.exit_stack.push_async_callback(self._release_all, mine, connection)
        if uri in mine:
            return types.EmptyResult()
        try:
            await self._acquire(uri, connection)
        except OrchestratorError as exc:
            raise request_error(exc) from exc
        mine.add(uri)
        return types.EmptyResult()

    async def _unsubscribe_resource(
        self, ctx: ServerRequestContext[Any, Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        connection = request_connection(ctx)
        uri = str(params.uri)
        mine = self._subscriptions.get(connection, set())
        if uri in mine:
            mine.discard(uri)
            await self._release(uri, connection)
        return types.EmptyResult()

    async def _acquire(self, uri: str, holder: Hashable) -> None:
        """``holder`` subscribes to ``uri``; the first holder subscribes the downstream.

        Raises:
            OrchestratorError: The URI is unknown, or its server refused the subscription.
        """
        holders = self._subscribers.setdefault(uri, set())
        if holders:
            holders.add(holder)
            return
        holders.add(holder)
        try:
            await self._pool.subscribe_resource(uri)
        except OrchestratorError:
            holders.discard(holder)
            if not holders:
                del self._subscribers[uri]
            raise

    async def _release(self, uri: str, holder: Hashable) -> None:
        """``holder`` lets go of ``uri``; the last one to leave unsubscribes the downstream."""
        holders = self._subscribers.get(uri)
        if holders is None or holder not in holders:
            return
        holders.discard(holder)
        if holders:
            return
        del self._subscribers[uri]
        try:
            await self._pool.subscribe_resource(uri, subscribe=False)
        except OrchestratorError as exc:
            logger.info("could not unsubscribe from %s downstream: %s", uri, exc)

    async def _release_all(self, uris: set[str], holder: Hashable) -> None:
        for uri in list(uris):
            await self._release(uri, holder)
        uris.clear()

    async def _listen_with_resources(
        self, ctx: ServerRequestContext[Any, Any], params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        """A 2026-07-28 listen stream; the resources it names are subscribed downstream while it lasts."""
        holder = object()
        held: list[str] = []
        if params.notifications.resource_subscriptions:
            await self._pool.wait_settled(self._startup_grace, initial_only=True)
        principal = request_principal(ctx)
        for uri in params.notifications.resource_subscriptions or ():
            try:
                self._check_resource(principal, uri)
                await self._acquire(uri, holder)
            except OrchestratorError as exc:
                logger.info("listen stream: cannot subscribe to %s: %s", uri, exc)
                continue
            held.append(uri)
        try:
            return await self._listen(ctx, params)
        finally:
            with anyio.CancelScope(shield=True):
                for uri in held:
                    await self._release(uri, holder)

    async def _on_resource_updated(self, uri: str) -> None:
        await self._bus.publish(ResourceUpdated(uri=uri))
        for connection, uris in list(self._subscriptions.items()):
            if uri not in uris:
                continue
            try:
                await connection.send_resource_updated(uri)
            # Boundary: one dead client connection must not stop the others' notifications.
            except Exception as exc:
                logger.debug("could not notify a client of a resource update: %s", type(exc).__name__)
                self._subscriptions.pop(connection, None)

    async def _set_level(
        self, ctx: ServerRequestContext[Any, Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        self._log_levels[request_connection(ctx)] = params.level
        return types.EmptyResult()

    def _request_peer(self, ctx: ServerRequestContext[Any, Any]) -> RequestPeer:
        return RequestPeer(ctx, self._log_levels.get(request_connection(ctx), "debug"))

    async def _read_resource(
        self, ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        await self._pool.wait_settled(self._startup_grace)
        try:
            self._check_resource(request_principal(ctx), str(params.uri))
            return _without_server_info(await self._pool.read_resource(str(params.uri), peer=self._request_peer(ctx)))
        except OrchestratorError as exc:
            raise request_error(exc) from exc

    def _check_resource(self, principal: Principal, uri: str) -> None:
        """Raises: UnknownToolError: ``principal`` may not use the resource ``uri`` (as if it did not exist)."""
        if not principal.grant.everything and not self.policy().resource_allowed(principal, uri):
            raise UnknownToolError("resource", uri)

    def _check_reference(
        self, principal: Principal, ref: types.PromptReference | types.ResourceTemplateReference
    ) -> None:
        """Raises: UnknownToolError: a completion names a prompt or template ``principal`` may not use."""
        if principal.grant.everything:
            return
        policy = self.policy()
        if isinstance(ref, types.PromptReference):
            if not policy.prompt_allowed(principal, ref.name):
                raise UnknownToolError("prompt", ref.name)
        elif not policy.template_allowed(principal, ref.uri):
            raise UnknownToolError("resource template", ref.uri)
