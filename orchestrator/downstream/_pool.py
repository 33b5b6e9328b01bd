"""All downstream servers of a config, started together and merged into one catalogue.

The pool owns the supervisors, the current ``Catalog`` and the routing of calls by exposed
name. It tells listeners when the catalogue changes, naming which lists changed, so the
server layer can send ``list_changed`` upstream.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.dispatcher import ProgressFnT

from orchestrator.catalog import Catalog, ServerManifest, build_catalog
from orchestrator.config import OrchestratorConfig, ServerSpec
from orchestrator.downstream._connection import DownstreamServer, ServerStatus
from orchestrator.downstream._peer import UpstreamPeer
from orchestrator.downstream._retry import BackoffPolicy
from orchestrator.errors import UnknownToolError

__all__ = ["CatalogChange", "CatalogChangeFn", "DownstreamPool", "ResourceListenerFn"]

logger = logging.getLogger(__name__)


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


CatalogChangeFn = Callable[[Catalog, CatalogChange], Awaitable[None]]
ResourceListenerFn = Callable[[str], Awaitable[None]]
"""Told the exposed URI of a resource a downstream server says has changed."""


def _prefix_for(key: str, spec: ServerSpec) -> str | None:
    if spec.prefix is False:
        return None
    return spec.prefix if spec.prefix is not None else key


def _diff(old: Catalog, new: Catalog) -> CatalogChange:
    return CatalogChange(
        tools=old.tools != new.tools,
        prompts=old.prompts != new.prompts,
        resources=old.resources != new.resources or old.resource_templates != new.resource_templates,
    )


class DownstreamPool:
    """The supervised downstream servers of one config and their merged catalogue."""

    def __init__(
        self,
        config: OrchestratorConfig,
        *,
        policy: BackoffPolicy | None = None,
        reserved: Iterable[str] = (),
        child_env: Callable[[str], Mapping[str, str]] | None = None,
    ) -> None:
        self._config = config
        self._reserved = frozenset(reserved)
        self._manifests: dict[str, ServerManifest] = {}
        self._listeners: list[CatalogChangeFn] = []
        self._resource_listeners: list[ResourceListenerFn] = []
        self._lock = anyio.Lock()
        self.catalog: Catalog = build_catalog((), config.naming, self._reserved)
        self.servers: dict[str, DownstreamServer] = {
            key: DownstreamServer(
                key,
                spec,
                on_manifest=self._publish,
                policy=policy,
                prefix=_prefix_for(key, spec),
                extra_env=child_env(key) if child_env is not None else None,
                on_resource_updated=self._resource_updated,
            )
            for key, spec in config.enabled_servers().items()
        }

    @classmethod
    @asynccontextmanager
    async def running(
        cls,
        config: OrchestratorConfig,
        *,
        policy: BackoffPolicy | None = None,
        reserved: Iterable[str] = (),
        child_env: Callable[[str], Mapping[str, str]] | None = None,
    ) -> AsyncGenerator[DownstreamPool, None]:
        """Start every server concurrently; stop them all (whole process groups) on exit.

        Args:
            config: The servers to start (the enabled ones), and the naming rules.
            policy: Restart back-off.
            reserved: Exposed names downstream tools must not take (composite tools).
            child_env: Extra environment of each stdio child by server key (e.g. tracing).
        """
        pool = cls(config, policy=policy, reserved=reserved, child_env=child_env)
        async with anyio.create_task_group() as tg:
            for server in pool.servers.values():
                tg.start_soon(server.run, name=f"supervise {server.name}")
            try:
                yield pool
            finally:
                tg.cancel_scope.cancel()

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

    async def wait_settled(self, timeout: float) -> None:
        """Wait until every server's first start attempt has finished, at most ``timeout`` s."""
        if self.settled:  # the common case, on every call after start-up
            return
        with anyio.move_on_after(timeout):
            for server in self.servers.values():
                await server.wait_settled()

    @property
    def settled(self) -> bool:
        """Whether every server's first start attempt has finished."""
        return all(server.settled for server in self.servers.values())

    def statuses(self) -> list[ServerStatus]:
        """Health of every server, in config order."""
        return [server.status() for server in self.servers.values()]

    async def _publish(self, manifest: ServerManifest) -> None:
        self._manifests[manifest.server] = manifest
        await self._rebuild()

    async def _rebuild(self) -> None:
        async with self._lock:
            old = self.catalog
            self.catalog = build_catalog(self._manifests.values(), self._config.naming, self._reserved)
            change = _diff(old, self.catalog)
            if not change.any:
                return
            for listener in self._listeners:
                await listener(self.catalog, change)

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
        """Call a tool by its exposed name.

        Raises:
            UnknownToolError: No tool is exposed under that name.
            DownstreamError: The server could not serve the call.
        """
        route = self.catalog.route_tool(exposed)
        return await self.server(route.server).call_tool(
            route.name, arguments, timeout=timeout, progress=progress, peer=peer, meta=meta
        )

    async def get_prompt(
        self, exposed: str, arguments: dict[str, str] | None, *, peer: UpstreamPeer | None = None
    ) -> types.GetPromptResult:
        """Get a prompt by its exposed name.

        Raises:
            UnknownToolError: No prompt is exposed under that name.
            DownstreamError: The server could not serve the request.
        """
        route = self.catalog.route_prompt(exposed)
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
            route = self.catalog.route_prompt(ref.name)
            own: types.PromptReference | types.ResourceTemplateReference = types.PromptReference(name=route.name)
        else:
            route = self.catalog.route_template(ref.uri)
            own = types.ResourceTemplateReference(uri=route.name)
        return await self.server(route.server).complete(own, argument, context)

    async def subscribe_resource(self, uri: str, *, subscribe: bool = True) -> None:
        """Forward ``resources/subscribe`` (or unsubscribe) for an exposed URI to its server.

        Raises:
            UnknownToolError: No resource is exposed under that URI.
            DownstreamError: The server could not serve the request.
        """
        route = self.catalog.route_resource(uri)
        await self.server(route.server).subscribe_resource(route.name, subscribe=subscribe)

    async def read_resource(self, uri: str, *, peer: UpstreamPeer | None = None) -> types.ReadResourceResult:
        """Read a resource by its exposed URI.

        Raises:
            UnknownToolError: No resource is exposed under that URI.
            DownstreamError: The server could not serve the request.
        """
        route = self.catalog.route_resource(uri)
        result = await self.server(route.server).read_resource(route.name, peer=peer)
        if route.name == uri:
            return result
        # The URI was rewritten to disambiguate it: answer with the URI the client asked for.
        contents = [c.model_copy(update={"uri": uri}) if str(c.uri) == route.name else c for c in result.contents]
        return result.model_copy(update={"contents": contents})
