"""What the orchestrator passes between caller and downstream during a call: progress,
cancellation, list changes; for clients of both protocol eras, in process over memory streams."""

from __future__ import annotations

from functools import partial

import anyio
import mcp_types as types
import pytest

from tests.fakes.inprocess import ToolServer
from tests.server.helpers import ProgressSeen, connect, serving, text_of

pytestmark = pytest.mark.anyio

LIMIT = 5.0
"""Bound of every test; each takes a few tens of milliseconds."""


@pytest.fixture(params=["auto", "legacy"], ids=["2026-07-28", "handshake"])
def mode(request: pytest.FixtureRequest) -> str:
    """How the caller connects: the current stateless era, or the initialize handshake."""
    return request.param


async def test_downstream_progress_reaches_the_callers_callback_while_the_call_runs(mode: str) -> None:
    servers = {"a": ToolServer()}
    progress = ProgressSeen()
    with anyio.fail_after(LIMIT):
        async with serving(servers) as server, connect(server, mode=mode) as client, anyio.create_task_group() as tg:

            async def call() -> None:
                result = await client.call_tool("a__progress", {"steps": 3}, progress_callback=progress)
                assert text_of(result) == "done"

            tg.start_soon(call)
            # The tool returns only once the caller has seen its progress: it arrived in flight.
            await progress.reach(3)
            servers["a"].proceed.set()
    assert sorted(progress.reports) == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


async def test_cancelling_a_call_cancels_it_downstream_and_the_server_keeps_serving(mode: str) -> None:
    servers = {"a": ToolServer()}
    with anyio.fail_after(LIMIT):
        async with serving(servers) as server, connect(server, mode=mode) as client:
            async with anyio.create_task_group() as tg:
                tg.start_soon(partial(client.call_tool, "a__hang", {}))
                await servers["a"].hang_started.wait()
                tg.cancel_scope.cancel()
            await servers["a"].hang_cancelled.wait()
            after = await client.call_tool("a__echo", {"text": "still here"})
    assert text_of(after) == "still here"


async def test_a_tool_added_downstream_reaches_a_listening_client_as_list_changed() -> None:
    servers = {"a": ToolServer()}
    with anyio.fail_after(LIMIT):
        async with serving(servers) as server, connect(server) as client:
            await servers["a"].listening.wait()  # the orchestrator listens to its downstream
            async with client.listen(tools_list_changed=True) as changes:
                await servers["a"].add_echo_tool("shout")
                await changes.__anext__()
            names = {tool.name for tool in (await client.list_tools()).tools}
    assert "a__shout" in names


async def test_a_tool_added_downstream_reaches_a_handshake_era_client_as_list_changed() -> None:
    servers = {"a": ToolServer()}
    changed = anyio.Event()

    async def on_message(message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.set()

    with anyio.fail_after(LIMIT):
        async with serving(servers) as server, connect(server, mode="legacy", message_handler=on_message) as client:
            await servers["a"].listening.wait()
            await servers["a"].add_echo_tool("shout")
            await changed.wait()
            names = {tool.name for tool in (await client.list_tools()).tools}
            result = await client.call_tool("a__shout", {"text": "hey"})
    assert "a__shout" in names
    assert text_of(result) == "hey"
