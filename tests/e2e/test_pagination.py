"""Lists in pages (``serve.page_size``): every definition once, in order; a stale cursor is refused."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import mcp_types as types
import pytest
from mcp import Client, MCPError

from orchestrator.server import CATALOGUE_VERSION_META_KEY
from tests.e2e.harness import Notifications, aggregator_params, fault_entry, write_config

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


async def all_pages(client: Client) -> tuple[list[str], int]:
    """Every tool name over every page, and how many pages it took."""
    names: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await client.list_tools(cursor=cursor, cache_mode="bypass")
        pages += 1
        names += [tool.name for tool in page.tools]
        cursor = page.next_cursor
        if cursor is None:
            return names, pages


def version_of(listed: types.ListToolsResult) -> object:
    return (listed.meta or {})[CATALOGUE_VERSION_META_KEY]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_paged_lists_hold_every_definition_once_in_order(tmp_path: Path, mode: str) -> None:
    servers = {"a": fault_entry(), "b": fault_entry()}
    (tmp_path / "whole").mkdir()
    whole = write_config(tmp_path / "whole", servers)
    paged = write_config(tmp_path, servers, serve={"page_size": 4})
    async with Client(aggregator_params(whole), mode=mode) as client:
        expected = [tool.name for tool in (await client.list_tools()).tools]
    async with Client(aggregator_params(paged), mode=mode) as client:
        first = await client.list_tools()
        assert len(first.tools) == 4
        assert first.next_cursor is not None
        names, pages = await all_pages(client)
    assert names == expected
    assert pages == -(-len(expected) // 4)


async def test_a_cursor_from_before_the_catalogue_changed_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"f": fault_entry()}, serve={"page_size": 3})
    changed = Notifications(types.ToolListChangedNotification)
    # The 2025-11-25 session carries list_changed: the test waits for those, never for time.
    async with Client(aggregator_params(config), mode="legacy", message_handler=changed) as client:
        first = await client.list_tools()
        assert first.next_cursor is not None
        await client.call_tool("f__remove_tool", {"name": "echo"})
        with anyio.fail_after(30):
            seen = 0
            while version_of(await client.list_tools(cache_mode="bypass")) == version_of(first):
                seen += 1
                await changed.reach(seen)
        with pytest.raises(MCPError, match="invalid or stale cursor") as refused:
            await client.list_tools(cursor=first.next_cursor, cache_mode="bypass")
        assert refused.value.error.code == types.INVALID_PARAMS
        with pytest.raises(MCPError, match="invalid or stale cursor"):
            await client.list_tools(cursor="not-a-cursor", cache_mode="bypass")
