"""Listing what a connected downstream server offers, and keeping that list current.

``fetch_manifest`` lists tools, prompts, resources and templates: it follows pagination (a
server that paginates forever is cut off) and treats a list the server advertised but does
not implement as empty. ``CatalogueWatch`` re-lists whenever the server says a list changed
(a notification on handshake-era connections, a ``subscriptions/listen`` stream on 2026-07-28
ones) and publishes the new manifest; a failed re-listing is logged and the old one stays.

Does not: connect, supervise, or map errors to the ``DownstreamError`` tree (``fetch_manifest``
raises the SDK's ``MCPError``; the connection maps what it must).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, TypeVar

import anyio
import mcp_types as types
from mcp import Client, MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from orchestrator.catalog import ServerManifest
from orchestrator.downstream._error_mapping import describe_fault

if TYPE_CHECKING:
    from orchestrator.config import ToolFilterSpec

__all__ = ["CatalogueWatch", "ListFn", "ManifestFn", "fetch_manifest"]

logger = logging.getLogger(__name__)

ManifestFn = Callable[[ServerManifest], Awaitable[None]]
"""Publishes a server's (new) manifest."""
ListFn = Callable[[Client], Awaitable[ServerManifest]]
"""Lists everything a connected server offers (``fetch_manifest`` with the server's settings)."""

_LIST_PAGE_CAP = 100

_PageT = TypeVar("_PageT", bound=types.PaginatedResult)
_ItemT = TypeVar("_ItemT")


async def fetch_manifest(
    client: Client, server: str, prefix: str | None, tool_filter: ToolFilterSpec
) -> ServerManifest:
    """Everything ``client``'s server lists, as the manifest of ``server``.

    Raises:
        MCPError: A listing failed (other than a non-mandatory list not being implemented).
    """
    caps = client.server_capabilities
    tools: list[types.Tool] = []
    prompts: list[types.Prompt] = []
    resources: list[types.Resource] = []
    templates: list[types.ResourceTemplate] = []
    if caps.tools is not None:
        tools = await _all_pages(lambda cursor: client.list_tools(cursor=cursor), lambda page: page.tools)
    if caps.prompts is not None:
        prompts = await _optional(
            _all_pages(lambda cursor: client.list_prompts(cursor=cursor), lambda page: page.prompts)
        )
    if caps.resources is not None:
        resources = await _optional(
            _all_pages(lambda cursor: client.list_resources(cursor=cursor), lambda page: page.resources)
        )
        templates = await _optional(
            _all_pages(
                lambda cursor: client.list_resource_templates(cursor=cursor),
                lambda page: page.resource_templates,
            )
        )
    return ServerManifest(
        server=server,
        prefix=prefix,
        tools=tuple(tools),
        prompts=tuple(prompts),
        resources=tuple(resources),
        resource_templates=tuple(templates),
        tool_filter=tool_filter,
    )


async def _all_pages(
    fetch: Callable[[str | None], Awaitable[_PageT]], items: Callable[[_PageT], Sequence[_ItemT]]
) -> list[_ItemT]:
    """Every item of a paginated listing (a server that paginates forever is cut off)."""
    collected: list[_ItemT] = []
    cursor: str | None = None
    for _ in range(_LIST_PAGE_CAP):
        page = await fetch(cursor)
        collected.extend(items(page))
        if (cursor := page.next_cursor) is None:
            break
    return collected


async def _optional(listing: Awaitable[list[_ItemT]]) -> list[_ItemT]:
    """A listing a server advertised but does not implement counts as empty."""
    try:
        return await listing
    except MCPError as exc:
        if exc.code != types.METHOD_NOT_FOUND:
            raise
        return []


class CatalogueWatch:
    """Re-lists a connected server whenever it says a list changed, and publishes the result.

    One per server, across its connections: a change reported while a re-listing runs is
    not lost, it triggers the next one.
    """

    def __init__(self, server: str, list_all: ListFn, publish: ManifestFn, timeout: Callable[[], float]) -> None:
        self._server = server
        self._list_all = list_all
        self._publish = publish
        self._timeout = timeout
        self._relist_requested = anyio.Event()
        self._relisted = anyio.Event()
        """Set when the re-listing that takes the requests made so far has finished."""
        self._current: ServerManifest | None = None

    def changed(self) -> None:
        """The server said one of its lists changed (a ``…/list_changed`` notification)."""
        self._relist_requested.set()

    async def relisted(self) -> None:
        """Ask for a re-listing and wait until one that started after this request has been published."""
        done = self._relisted
        self._relist_requested.set()
        await done.wait()

    async def watch(self, client: Client, published: ServerManifest) -> None:
        """Re-list and re-publish on every change until cancelled (the connection's lifetime).

        Args:
            client: The connection.
            published: What the connection's first listing published: a re-listing that
                finds the same is neither published nor logged again.
        """
        self._current = published
        if client.protocol_version in MODERN_PROTOCOL_VERSIONS:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._listen_modern, client)
                await self._relist_loop(client)
        else:
            await self._relist_loop(client)

    async def _listen_modern(self, client: Client) -> None:
        caps = client.server_capabilities
        wants_tools = bool(caps.tools and caps.tools.list_changed)
        wants_prompts = bool(caps.prompts and caps.prompts.list_changed)
        wants_resources = bool(caps.resources and caps.resources.list_changed)
        if not (wants_tools or wants_prompts or wants_resources):
            return
        try:
            async with client.listen(
                tools_list_changed=wants_tools,
                prompts_list_changed=wants_prompts,
                resources_list_changed=wants_resources,
            ) as subscription:
                # A change between the first listing and this acknowledgement was announced to
                # no one: list once more now that changes reach us.
                self._relist_requested.set()
                async for _event in subscription:
                    self._relist_requested.set()
        except (MCPError, TimeoutError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            logger.info("server %r: change subscription ended: %s", self._server, describe_fault(exc))

    async def _relist_loop(self, client: Client) -> None:
        while True:
            await self._relist_requested.wait()
            self._relist_requested = anyio.Event()
            done, self._relisted = self._relisted, anyio.Event()
            try:
                await self._relist(client)
            finally:
                done.set()

    async def _relist(self, client: Client) -> None:
        try:
            with anyio.fail_after(self._timeout()):
                manifest = await self._list_all(client)
        except (MCPError, TimeoutError) as exc:
            logger.warning("server %r: re-listing after a change failed: %s", self._server, describe_fault(exc))
            return
        if manifest == self._current:
            return
        self._current = manifest
        logger.info("server %r: catalogue changed, now %d tools", self._server, len(manifest.tools))
        await self._publish(manifest)
