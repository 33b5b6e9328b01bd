"""Search mode in process: what the list holds, names it reserves, and a reload that turns it on."""

from __future__ import annotations

import anyio
import pytest

from orchestrator.config import CatalogSpec
from orchestrator.errors import InvalidArgumentsError
from orchestrator.server import Composites, Loaded, Reloader
from orchestrator.server._search_mode import META_TOOL_NAMES, call_tool_request
from tests.fakes.inprocess import ToolServer
from tests.server.helpers import ToolsChanged, connect, serving, text_of

pytestmark = pytest.mark.anyio

LIMIT = 30


async def test_a_reload_into_search_mode_lists_the_meta_tools_and_tells_clients() -> None:
    seen = ToolsChanged()
    with anyio.fail_after(LIMIT):
        async with (
            serving({"a": ToolServer("alpha")}) as server,
            connect(server, mode="legacy", message_handler=seen) as client,
        ):
            before = [tool.name for tool in (await client.list_tools()).tools]
            search = server.pool.config.model_copy(update={"catalog": CatalogSpec(mode="search", always=("a__add",))})
            record = await Reloader(server, server.pool, lambda: Loaded(search, Composites(()))).reload("test")
            await seen.changed.wait()
            after = [tool.name for tool in (await client.list_tools()).tools]
            found = await client.call_tool("search_tools", {"query": "add two numbers"})
            called = await client.call_tool("call_tool", {"name": "a__add", "arguments": {"a": 2, "b": 3}})
    assert record.ok
    assert "a__echo" in before
    assert after == ["search_tools", "call_tool", "a__add"]
    assert not found.is_error, text_of(found)
    assert found.structured_content is not None
    assert found.structured_content["tools"][0]["name"] == "a__add"
    assert not called.is_error, text_of(called)
    assert "5" in text_of(called)


async def test_a_downstream_tool_does_not_take_a_meta_tool_name() -> None:
    with anyio.fail_after(LIMIT):
        async with serving({"a": ToolServer("alpha")}, catalog={"mode": "search"}, prefix=False) as server:
            names = {mapping.exposed for mapping in server.catalog.mappings if mapping.kind == "tool"}
    assert names.isdisjoint(META_TOOL_NAMES)
    assert {"echo", "add"} <= names  # the server's own names, unprefixed, where nothing clashes


async def test_auto_mode_follows_the_budget_and_counts_once_per_catalogue() -> None:
    with anyio.fail_after(LIMIT):
        async with serving({"a": ToolServer("alpha")}, catalog={"mode": "auto", "budget": 10}) as server:
            size = server.catalogue_size()
            assert size.mode == "search"
            assert size.tools == len(server.catalog.tools)
            assert size.tokens > 10
            assert server.catalogue_size() == size


def test_call_tool_request_refuses_a_meta_tool_and_defaults_arguments() -> None:
    assert call_tool_request({"name": "a__add"}).arguments == {}
    with pytest.raises(InvalidArgumentsError, match="called directly"):
        call_tool_request({"name": "search_tools", "arguments": {}})
