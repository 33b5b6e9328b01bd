"""The upstream MCP server: the merged catalogue served as one MCP server.

Built on the SDK's low-level ``Server`` because the catalogue changes at run time. Serves
clients of both protocol eras: handshake-era connections get ``list_changed`` on their
session, 2026-07-28 clients through ``subscriptions/listen``. Errors reach the wire only
through ``orchestrator.server._errors``.
"""

from __future__ import annotations

import logging
import weakref
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import anyio
import mcp_types as types
from mcp.server.connection import Connection
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.subscriptions import PromptsListChanged, ResourcesListChanged, ResourceUpdated, ToolsListChanged
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from opentelemetry import trace

from orchestrator._version import __version__
from orchestrator.catalog import Catalog
from orchestrator.downstream import CatalogChange, DownstreamPool, UpstreamPeer
from orchestrator.errors import OrchestratorError, UnknownToolError
from orchestrator.server._composites import Composites
from orchestrator.server._errors import request_error, tool_error_result
from orchestrator.server._peer import RequestPeer
from orchestrator.server._rounds import InputRounds, RoundState
from orchestrator.server._validate import ArgumentValidator
from orchestrator.tracing import ATTR_TOOL_CALL_ARGUMENTS, ATTR_TOOL_CALL_RESULT, Redactor, record_payload

__all__ = ["OrchestratorServer"]

logger = logging.getLogger(__name__)

