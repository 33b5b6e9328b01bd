"""The orchestrator served in process: in-process downstream servers, a client over memory streams."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
from mcp import Client

from orchestrator.config import OrchestratorConfig
from orchestrator.downstream import DownstreamPool
from orchestrator.server import Composites, OrchestratorServer, reserved_tool_names
from orchestrator.workflow import WorkflowSpec
from tests.fakes.inprocess import IN_PROCESS_URL, ToolServer, memory_transport, memory_transports

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Mapping, Sequence

__all__ = ["ProgressSeen", "connect", "serving", "text_of"]


@asynccontextmanager
async def serving(
    servers: Mapping[str, ToolServer],
    *,
    workflows: Sequence[Mapping[str, Any]] = (),
    catalog: Mapping[str, Any] | None = None,
    **entry: Any,
) -> AsyncGenerator[OrchestratorServer, None]:
    """The orchestrator serving ``servers`` by key, every one connected, and composite ``workflows``.

    Args:
        servers: The in-process downstream servers, by config key.
        workflows: Workflow documents (as a workflow file holds them), served as composite tools.
        catalog: The config's ``catalog:`` section (search mode, run_plan); default full mode.
        entry: Settings of every server's config entry (``timeout``, ``retry``, ...).
    """
    config = OrchestratorConfig.model_validate(
        {"servers": {key: {"url": IN_PROCESS_URL, **entry} for key in servers}, "catalog": dict(catalog or {})}
    )
    composites = Composites([(WorkflowSpec.model_validate(dict(doc)), f"{doc['name']}.yaml") for doc in workflows])
    reserved = reserved_tool_names(config, composites.names)
    async with DownstreamPool.running(config, transports=memory_transports(servers), reserved=reserved) as pool:
        await pool.wait_settled(5)
        statuses = pool.statuses()
        assert all(status.state == "ready" for status in statuses), statuses
        async with OrchestratorServer(pool, composites) as server:
            yield server


def connect(server: OrchestratorServer, **options: Any) -> Client:
    """An SDK client of ``server`` over memory streams (``options`` as for ``Client``)."""
    return Client(memory_transport(server.lowlevel), **options)


def text_of(result: types.CallToolResult) -> str:
    """The text blocks of a result, joined."""
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


class ProgressSeen:
    """A ``progress_callback`` that keeps each report and wakes whoever waits for a number of them."""

    def __init__(self) -> None:
        self.reports: list[tuple[float, float | None, str | None]] = []
        self._arrived = anyio.Event()

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.reports.append((progress, total, message))
        self._arrived.set()
        self._arrived = anyio.Event()

    async def reach(self, count: int) -> None:
        """Wait until ``count`` reports have arrived (the caller bounds the wait)."""
        while len(self.reports) < count:
            await self._arrived.wait()


class ToolsChanged:
    """A client's message handler that sets ``changed`` when the server says the tool list changed."""

    def __init__(self) -> None:
        self.changed = anyio.Event()

    async def __call__(self, message: object) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self.changed.set()
