"""The pool of downstream servers against in-process servers over memory streams: the merged
catalogue, routing by exposed name, catalogue changes and reloads."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import pytest

from orchestrator.config import OrchestratorConfig
from orchestrator.downstream import CatalogChange, DownstreamPool, PoolChange
from orchestrator.errors import UnknownToolError
from tests.fakes.inprocess import IN_PROCESS_URL, ToolServer, memory_transports

if TYPE_CHECKING:
    from collections.abc import Iterable

    from orchestrator.catalog import Catalog

pytestmark = pytest.mark.anyio

LIMIT = 5.0
"""Bound of every test; each takes a few tens of milliseconds."""


def _config(keys: Iterable[str]) -> OrchestratorConfig:
    return OrchestratorConfig.model_validate({"servers": {key: {"url": IN_PROCESS_URL} for key in keys}})


class Changes:
    """A catalogue listener that keeps each change and wakes waiters."""

    def __init__(self) -> None:
        self.seen: list[CatalogChange] = []
        self._arrived = anyio.Event()

    async def __call__(self, catalog: Catalog, change: CatalogChange) -> None:
        self.seen.append(change)
        self._arrived.set()
        self._arrived = anyio.Event()

    async def reach(self, count: int) -> CatalogChange:
        """The ``count``-th change, once it happened (the caller bounds the wait)."""
        while len(self.seen) < count:
            await self._arrived.wait()
        return self.seen[count - 1]


async def test_the_catalogue_merges_every_server_under_its_key_and_calls_route_by_exposed_name() -> None:
    servers = {"a": ToolServer(), "b": ToolServer()}
    with anyio.fail_after(LIMIT):
        async with DownstreamPool.running(_config(servers), transports=memory_transports(servers)) as pool:
            await pool.wait_settled(LIMIT)
            names = {tool.name for tool in pool.catalog.tools}
            result = await pool.call_tool("b__echo", {"text": "to b"})
    assert {"a__echo", "a__add", "b__echo", "b__add"} <= names
    assert result.structured_content == {"result": "to b"}
    assert servers["b"].calls == [("echo", {"text": "to b"})]
    assert servers["a"].calls == []


async def test_an_unknown_exposed_name_raises_unknown_tool_with_the_closest_names() -> None:
    servers = {"a": ToolServer()}
    with anyio.fail_after(LIMIT):
        async with DownstreamPool.running(_config(servers), transports=memory_transports(servers)) as pool:
            await pool.wait_settled(LIMIT)
            with pytest.raises(UnknownToolError) as caught:
                await pool.call_tool("a__ecoh", {"text": "hi"})
    assert caught.value.name == "a__ecoh"
    assert caught.value.suggestions[0] == "a__echo"


async def test_a_servers_tool_list_change_rebuilds_the_catalogue_and_tells_listeners_only_tools_changed() -> None:
    servers = {"a": ToolServer()}
    changes = Changes()
    with anyio.fail_after(LIMIT):
        async with DownstreamPool.running(_config(servers), transports=memory_transports(servers)) as pool:
            await pool.wait_settled(LIMIT)
            pool.add_listener(changes)
            await servers["a"].listening.wait()
            await servers["a"].add_echo_tool("shout")
            change = await changes.reach(1)
            result = await pool.call_tool("a__shout", {"text": "hey"})
    assert change == CatalogChange(tools=True, prompts=False, resources=False)
    assert result.structured_content == {"result": "hey"}


async def test_a_reload_starts_added_servers_stops_removed_ones_and_leaves_the_rest_alone() -> None:
    servers = {"a": ToolServer(), "b": ToolServer(), "c": ToolServer()}
    changes = Changes()
    with anyio.fail_after(LIMIT):
        async with DownstreamPool.running(_config(["a", "b"]), transports=memory_transports(servers)) as pool:
            await pool.wait_settled(LIMIT)
            kept = pool.servers["a"]
            pool.add_listener(changes)
            done = await pool.apply(_config(["a", "c"]))
            # "b" left at once; "c" joins when it has listed its tools.
            while not pool.catalog.has_tool("c__echo"):
                await changes.reach(len(changes.seen) + 1)
            names = {tool.name for tool in pool.catalog.tools}
            assert pool.servers["a"] is kept
    assert done == PoolChange(added=("c",), removed=("b",))
    assert "a__echo" in names
    assert not any(name.startswith("b__") for name in names)
