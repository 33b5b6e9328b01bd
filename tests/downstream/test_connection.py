"""One downstream connection against an in-process server over memory streams: listing,
calls, timeouts and change notifications, without a process or a socket."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
import pytest

from orchestrator.config import HttpServerSpec
from orchestrator.downstream import DownstreamServer
from orchestrator.errors import DownstreamNotConnected, DownstreamTimeout, DownstreamToolError
from tests.fakes.inprocess import IN_PROCESS_URL, ToolServer, memory_transport

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from orchestrator.catalog import ServerManifest

pytestmark = pytest.mark.anyio

LIMIT = 5.0
"""Bound of every test; each takes a few tens of milliseconds."""


class Manifests:
    """An ``on_manifest`` callback that keeps each published manifest and wakes waiters."""

    def __init__(self) -> None:
        self.published: list[ServerManifest] = []
        self._arrived = anyio.Event()

    async def __call__(self, manifest: ServerManifest) -> None:
        self.published.append(manifest)
        self._arrived.set()
        self._arrived = anyio.Event()

    async def reach(self, count: int) -> ServerManifest:
        """The ``count``-th manifest, once it is published (the caller bounds the wait)."""
        while len(self.published) < count:
            await self._arrived.wait()
        return self.published[count - 1]


def _spec(**entry: Any) -> HttpServerSpec:
    return HttpServerSpec.model_validate({"url": IN_PROCESS_URL, **entry})


@asynccontextmanager
async def connected(tools: ToolServer, **entry: Any) -> AsyncGenerator[tuple[DownstreamServer, Manifests], None]:
    """A supervised connection to ``tools`` (config entry settings ``entry``), once its first start settled."""
    manifests = Manifests()
    downstream = DownstreamServer(
        "a", _spec(**entry), on_manifest=manifests, transports=lambda _key: memory_transport(tools.mcp)
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(downstream.run)
        await downstream.wait_settled()
        yield downstream, manifests
        tg.cancel_scope.cancel()


async def test_it_connects_in_the_current_era_and_publishes_the_servers_tools() -> None:
    with anyio.fail_after(LIMIT):
        async with connected(ToolServer()) as (downstream, manifests):
            status = downstream.status()
    assert status.state == "ready"
    assert status.protocol_version == "2026-07-28"
    assert status.tool_count == 6
    assert status.healthy
    [manifest] = manifests.published
    assert manifest.server == "a"
    assert manifest.prefix is None  # the pool gives it one; here none was configured
    assert sorted(tool.name for tool in manifest.tools) == ["add", "echo", "fail", "hang", "progress", "refuse"]


async def test_a_call_returns_the_servers_result() -> None:
    with anyio.fail_after(LIMIT):
        async with connected(ToolServer()) as (downstream, _):
            result = await downstream.call_tool("add", {"a": 2, "b": 3})
    assert not result.is_error
    assert result.structured_content == {"result": 5}


async def test_a_call_past_its_timeout_raises_a_timeout_and_the_server_sees_the_cancellation() -> None:
    tools = ToolServer()
    with anyio.fail_after(LIMIT):
        async with connected(tools) as (downstream, _):
            with pytest.raises(DownstreamTimeout) as caught:
                await downstream.call_tool("hang", {}, timeout=0.05)
            await tools.hang_cancelled.wait()
            # The connection is fine: only that call was given up.
            after = await downstream.call_tool("echo", {"text": "still here"})
    assert str(caught.value) == "server 'a': tools/call hang timed out after 0.05s"
    assert caught.value.server == "a"
    assert not after.is_error


async def test_a_json_rpc_error_raises_a_tool_error_with_the_servers_code_and_message() -> None:
    with anyio.fail_after(LIMIT):
        async with connected(ToolServer()) as (downstream, _):
            with pytest.raises(DownstreamToolError) as caught:
                await downstream.call_tool("refuse", {"message": "not today"})
    assert caught.value.code == types.INVALID_REQUEST
    assert str(caught.value) == "server 'a': not today"


async def test_a_tool_list_change_is_listed_again_and_published() -> None:
    tools = ToolServer()
    with anyio.fail_after(LIMIT):
        async with connected(tools) as (downstream, manifests):
            await tools.listening.wait()
            await tools.add_echo_tool("shout")
            manifest = await manifests.reach(2)
            status = downstream.status()
    assert "shout" in {tool.name for tool in manifest.tools}
    assert status.tool_count == 7


async def test_a_change_made_before_the_change_stream_opened_is_still_seen() -> None:
    tools = ToolServer()
    tools.add_echo_tool_unannounced_when_listened("late")
    with anyio.fail_after(LIMIT):
        async with connected(tools) as (_downstream, manifests):
            relisted = await manifests.reach(2)
    assert "late" in {tool.name for tool in relisted.tools}
    assert "late" not in {tool.name for tool in manifests.published[0].tools}


async def test_a_relisting_that_finds_nothing_new_publishes_nothing() -> None:
    tools = ToolServer()
    with anyio.fail_after(LIMIT):
        async with connected(tools) as (_downstream, manifests):
            await tools.listening.wait()
            await tools.add_echo_tool("extra")  # announced: the one change that is published
            changed = await manifests.reach(2)
    assert "extra" in {tool.name for tool in changed.tools}
    assert len(manifests.published) == 2  # the re-listing after subscribing found no change


async def test_a_call_before_the_server_is_connected_fails_at_once_naming_the_server() -> None:
    downstream = DownstreamServer("a", _spec(), on_manifest=Manifests())  # never run: never connected
    with anyio.fail_after(LIMIT), pytest.raises(DownstreamNotConnected) as caught:
        await downstream.call_tool("echo", {"text": "hi"})
    assert str(caught.value) == "server 'a': not connected"
