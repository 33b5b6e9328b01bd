"""Each server's last listing in the store, on SQLite and on a real PostgreSQL: one row per server, replaced."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from orchestrator.store import forget_manifest, read_manifest, save_manifest
from orchestrator.store._schema import metadata

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)

LISTING: dict[str, Any] = {
    "tools": [
        {
            "name": "search",
            "description": "Find things. ✓ unicode kept",
            "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
            "annotations": {"readOnlyHint": True},
            "_meta": {"vendor/x": {"nested": [1, 2.5, None, True]}},
        }
    ],
    "prompts": [{"name": "brief", "arguments": [{"name": "topic", "required": True}]}],
    "resources": [{"uri": "file:///readme", "name": "readme"}],
    "resource_templates": [{"uriTemplate": "file:///{path}", "name": "files"}],
}


def _server() -> str:
    return f"srv-{uuid.uuid4().hex[:12]}"  # PostgreSQL is shared by the session


async def test_a_listing_comes_back_as_it_was_saved_with_its_connection_and_time(engine: AsyncEngine) -> None:
    server = _server()
    assert await read_manifest(engine, server) is None

    await save_manifest(engine, server, "a" * 64, LISTING, at=NOW)

    kept = await read_manifest(engine, server)
    assert kept is not None
    assert (kept.server, kept.connection, kept.listing, kept.listed_at) == (server, "a" * 64, LISTING, NOW)


async def test_a_new_listing_replaces_the_old_one_and_other_servers_keep_theirs(engine: AsyncEngine) -> None:
    server, other = _server(), _server()
    await save_manifest(engine, server, "a" * 64, LISTING, at=NOW)
    await save_manifest(engine, other, "c" * 64, LISTING, at=NOW)
    smaller: dict[str, Any] = {"tools": [], "prompts": [], "resources": [], "resource_templates": []}

    await save_manifest(engine, server, "b" * 64, smaller, at=LATER)

    kept = await read_manifest(engine, server)
    assert kept is not None
    assert (kept.connection, kept.listing, kept.listed_at) == ("b" * 64, smaller, LATER)
    untouched = await read_manifest(engine, other)
    assert untouched is not None
    assert untouched.listing == LISTING


async def test_a_forgotten_listing_is_gone(engine: AsyncEngine) -> None:
    server = _server()
    await save_manifest(engine, server, "a" * 64, LISTING, at=NOW)

    assert await forget_manifest(engine, server)
    assert not await forget_manifest(engine, server)
    assert await read_manifest(engine, server) is None


def _schema_differences(connection: Connection) -> list[Any]:
    differences = compare_metadata(MigrationContext.configure(connection), metadata)
    return [item for item in differences if "server_manifests" in repr(item)]


async def test_the_migration_creates_the_table_the_queries_use(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(_schema_differences) == []
