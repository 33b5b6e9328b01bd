"""Two replicas on one PostgreSQL state database keep in step through its change feed.

Both serve one HTTP fault server that speaks only the 2025-11-25 era, whose ``tools/list_changed``
reaches only the downstream session that made the change: replica A's. Replica B learns of the
change only from A's announcement on the feed. ``trust.recheck`` is an hour, so an approval
made by ``orchestrator pins approve`` reaches the replicas only through the feed too: neither
waits can be met by the periodic recheck, and no call of the withheld tool (which would look
at the pins itself) is made.
"""

from __future__ import annotations

import sys
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
import mcp_types as types
import pytest
from mcp import Client
from mcp.shared.subscriptions import ToolsListChanged

from tests.e2e.harness import REPO_ROOT, Notifications, http_aggregator, http_fault_server, write_config
from tests.e2e.replica_cluster import fresh_database

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, Callable
    from pathlib import Path

pytestmark = pytest.mark.anyio


class Session:
    """A 2025-11-25 session on one replica that lists again on each tools/list_changed it is sent."""

    def __init__(self, client: Client, changes: Notifications) -> None:
        self.client = client
        self._changes = changes

    async def tools(self) -> dict[str, types.Tool]:
        return {tool.name: tool for tool in (await self.client.list_tools()).tools}

    async def listing(self, condition: Callable[[dict[str, types.Tool]], bool], timeout: float = 20.0) -> None:
        """Wait (bounded) until the listed tools meet ``condition``, listing again on each list_changed."""
        with anyio.fail_after(timeout):
            while True:
                seen = self._changes.count  # before listing: a change announced meanwhile is not missed
                if condition(await self.tools()):
                    return
                await self._changes.reach(seen + 1)

    async def change(self, action: str, arguments: dict[str, Any]) -> None:
        """Call one of the fault server's mutation tools through this replica."""
        result = await self.client.call_tool(f"f__{action}", arguments)
        text = "".join(block.text for block in result.content if isinstance(block, types.TextContent))
        assert text in ("changed", "added"), text


@asynccontextmanager
async def _session(url: str) -> AsyncGenerator[Session, None]:
    changes = Notifications(types.ToolListChangedNotification)
    async with Client(url, mode="legacy", message_handler=changes) as client:
        session = Session(client, changes)
        assert "f__victim" in await session.tools()  # served, after the start-up's first listing
        yield session


@asynccontextmanager
async def _two_replicas(tmp_path: Path, postgres_url: str, trust: str) -> AsyncGenerator[tuple[Path, str, str], None]:
    """Replicas A and B of one config (state on a new PostgreSQL database, one shared fault server)."""
    async with (
        fresh_database(postgres_url, prefix="feed") as state,
        http_fault_server("--legacy-only", "--mutation-tools", "--tools", "victim,spare") as (fault_url, _fault),
    ):
        config = write_config(
            tmp_path,
            {"f": {"url": fault_url, "trust": trust}},
            state={"url": state},
            trust={"recheck": "1h"},
        )
        async with http_aggregator(config) as replica_a, http_aggregator(config) as replica_b:
            yield config, replica_a, replica_b


async def _orchestrator(config: Path, *args: str) -> str:
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, "-m", "orchestrator", *args, "-c", str(config)], cwd=REPO_ROOT, check=False
        )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


async def test_a_pin_approved_by_the_cli_is_served_by_both_replicas_without_waiting_for_the_recheck(
    tmp_path: Path, postgres_url: str
) -> None:
    async with (
        _two_replicas(tmp_path, postgres_url, trust="pin") as (config, url_a, url_b),
        _session(url_a) as on_a,
        _session(url_b) as on_b,
    ):
        await on_a.change("redescribe", {"name": "victim", "description": "Now with different words."})
        # A heard the change from the server and withholds it; B only through A's announcement.
        await on_a.listing(lambda tools: "f__victim" not in tools)
        await on_b.listing(lambda tools: "f__victim" not in tools)

        await _orchestrator(config, "pins", "approve", "f")

        def approved(tools: dict[str, types.Tool]) -> bool:
            victim = tools.get("f__victim")
            return victim is not None and victim.description == "Now with different words."

        await on_a.listing(approved)
        await on_b.listing(approved)


async def test_a_catalogue_change_one_replica_sees_reaches_a_listen_stream_on_the_other(
    tmp_path: Path, postgres_url: str
) -> None:
    async with (
        _two_replicas(tmp_path, postgres_url, trust="auto") as (_config, url_a, url_b),
        _session(url_a) as on_a,
        Client(url_b) as modern_b,
    ):
        assert "f__newcomer" not in {tool.name for tool in (await modern_b.list_tools()).tools}
        async with modern_b.listen(tools_list_changed=True) as subscription:
            await on_a.change("add_tool", {"name": "newcomer"})
            await on_a.listing(lambda tools: "f__newcomer" in tools)  # pinned on sight (trust: auto)
            with anyio.fail_after(20):
                async for event in subscription:
                    if not isinstance(event, ToolsListChanged):
                        continue
                    if "f__newcomer" in {tool.name for tool in (await modern_b.list_tools()).tools}:
                        break
