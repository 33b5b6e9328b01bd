"""An in-process downstream server, and memory-stream transports, for fast tests.

`ToolServer` is a real `MCPServer` whose tools tell the test what happened to them through
events (a call started, was cancelled, reported progress), so a test waits on those instead
of sleeping. `memory_transport` connects a client (the orchestrator's downstream client, or a
test's client of the orchestrator) to a server in this process over memory streams: real
JSON-RPC messages, both protocol eras, no process and no socket.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anyio
import mcp_types as types
from mcp import MCPError
from mcp.client import Transport
from mcp.client._memory import InMemoryTransport
from mcp.server import MCPServer, Server
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.subscriptions import InMemorySubscriptionBus, ServerEvent, ToolsListChanged

from orchestrator.downstream import TransportFactoryFn

__all__ = ["IN_PROCESS_URL", "ToolServer", "memory_transport", "memory_transports"]

IN_PROCESS_URL = "http://in-process.invalid/mcp"
"""The ``url`` of a config entry served in process: never contacted (``.invalid`` cannot resolve)."""


def memory_transport(server: Server[Any] | MCPServer) -> Transport:
    """A transport that runs ``server`` in this process and speaks to it over memory streams."""
    # The SDK's own (what `Client(server)` uses for the handshake era), from a private module.
    return InMemoryTransport(server)


def memory_transports(servers: Mapping[str, ToolServer]) -> TransportFactoryFn:
    """A pool's transports to the in-process servers of each key (a fresh connection each time)."""
    return lambda key: memory_transport(servers[key].mcp)


class _ObservedBus(InMemorySubscriptionBus):
    """A subscription bus that says when a ``subscriptions/listen`` stream first subscribed."""

    def __init__(self) -> None:
        super().__init__()
        self.subscribed = anyio.Event()
        self.before_subscribe: Callable[[], None] | None = None

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        if self.before_subscribe is not None:
            self.before_subscribe()
        unsubscribe = super().subscribe(listener)
        self.subscribed.set()
        return unsubscribe


class ToolServer:
    """An ``MCPServer`` with tools whose progress is observable through events.

    Tools:
        echo(text): the text back.
        add(a, b): their sum, as structured content ``{"result": a + b}``.
        hang(): never returns; sets ``hang_started``, then ``hang_cancelled`` when torn down
            (cancelled, or its connection closed: a test waits for it with the connection open).
        progress(steps): reports progress ``1..steps`` of ``steps``, then waits for ``proceed``.
        fail(message): an ``isError`` result with the message (a ``ToolError``).
        refuse(message): a JSON-RPC error with the message (an ``MCPError``).
    """

    def __init__(self, name: str = "tools") -> None:
        self._bus = _ObservedBus()
        self.mcp = MCPServer(name, subscriptions=self._bus)
        self.listening = self._bus.subscribed
        """Set once a client listens for changes: a change announced from then on reaches it."""
        self.hang_started = anyio.Event()
        self.hang_cancelled = anyio.Event()
        self.proceed = anyio.Event()
        """Set by the test once it has seen the progress it waits for; ``progress`` then returns."""
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._register()

    def _register(self) -> None:
        mcp = self.mcp

        @mcp.tool(annotations=types.ToolAnnotations(read_only_hint=True))
        def echo(text: str) -> str:
            """Return the text."""
            self.calls.append(("echo", {"text": text}))
            return text

        @mcp.tool()
        def add(a: int, b: int) -> int:
            """Add two integers."""
            self.calls.append(("add", {"a": a, "b": b}))
            return a + b

        @mcp.tool()
        async def hang() -> str:
            """Never return."""
            self.hang_started.set()
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                self.hang_cancelled.set()
                raise
            raise AssertionError("unreachable")

        @mcp.tool()
        async def progress(steps: int, ctx: Context) -> str:
            """Report progress 1..steps, then return once the test says ``proceed``."""
            for step in range(1, steps + 1):
                await ctx.report_progress(step, steps, f"step {step}")
            await self.proceed.wait()
            return "done"

        @mcp.tool()
        def fail(message: str) -> str:
            """Fail with an error result."""
            raise ToolError(message)

        @mcp.tool()
        def refuse(message: str) -> str:
            """Fail with a JSON-RPC error."""
            raise MCPError(types.INVALID_REQUEST, message)

    def add_echo_tool_unannounced_when_listened(self, name: str) -> None:
        """When a client starts listening, add tool ``name`` first, telling no one.

        The change falls between the client's first listing and its subscription: only a
        client that lists again once subscribed sees it.
        """

        def added(text: str) -> str:
            return text

        def add() -> None:
            self.mcp.add_tool(added, name=name, description=f"{name}: returns the text.")

        self._bus.before_subscribe = add

    async def add_echo_tool(self, name: str) -> None:
        """Add a tool ``name`` (an echo of ``text``) and tell listening clients the list changed."""

        def added(text: str) -> str:
            return text

        self.mcp.add_tool(added, name=name, description=f"{name}: returns the text.")
        await self._bus.publish(ToolsListChanged())