SERVER_NAME = "mcp-orchestrator"
SERVER_VERSION = __version__
_INSTRUCTIONS = (
    "Tools from several MCP servers, merged. Each tool name starts with its server's prefix; "
    "composite tools run a whole workflow of tool calls in one call."
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
    """A 2026-07-28 client that declared sampling or elicitation can answer input rounds."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False
    caps = ctx.session.client_capabilities
    return caps is not None and (caps.sampling is not None or caps.elicitation is not None)


_ResultT = TypeVar("_ResultT", types.CallToolResult, types.GetPromptResult, types.ReadResourceResult)


def _own(result: _ResultT) -> _ResultT:
    """A downstream result without the downstream's ``serverInfo`` stamp: the client talks to us."""
    meta = result.meta
    if not meta or types.SERVER_INFO_META_KEY not in meta:
        return result
    rest = {key: value for key, value in meta.items() if key != types.SERVER_INFO_META_KEY}
    return result.model_copy(update={"meta": rest or None})


def _connection(ctx: ServerRequestContext[Any, Any]) -> Connection:
    # The SDK offers no public accessor for a request's connection yet.
    return ctx.session._connection  # pyright: ignore[reportPrivateUsage]


def _expired_round() -> types.CallToolResult:
    text = "this call's input round expired or is unknown; call the tool again"
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


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
        self.composites.refresh(pool.catalog, quiet=True)
        self._startup_grace = startup_grace
        self._bus = InMemorySubscriptionBus()
        self._listen = ListenHandler(self._bus)
        # Handshake-era connections, to notify of list changes; weak so closed ones vanish.
        self._legacy_connections: weakref.WeakSet[Connection] = weakref.WeakSet()
        # Resources each handshake-era connection subscribed to, to relay their updates.
        self._subscriptions: weakref.WeakKeyDictionary[Connection, set[str]] = weakref.WeakKeyDictionary()
        # The level each handshake-era connection asked for with logging/setLevel (default: all).
        self._log_levels: weakref.WeakKeyDictionary[Connection, types.LoggingLevel] = weakref.WeakKeyDictionary()
        self._validator = ArgumentValidator()
        self._exit_stack = AsyncExitStack()
        self._rounds: InputRounds | None = None
        self.lowlevel = _AggregatorServer(
            SERVER_NAME,
            version=SERVER_VERSION,
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
            on_subscriptions_listen=self._listen,
        )
        # Deprecated at 2026-07-28 (SEP-2577), but handshake-era clients set it.
        self.lowlevel.add_request_handler("logging/setLevel", types.SetLevelRequestParams, self._set_level)
        self.lowlevel.middleware.append(self._remember_connection)
        pool.add_listener(self._on_catalog_change)
        pool.add_resource_listener(self._on_resource_updated)

    @property
    def catalog(self) -> Catalog:
        """The catalogue being served now."""
        return self._pool.catalog

    # ------------------------------------------------------------ change fan-out

    async def _remember_connection(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        # Every handshake-era connection starts with initialize: remember it once, there.
        if ctx.method == "initialize":
            self._legacy_connections.add(_connection(ctx))
        return await call_next(ctx)

    async def _on_catalog_change(self, catalog: Catalog, change: CatalogChange) -> None:
        self._validator.forget()
        composites_changed = self.composites.refresh(catalog, quiet=not self._pool.settled)
        if composites_changed and not change.tools:
            change = CatalogChange(tools=True, prompts=change.prompts, resources=change.resources)
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

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        await self._pool.wait_settled(self._startup_grace)
        return types.ListToolsResult(tools=[*self._pool.catalog.tools, *self.composites.tools()])

    async def __aenter__(self) -> OrchestratorServer:
        self._task_group = await self._exit_stack.enter_async_context(anyio.create_task_group())
        self._rounds = InputRounds(self._task_group)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._task_group.cancel_scope.cancel()
        await self._exit_stack.aclose()

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        name, arguments = params.name, params.arguments or {}
        try:
            if self._rounds is not None and _can_answer_input(ctx):
                if params.request_state is not None:
                    if not self._rounds.owns(params.request_state):
                        return _expired_round()
                    return await self._rounds.resume(ctx, params.request_state, params.input_responses)
                self._check_known(name)  # unknown tools fail here, not in the detached task

                async def detached(peer: UpstreamPeer, state: RoundState) -> types.CallToolResult:
                    return await self.call(name, arguments, progress=state.report_progress, peer=peer)

                return await self._rounds.start(ctx, detached)

            async def progress(progress: float, total: float | None, message: str | None) -> None:
                await ctx.session.report_progress(progress, total, message)

            return await self.call(name, arguments, progress=progress, peer=self._peer(ctx))
        except UnknownToolError as exc:
            raise request_error(exc) from exc

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        """A tool's input schema by name, for the SDK's header checks (saves a full tools/list)."""
        plan = self.composites.plan(name)
        if plan is not None:
            return plan.input_schema
        try:
            return self._pool.catalog.tool(name).input_schema
        except UnknownToolError:
            return None

    def _check_known(self, name: str) -> None:
        if name not in self.composites.names:
            self._pool.catalog.tool(name)

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
        await self._pool.wait_settled(self._startup_grace)
        if self._redactor is None:  # the default: nothing recorded, nothing to do per call
            return await self._call(name, arguments, progress, peer)
        span = trace.get_current_span()
        record_payload(span, ATTR_TOOL_CALL_ARGUMENTS, arguments, self._redactor)
        result = await self._call(name, arguments, progress, peer)
        record_payload(span, ATTR_TOOL_CALL_RESULT, result.model_dump(mode="json", by_alias=True), self._redactor)
        return result

    async def _call(
        self, name: str, arguments: dict[str, Any], progress: ProgressFnT | None, peer: UpstreamPeer | None
    ) -> types.CallToolResult:
        if name in self.composites.names:
            return await self.composites.call(self._pool, name, arguments, progress=progress, peer=peer)
        tool = self._pool.catalog.tool(name)
        problems = self._validator.problems(tool, arguments)
        if problems:
            text = f"invalid arguments for tool {name!r}:\n" + "\n".join(f"- {p}" for p in problems)
            return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)
        try:
            return _own(await self._pool.call_tool(name, arguments, progress=progress, peer=peer))
        except UnknownToolError:
            raise
        except OrchestratorError as exc:
            return tool_error_result(exc)

    # ---------------------------------------------------------------- prompts

    async def _list_prompts(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        await self._pool.wait_settled(self._startup_grace)
        return types.ListPromptsResult(prompts=list(self._pool.catalog.prompts))

    async def _get_prompt(
        self, ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        await self._pool.wait_settled(self._startup_grace)
        try:
            return _own(await self._pool.get_prompt(params.name, params.arguments, peer=self._peer(ctx)))
        except OrchestratorError as exc:
            raise request_error(exc) from exc

    # -------------------------------------------------------------- resources

    async def _list_resources(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        await self._pool.wait_settled(self._startup_grace)
        return types.ListResourcesResult(resources=list(self._pool.catalog.resources))

    async def _list_resource_templates(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        await self._pool.wait_settled(self._startup_grace)
        return types.ListResourceTemplatesResult(resource_templates=list(self._pool.catalog.resource_templates))

    async def _complete(
        self, ctx: ServerRequestContext[Any, Any], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        await self._pool.wait_settled(self._startup_grace)
        try:
            return await self._pool.complete(params.ref, params.argument, params.context)
        except OrchestratorError as exc:
            raise request_error(exc) from exc

    async def _subscribe_resource(
        self, ctx: ServerRequestContext[Any, Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        await self._pool.wait_settled(self._startup_grace)
        try:
            await self._pool.subscribe_resource(str(params.uri))
        except OrchestratorError as exc:
            raise request_error(exc) from exc
        self._subscriptions.setdefault(_connection(ctx), set()).add(str(params.uri))
        return types.EmptyResult()

    async def _unsubscribe_resource(
        self, ctx: ServerRequestContext[Any, Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        await self._pool.wait_settled(self._startup_grace)
        try:
            await self._pool.subscribe_resource(str(params.uri), subscribe=False)
        except OrchestratorError as exc:
            raise request_error(exc) from exc
        self._subscriptions.get(_connection(ctx), set()).discard(str(params.uri))
        return types.EmptyResult()

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
        self._log_levels[_connection(ctx)] = params.level
        return types.EmptyResult()

    def _peer(self, ctx: ServerRequestContext[Any, Any]) -> RequestPeer:
        return RequestPeer(ctx, self._log_levels.get(_connection(ctx), "debug"))

    async def _read_resource(
        self, ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        await self._pool.wait_settled(self._startup_grace)
        try:
            return _own(await self._pool.read_resource(str(params.uri), peer=self._peer(ctx)))
        except OrchestratorError as exc:
            raise request_error(exc) from exc
