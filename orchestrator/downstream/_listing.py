"""Listing what a connected downstream server offers: tools, prompts, resources, templates.

Follows pagination (a server that paginates forever is cut off) and treats a list the server
advertised but does not implement as empty. Exceptions are the SDK's (``MCPError``); the
connection maps them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import mcp_types as types
from mcp import Client, MCPError

from orchestrator.catalog import ServerManifest
from orchestrator.config import ToolFilterSpec

__all__ = ["fetch_manifest"]

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
