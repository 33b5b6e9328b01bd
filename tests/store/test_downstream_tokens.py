"""Downstream OAuth credentials in the store, on SQLite and on a real PostgreSQL: opaque blobs per server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from orchestrator.store import (
    delete_downstream_tokens,
    read_downstream_credentials,
    record_downstream_refresh_failure,
    save_downstream_client,
    save_downstream_tokens,
)
from orchestrator.store._schema import metadata

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


def _server() -> str:
    return f"srv-{uuid.uuid4().hex[:12]}"  # PostgreSQL is shared by the session


async def test_tokens_and_client_are_kept_apart_and_a_new_login_clears_a_refresh_failure(engine: AsyncEngine) -> None:
    server = _server()
    assert await read_downstream_credentials(engine, server) is None

    await save_downstream_client(engine, server, b"client-blob", at=NOW)
    await save_downstream_tokens(engine, server, b"tokens-blob", at=NOW)
    await record_downstream_refresh_failure(engine, server, "invalid_grant", at=LATER)
    failing = await read_downstream_credentials(engine, server)
    assert failing is not None
    assert (failing.tokens, failing.client_info, failing.refresh_failure) == (
        b"tokens-blob",
        b"client-blob",
        "invalid_grant",
    )
    assert failing.updated_at == LATER

    await save_downstream_tokens(engine, server, b"fresh-blob", at=LATER)
    fresh = await read_downstream_credentials(engine, server)
    assert fresh is not None
    assert (fresh.tokens, fresh.refresh_failure) == (b"fresh-blob", None)


async def test_logout_forgets_the_tokens_and_keeps_the_registration(engine: AsyncEngine) -> None:
    registered, bare = _server(), _server()
    await save_downstream_client(engine, registered, b"client-blob", at=NOW)
    await save_downstream_tokens(engine, registered, b"tokens-blob", at=NOW)
    await save_downstream_tokens(engine, bare, b"tokens-blob", at=NOW)

    assert await delete_downstream_tokens(engine, registered, at=LATER)
    assert await delete_downstream_tokens(engine, bare, at=LATER)
    assert not await delete_downstream_tokens(engine, bare, at=LATER)

    kept = await read_downstream_credentials(engine, registered)
    assert kept is not None
    assert (kept.tokens, kept.client_info) == (None, b"client-blob")
    assert await read_downstream_credentials(engine, bare) is None


def _schema_differences(connection: Connection) -> list[Any]:
    differences = compare_metadata(MigrationContext.configure(connection), metadata)
    return [item for item in differences if "downstream_credentials" in repr(item)]


async def test_the_migration_creates_the_table_the_queries_use(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(_schema_differences) == []
