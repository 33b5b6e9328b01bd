"""All downstream servers of a config, supervised together and merged into one catalogue.

The pool owns the supervisors, the current ``Catalog`` and the routing of calls by exposed
name. It tells listeners when the catalogue changes, naming which lists changed, so the
server layer can send ``list_changed`` upstream. A server that is unhealthy has its tools
withdrawn from the catalogue (unless its ``health.on_unhealthy`` is ``keep``); they return
when it recovers. ``apply`` moves a running pool to a new config (live reload): servers are
added, removed or restarted as their entries changed, and unchanged ones are not touched.
Every listing passes a ``ManifestGate`` (when one is plugged in) before it joins the
catalogue: what the gate holds back is neither listed nor callable, and a call of a held-back
tool is refused with the gate's reason.

Every listing is also handed to a ``ManifestCache`` (when one is plugged in). A lazy server
(``start: lazy``) whose last listing the cache keeps is not started with the pool: that
listing passes the gate like a live one and is served at once, the server ``cold``; the first
request routed to it starts it, and waits until its live listing has been judged, so a
definition that changed since is held back before the request goes out. A lazy server with no
kept listing is started once to learn it, then stopped when idle like any lazy server.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import mcp_types as types

from orchestrator._egress import EgressRules
from orchestrator.catalog import Catalog, Route, ServerManifest, build_catalog
from orchestrator.downstream._admission import Admission, ManifestGate, Withheld
from orchestrator.downstream._connection import DownstreamServer, ServerStatus
from orchestrator.errors import DefinitionWithheld, DownstreamNotConnected, UnknownToolError

if TYPE_CHECKING:
    from mcp.shared.dispatcher import ProgressFnT

    from orchestrator.config import OrchestratorConfig, ServerSpec
    from orchestrator.downstream._manifest_cache import ManifestCache
    from orchestrator.downstream._retry import BackoffPolicy
    from orchestrator.downstream._transport import AuthForFn, TransportFactoryFn
    from orchestrator.downstream._upstream_peer import UpstreamPeer
    from orchestrator.downstream._wire_result import WireResult

__all__ = ["CatalogChange", "CatalogChangeFn", "DownstreamPool", "PoolChange", "ResourceListenerFn"]

logger = logging.getLogger(__name__)

_RUNTIME_FIELDS = frozenset(
    {
        "tools",
        "prefix",
        "timeout",
        "input_timeout",
        "health",
        "circuit_breaker",
        "retry",
        "disabled",
        "trust",
        "start",
        "idle_timeout",
    }
)
"""Entry fields a running server takes on without a restart; any other change restarts it."""


@dataclass(frozen=True, slots=True)
class CatalogChange:
    """Which exposed lists differ between two catalogues."""

    tools: bool
    prompts: bool
    resources: bool

    @property
    def any(self) -> bool:
        """Whether anything changed."""
        return self.tools or self.prompts or self.resources


@dataclass(frozen=True, slots=True)
class PoolChange:
    """What ``DownstreamPool.apply`` did to the running servers, by key."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()

    @property
    def any(self) -> bool:
        """Whether any server was touched."""
        return bool(self.added or self.removed or self.restarted or self.updated)


CatalogChangeFn = Callable[[Catalog, CatalogChange], Awaitable[None]]
ResourceListenerFn = Callable[[str], Awaitable[None]]
"""Told the exposed URI of a resource a downstream server says has changed."""


def _prefix_for(key: str, spec: ServerSpec) -> str | None:
    if spec.prefix is False:
        return None
    return spec.prefix if spec.prefix is not None else key


def _safe_to_repeat(tool: types.Tool) -> bool:
    """Whether a call of ``tool`` may be retried after a transport fault: it says it is read-only or idempotent."""
    hints = tool.annotations
    return hints is not None and bool(hints.read_only_hint or hints.idempotent_hint)


def _connection_fields(spec: ServerSpec) -> dict[str, Any]:
    return spec.model_dump(exclude=set(_RUNTIME_FIELDS))


def _diff(old: Catalog, new: Catalog) -> CatalogChange:
    return CatalogChange(
        tools=old.tools != new.tools,
        prompts=old.prompts != new.prompts,
        resources=old.resources != new.resources or old.resource_templates != new.resource_templates,
    )


@dataclass
class _Supervised:
    """A server and the scope of the task that supervises it."""

    server: DownstreamServer
    scope: anyio.CancelScope
    stopped: anyio.Event


