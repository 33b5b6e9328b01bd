"""MCP tasks in process: ``tasks/list`` pages, its cursors, and what a task's times look like.

The over-the-wire behaviour (both eras, cancellation, principals, restarts) is in
``tests/e2e/test_tasks.py`` and ``tests/e2e/test_durable_tasks.py``; here the orchestrator
serves in-process downstreams with a run journal in a temporary SQLite file.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import anyio
import mcp_types as types
import pytest
from mcp import MCPError
from sqlalchemy.engine import make_url

from orchestrator.runs import RunManager
from orchestrator.server import RUN_META_KEY
from orchestrator.server._tasks import decode_cursor, encode_cursor, iso_time
from orchestrator.store import open_store
from tests.e2e.tasks_client import list_tasks
from tests.fakes.inprocess import ToolServer
from tests.server.helpers import connect, serving

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator
    from pathlib import Path

    from orchestrator.server import OrchestratorServer

pytestmark = pytest.mark.anyio

LIMIT = 60.0
ADD = {
    "version": 1,
    "name": "add_once",
    "description": "one add",
    "steps": {"add": {"tool": "a.add", "with": {"a": 1, "b": 2}}},
}


@asynccontextmanager
async def _journalled(tmp_path: Path) -> AsyncGenerator[OrchestratorServer, None]:
    """The orchestrator serving ``add_once`` with its runs journalled, as ``serve`` does."""
    async with (
        serving({"a": ToolServer()}, workflows=[ADD]) as server,
        open_store(make_url(f"sqlite+aiosqlite:///{tmp_path / 'state.db'}")) as store,
        anyio.create_task_group() as tg,
    ):
        manager = RunManager(store, server.run_hooks(), lease=30)
        await tg.start(manager.serve)
        server.runs = manager
        try:
            yield server
        finally:
            manager.stop()
            tg.cancel_scope.cancel()


async def test_tasks_list_pages_through_every_run_newest_first(tmp_path: Path) -> None:
    with anyio.fail_after(LIMIT):
        async with _journalled(tmp_path) as server, connect(server, mode="legacy") as client:
            run_ids: list[str] = []
            for _ in range(53):
                result = await client.call_tool("add_once", {})
                assert not result.is_error
                run_ids.append((result.meta or {})[RUN_META_KEY]["run_id"])
            first = await list_tasks(client.session)
            second = await list_tasks(client.session, first["nextCursor"])
            assert (await list_tasks(client.session, encode_cursor(53)))["tasks"] == []
            # Not base64, not JSON, JSON without an offset: not a cursor this server made.
            for cursor in ("", "bm90IGpzb24", encode_cursor(0).upper(), "e30="):
                with pytest.raises(MCPError) as invalid:
                    await list_tasks(client.session, cursor)
                assert invalid.value.code == types.INVALID_PARAMS
    assert len(first["tasks"]) == 50
    assert "nextCursor" not in second
    listed = [task["taskId"] for task in [*first["tasks"], *second["tasks"]]]
    # Newest first; runs created within the same clock tick keep no order of their own.
    assert sorted(listed) == sorted(run_ids)
    created = [task["createdAt"] for task in [*first["tasks"], *second["tasks"]]]
    assert created == sorted(created, reverse=True)
    assert all(task["status"] == "completed" for task in first["tasks"])


def test_cursors_round_trip_and_anything_else_is_refused() -> None:
    assert decode_cursor(None) == 0
    assert decode_cursor(encode_cursor(150)) == 150
    for cursor in ("", "not a cursor", encode_cursor(-1), "eyJvZmZzZXQiOiB0cnVlfQ==", "WzFd"):
        with pytest.raises(MCPError) as invalid:
            decode_cursor(cursor)
        assert invalid.value.code == types.INVALID_PARAMS


def test_task_times_are_iso_8601_in_utc() -> None:
    moment = datetime(2026, 7, 28, 12, 30, 5, 125000, tzinfo=timezone(timedelta(hours=2)))
    assert iso_time(moment) == "2026-07-28T10:30:05.125Z"
    assert iso_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000Z"