class DownstreamPool:
    """The supervised downstream servers of one config and their merged catalogue."""

    def __init__(
        self,
        config: OrchestratorConfig,
        *,
        policy: BackoffPolicy | None = None,
        reserved: Iterable[str] = (),
        child_env: Callable[[str], Mapping[str, str]] | None = None,
        transports: TransportFactoryFn | None = None,
        gate: ManifestGate | None = None,
        auth_for: AuthForFn | None = None,
        manifests: ManifestCache | None = None,
    ) -> None:
        self._config = config
        self._gate = gate
        self._manifest_cache = manifests
        self._egress = EgressRules.from_allow(config.egress.allow)
        self._transports = transports
        self._auth_for = auth_for
        self._policy = policy
        self._child_env = child_env
        self._reserved = frozenset(reserved)
        self._listed: dict[str, ServerManifest] = {}
        """Server key -> its latest listing, as it sent it."""
        self._manifests: dict[str, ServerManifest] = {}
        """Server key -> what of its latest listing the gate lets through."""
        self._withheld: dict[str, tuple[Withheld, ...]] = {}
        """Server key -> what the gate held back of its latest listing (only servers with some)."""
        self._withheld_tools: dict[str, tuple[str, Withheld]] = {}
        """Exposed name a held-back tool would have -> its server key and why it is held back."""
        self._admitting: dict[str, anyio.Lock] = {}
        """Server key -> held while a listing of that server is judged: its judgements never overlap."""
        self._listeners: list[CatalogChangeFn] = []
        self._resource_listeners: list[ResourceListenerFn] = []
        self._lock = anyio.Lock()
        self._changes = 0
        """How many rebuilds were asked for; a rebuild takes in every change made before it began."""
        self._built = 0
        """The count of asked-for rebuilds when the catalogue was last built."""
        self.catalog: Catalog = build_catalog((), config.naming, self._reserved)
        self._withdrawn_tools: dict[str, str] = {}
        """Exposed name -> server key, for the tools of servers withdrawn while unhealthy."""
        self.servers: dict[str, DownstreamServer] = {
            key: self._new_server(key, spec) for key, spec in config.enabled_servers().items()
        }
        self._initial = frozenset(self.servers)
        self._supervised: dict[str, _Supervised] = {}
        self._task_group: anyio.abc.TaskGroup | None = None

    def _new_server(self, key: str, spec: ServerSpec) -> DownstreamServer:
        return DownstreamServer(
            key,
            spec,
            on_manifest=self._publish,
            policy=self._policy,
            prefix=_prefix_for(key, spec),
            extra_env=self._child_env(key) if self._child_env is not None else None,
            on_resource_updated=self._resource_updated,
            on_health_change=self._rebuild,
            transports=self._transports,
            egress=lambda: self._egress,
            auth_for=self._auth_for,
        )

    @classmethod
    @asynccontextmanager
    async def running(
        cls,
        config: OrchestratorConfig,
        *,
        policy: BackoffPolicy | None = None,
        reserved: Iterable[str] = (),
        child_env: Callable[[str], Mapping[str, str]] | None = None,
        transports: TransportFactoryFn | None = None,
        gate: ManifestGate | None = None,
        auth_for: AuthForFn | None = None,
        manifests: ManifestCache | None = None,
    ) -> AsyncGenerator[DownstreamPool, None]:
        """Start every server concurrently; stop them all (whole process groups) on exit.

        Args:
            config: The servers to start (the enabled ones), and the naming rules.
            policy: Restart back-off.
            reserved: Exposed names downstream tools must not take (composite tools).
            child_env: Extra environment of each stdio child by server key (e.g. tracing).
            transports: Builds each server's transport by key instead of its config entry
                (in-process servers); the entry's other settings still apply.
            gate: Judges every listing before it is served (the trust layer); default: all served.
            auth_for: Builds the OAuth auth of each connection to an HTTP server with
                ``auth: oauth`` (the tokens are the layer above's; see ``AuthForFn``).
            manifests: Keeps every server's listings, and serves a lazy server's last one
                without starting it; default none kept (a lazy server is started once to
                learn its listing, then stopped when idle).
        """
        pool = cls(
            config,
            policy=policy,
            reserved=reserved,
            child_env=child_env,
            transports=transports,
            gate=gate,
            auth_for=auth_for,
            manifests=manifests,
        )
        async with anyio.create_task_group() as tg:
            pool._task_group = tg
            for server in pool.servers.values():
                pool._start(server)
            try:
                yield pool
            finally:
                pool._task_group = None
                tg.cancel_scope.cancel()

    def _start(self, server: DownstreamServer) -> None:
        assert self._task_group is not None, "the pool is not running"
        supervised = _Supervised(server, anyio.CancelScope(), anyio.Event())

        async def supervise() -> None:
            try:
                with supervised.scope:
                    if server.lazy:
                        await self._serve_kept_listing(server)
                    await server.run()
            finally:
                supervised.stopped.set()

        self._supervised[server.name] = supervised
        self._task_group.start_soon(supervise, name=f"supervise {server.name}")

    async def _serve_kept_listing(self, server: DownstreamServer) -> None:
        """Serve a lazy server's last listing, if one is kept for its settings, without starting it."""
        if self._manifest_cache is None:
            return
        kept = await self._manifest_cache.load(server.name, server.spec)
        if kept is None:
            logger.info("server %r (lazy): no listing kept for its settings; starting it once to learn it", server.name)
            return
        if self.servers.get(server.name) is not server:
            return  # stopped by a reload meanwhile
        await server.serve_cold(len(kept.tools))
        await self._admit(server.reshape(kept))
        await self._rebuild()
        server.settle()
        logger.info(
            "server %r (lazy): serving its last listing (%d tools); it starts on the first call that needs it",
            server.name,
            len(kept.tools),
        )

    async def _stop(self, key: str) -> None:
        """Stop one server (its whole process group) and forget its catalogue."""
        supervised = self._supervised.pop(key, None)
        self.servers.pop(key, None)
        self._listed.pop(key, None)
        self._manifests.pop(key, None)
        self._withheld.pop(key, None)
        if supervised is None:
            return
        supervised.scope.cancel()
        await supervised.stopped.wait()

    @property
    def config(self) -> OrchestratorConfig:
        """The config the pool runs now."""
        return self._config

    async def apply(self, config: OrchestratorConfig, reserved: Iterable[str] | None = None) -> PoolChange:
        """Move the running pool to ``config``: the live-reload step of the downstream layer.

        Servers whose entry appeared are started, those whose entry disappeared (or became
        ``disabled``) are stopped, and those whose connection settings changed (command,
        args, env, cwd, url, headers, type) are restarted. A change of only ``tools``,
        ``prefix``, ``timeout``, ``health``, ``circuit_breaker``, ``retry``, ``start`` or
        ``idle_timeout`` is taken on without a restart (see ``DownstreamServer.reconfigure``
        for ``start``). Other servers, and their calls in flight, are not touched.

        Args:
            config: The new configuration (already validated).
            reserved: The new composite names, when they changed.

        Returns:
            What was done, by server key.
        """
        old, new = self._config.enabled_servers(), config.enabled_servers()
        added = tuple(key for key in new if key not in old)
        removed = tuple(key for key in old if key not in new)
        common = [key for key in new if key in old]
        restarted = tuple(key for key in common if _connection_fields(old[key]) != _connection_fields(new[key]))
        updated = tuple(key for key in common if key not in restarted and old[key] != new[key])
        checks_changed = config.trust.checks != self._config.trust.checks
        self._config = config
        # Taken by every connection from now on; connections already up are not re-checked.
        self._egress = EgressRules.from_allow(config.egress.allow)
        if reserved is not None:
            self._reserved = frozenset(reserved)
        for key in (*removed, *restarted):
            logger.info("server %r: %s by a config reload", key, "stopped" if key in removed else "restarting")
            await self._stop(key)
        for key in updated:
            self.servers[key].reconfigure(new[key], _prefix_for(key, new[key]))
            listed = self._listed.get(key)
            if listed is not None:  # judged again: its trust mode may be what changed
                await self._admit(self.servers[key].reshape(listed))
        if checks_changed:  # what the definition checks do changed: every listing is judged again
            for key in common:
                if key not in restarted and key not in updated and key in self._listed:
                    await self._admit(self._listed[key])
        for key in (*added, *restarted):
            server = self._new_server(key, new[key])
            self.servers[key] = server
            self._start(server)
        await self._rebuild()
        return PoolChange(added=added, removed=removed, restarted=restarted, updated=updated)

    def add_listener(self, listener: CatalogChangeFn) -> None:
        """Call ``listener`` after every change of the catalogue."""
        self._listeners.append(listener)

    def add_resource_listener(self, listener: ResourceListenerFn) -> None:
        """Call ``listener`` with the exposed URI whenever a downstream resource changes."""
        self._resource_listeners.append(listener)

    async def _resource_updated(self, server: str, uri: str) -> None:
        exposed = self.catalog.exposed_resource_uri(server, uri)
        for listener in self._resource_listeners:
            await listener(exposed)

    async def set_reserved(self, names: Iterable[str]) -> None:
        """Reserve exposed names (composite tools) that downstream tools must not take."""
        self._reserved = frozenset(names)
        await self._rebuild()

    async def wait_settled(self, timeout: float, *, initial_only: bool = False) -> None:
        """Wait until servers still on their first start attempt have finished it, at most ``timeout`` s.

        Args:
            timeout: The longest wait.
            initial_only: Wait only for the servers of the config the pool started with, not
                for servers a reload added (whose tools join with a ``list_changed``).
        """
        if self.settled:  # the common case, on every call after start-up
            return
        with anyio.move_on_after(timeout):
            for key, server in list(self.servers.items()):
                if not initial_only or key in self._initial:
                    await server.wait_settled()

    @property
    def settled(self) -> bool:
        """Whether every server's first start attempt has finished."""
        return all(server.settled for server in self.servers.values())

    def statuses(self) -> list[ServerStatus]:
        """Health of every server, in config order."""
        return [server.status() for server in self.servers.values()]

    async def _publish(self, manifest: ServerManifest) -> None:
        server = self.servers.get(manifest.server)
        if server is None:
            return  # a server stopped by a reload, still finishing its listing
        await self._admit(manifest)
        await self._rebuild()
        if self._manifest_cache is not None:  # every server's: one switched to lazy later starts cold
            await self._manifest_cache.save(manifest, server.spec)

    async def _admit(self, manifest: ServerManifest) -> None:
        """Record ``manifest`` as the server's listing, and what of it the gate lets through.

        Listings of different servers are judged at the same time (each one's reads and writes of
        its pins overlap the others'), one server's one after the other.
        """
        key = manifest.server
        async with self._admitting.setdefault(key, anyio.Lock()):
            if self._gate is None:
                admission = Admission(manifest)
            else:
                admission = await self._gate.admit(manifest, self._config, self._exposed_elsewhere(key))
            if key not in self.servers:
                return  # stopped by a reload while it was judged
            self._listed[key] = manifest
            self._manifests[key] = admission.served
            if admission.withheld:
                self._withheld[key] = admission.withheld
            else:
                self._withheld.pop(key, None)

    def _exposed_elsewhere(self, key: str) -> dict[str, frozenset[str]]:
        """Every other configured server's key -> the tool names exposed for it now."""
        names: dict[str, set[str]] = {other: set() for other in self._config.enabled_servers() if other != key}
        for mapping in self.catalog.mappings:
            if mapping.kind == "tool" and mapping.server in names:
                names[mapping.server].add(mapping.exposed)
        return {other: frozenset(exposed) for other, exposed in names.items()}

    @property
    def withheld(self) -> Mapping[str, tuple[Withheld, ...]]:
        """Server key -> the definitions of its latest listing held back (servers with none left out)."""
        return dict(self._withheld)

    async def recheck(self, keys: Iterable[str] | None = None) -> None:
        """Judge the latest listing of servers with held-back definitions again (an approval may have come).

        Args:
            keys: Only these servers (those among them with held-back definitions); default all.
        """
        wanted = set(self._withheld) if keys is None else set(keys) & set(self._withheld)
        if not wanted:  # the common case: nothing held back, nothing to ask
            return
        for key in wanted:
            listed = self._listed.get(key)
            if listed is not None and key in self.servers:
                await self._admit(listed)
        await self._rebuild()

    async def relist(self) -> None:
        """List every connected server again now, and wait until each listing is published.

        For a change the servers did not announce to this process (another process saw it):
        what differs is judged and served, and the listeners hear of it as usual. Each server is
        waited for at most its ``timeout``; cold and disconnected servers are not started.
        """

        async def relist_one(server: DownstreamServer) -> None:
            with anyio.move_on_after(server.spec.timeout):
                await server.relist()

        async with anyio.create_task_group() as tg:
            for server in list(self.servers.values()):
                tg.start_soon(relist_one, server)

    def _serves(self, key: str) -> bool:
        server = self.servers.get(key)
        return server is not None and (server.healthy or server.spec.health.on_unhealthy == "keep")

    async def _rebuild(self) -> None:
        """Build the catalogue from what is served now, and tell the listeners what changed.

        A call made while another rebuild tells its listeners waits for it; if a rebuild has
        begun since this call (it read everything this call's caller had changed), that one
        stands for this one too: many servers connecting at once cost one rebuild, not many.
        """
        self._changes += 1
        wanted = self._changes
        async with self._lock:
            if self._built >= wanted:
                return
            self._built = self._changes
            old = self.catalog
            served = [m for key, m in self._manifests.items() if self._serves(key)]
            self.catalog = build_catalog(served, self._config.naming, self._reserved)
            withdrawn = {key for key in self._manifests if not self._serves(key)}
            self._withdrawn_tools = {}
            if withdrawn:
                everything = build_catalog(self._manifests.values(), self._config.naming, self._reserved)
                self._withdrawn_tools = {
                    mapping.exposed: mapping.server
                    for mapping in everything.mappings
                    if mapping.kind == "tool" and mapping.server in withdrawn
                }
            self._withheld_tools = self._held_back_tools(served)
            change = _diff(old, self.catalog)
            if not change.any:
                return
            for listener in self._listeners:
                await listener(self.catalog, change)

    def _held_back_tools(self, served: list[ServerManifest]) -> dict[str, tuple[str, Withheld]]:
        """The exposed name each held-back tool of a served server would have, with why it is held back."""
        held = {
            (key, item.name): item
            for key, items in self._withheld.items()
            if self._serves(key)
            for item in items
            if item.kind == "tool"
        }
        if not held:
            return {}
        # Named as if served, so the caller who knew the tool by that name learns why it is gone.
        listed = [self._listed.get(m.server, m) if m.server in self._withheld else m for m in served]
        everything = build_catalog(listed, self._config.naming, self._reserved)
        return {
            mapping.exposed: (mapping.server, held[mapping.server, mapping.original])
            for mapping in everything.mappings
            if mapping.kind == "tool" and (mapping.server, mapping.original) in held
        }

    # -------------------------------------------------------------- routing

    def server(self, key: str) -> DownstreamServer:
        """The server configured under ``key``.

        Raises:
            UnknownToolError: No enabled server has that key.
        """
        try:
            return self.servers[key]
        except KeyError:
            raise UnknownToolError("server", key) from None

    def declares_extension(self, identifier: str) -> bool:
        """Whether any connected server declared the extension ``identifier`` in its capabilities."""
        return any(identifier in server.extensions for server in self.servers.values())

    def tool(self, exposed: str) -> types.Tool:
        """The tool exposed under ``exposed``.

        Raises:
            DefinitionWithheld: Its definition is held back (changed, new or quarantined).
            DownstreamNotConnected: It belongs to a server withdrawn while unhealthy.
            UnknownToolError: No tool is exposed under that name.
        """
        try:
            return self.catalog.tool(exposed)
        except UnknownToolError:
            held = self._withheld_tools.get(exposed)
            if held is not None:
                key, item = held
                raise DefinitionWithheld(key, item.reason, tool=item.name) from None
            server = self._withdrawn_tools.get(exposed)
            if server is None or server not in self.servers:
                raise
            reason = self.servers[server].health.reason or "unhealthy"
            raise DownstreamNotConnected(
                server, f"unhealthy ({reason}); its tools are withdrawn until it recovers"
            ) from None

    async def admitted_tool(self, exposed: str) -> types.Tool:
        """``tool(exposed)``, judging its server's listing again first if it is held back.

        An approval made elsewhere (``orchestrator pins approve`` in another process) takes
        effect on the next call, without waiting for the periodic re-check.

        Raises:
            DefinitionWithheld: Still held back.
            DownstreamNotConnected: It belongs to a server withdrawn while unhealthy.
            UnknownToolError: No tool is exposed under that name.
        """
        try:
            return self.tool(exposed)
        except DefinitionWithheld as exc:
            await self.recheck([exc.server])
        return self.tool(exposed)

    async def call_tool(
        self,
        exposed: str,
        arguments: dict[str, Any] | None,
        *,
        progress: ProgressFnT | None = None,
        peer: UpstreamPeer | None = None,
        meta: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> types.CallToolResult:
        """Call a tool by its exposed name; read-only and idempotent tools may be retried.

        Raises:
            UnknownToolError: No tool is exposed under that name.
            DownstreamError: The server could not serve the call.
        """
        tool, route = await self._callable_tool(exposed)
        return await self.server(route.server).call_tool(
            route.name, arguments, timeout=timeout, progress=progress, peer=peer, meta=meta, retry=_safe_to_repeat(tool)
        )

    async def call_tool_wire(
        self, exposed: str, arguments: dict[str, Any] | None, *, peer: UpstreamPeer | None = None
    ) -> WireResult | types.CallToolResult:
        """``call_tool``, with a successful result left as the server sent it (``DownstreamServer.call_tool_wire``).

        Raises:
            UnknownToolError: No tool is exposed under that name.
            DownstreamError: The server could not serve the call.
        """
        tool, route = await self._callable_tool(exposed)
        return await self.server(route.server).call_tool_wire(
            route.name,
            arguments,
            peer=peer,
            retry=_safe_to_repeat(tool),
        )

    async def _callable_tool(self, exposed: str) -> tuple[types.Tool, Route]:
        """The tool a call by exposed name goes to, and its route; a cold server is started for it.

        Raises:
            UnknownToolError: No tool is exposed under that name.
            DownstreamError: The tool is withdrawn or held back (why is in the error).
        """
        tool = await self.admitted_tool(exposed)
        route = self.catalog.route_tool(exposed)
        if self.server(route.server).lazy:
            # Started now if cold; the call meets its live listing as judged (withheld if changed).
            await self.server(route.server).wake()
            tool = await self.admitted_tool(exposed)
            route = self.catalog.route_tool(exposed)
        return tool, route

    async def get_prompt(
        self, exposed: str, arguments: dict[str, str] | None, *, peer: UpstreamPeer | None = None
    ) -> types.GetPromptResult:
        """Get a prompt by its exposed name.

        Raises:
            UnknownToolError: No prompt is exposed under that name.
            DownstreamError: The server could not serve the request.
        """
        route = await self._awake(lambda: self.catalog.route_prompt(exposed))
        return await self.server(route.server).get_prompt(route.name, arguments, peer=peer)

    async def complete(
        self,
        ref: types.PromptReference | types.ResourceTemplateReference,
        argument: types.CompletionArgument,
        context: types.CompletionContext | None,
    ) -> types.CompleteResult:
        """Forward ``completion/complete`` for an exposed prompt or resource template to its server.

        Raises:
            UnknownToolError: No prompt or template is exposed under the reference.
            DownstreamError: The server could not serve the request.
        """
        if isinstance(ref, types.PromptReference):
            name = ref.name
            route = await self._awake(lambda: self.catalog.route_prompt(name))
            own: types.PromptReference | types.ResourceTemplateReference = types.PromptReference(name=route.name)
        else:
            uri = ref.uri
            route = await self._awake(lambda: self.catalog.route_template(uri))
            own = types.ResourceTemplateReference(uri=route.name)
        return await self.server(route.server).complete(own, argument, context)

    async def subscribe_resource(self, uri: str, *, subscribe: bool = True) -> None:
        """Forward ``resources/subscribe`` (or unsubscribe) for an exposed URI to its server.

        Raises:
            UnknownToolError: No resource is exposed under that URI.
            DownstreamError: The server could not serve the request.
        """
        if subscribe:
            route = await self._awake(lambda: self.catalog.route_resource(uri))
        else:  # forgetting a subscription does not start a cold server
            route = self.catalog.route_resource(uri)
        await self.server(route.server).subscribe_resource(route.name, subscribe=subscribe)

    async def read_resource(self, uri: str, *, peer: UpstreamPeer | None = None) -> types.ReadResourceResult:
        """Read a resource by its exposed URI.

        Raises:
            UnknownToolError: No resource is exposed under that URI.
            DownstreamError: The server could not serve the request.
        """
        route = await self._awake(lambda: self.catalog.route_resource(uri))
        result = await self.server(route.server).read_resource(route.name, peer=peer)
        if route.name == uri:
            return result
        # The URI was rewritten to disambiguate it: answer with the URI the client asked for.
        contents = [c.model_copy(update={"uri": uri}) if str(c.uri) == route.name else c for c in result.contents]
        return result.model_copy(update={"contents": contents})

    async def _awake(self, route: Callable[[], Route]) -> Route:
        """``route()``, after starting its server if it is a cold lazy one (and routed again then).

        Raises:
            UnknownToolError: Nothing is exposed under the name (before or after the start).
            DownstreamError: A cold server did not start.
        """
        found = route()
        server = self.server(found.server)
        if not server.lazy:
            return found
        await server.wake()
        return route()
