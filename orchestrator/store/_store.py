"""Opening the state database: engine, connection settings, and migrations run at start.

A database already at ``HEAD_REVISION`` is used as it is; only one that is behind (or new)
is handed to ``orchestrator.store._migrate`` (Alembic), through the package's lazy names so
that Alembic is not even imported on the common path.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import event, inspect, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from orchestrator import store as _package
from orchestrator.errors import StoreError
from orchestrator.store._failures import shown_url
from orchestrator.store._twin import dispose_twin, make_twin

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from sqlalchemy.engine import URL, Connection

__all__ = ["HEAD_REVISION", "Store", "open_store"]

logger = logging.getLogger(__name__)

_SQLITE_BUSY_TIMEOUT_MS = 10_000

HEAD_REVISION: Final = "0008"
"""The newest migration's revision (a test keeps it equal to the migration scripts' head)."""

_MIGRATION_LOCK: Final = 0x6D63702D6F7263  # "mcp-orc"
"""The PostgreSQL advisory lock held while the schema is checked and migrated (any constant of our own)."""


def _current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if revision is None else str(revision)


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    # Foreign keys are off by default in SQLite; WAL lets readers and one writer overlap, and
    # the busy timeout makes a second writer wait instead of failing at once. In WAL mode,
    # synchronous=NORMAL keeps every commit through a crash of the process (what a run journal
    # must survive) and skips the fsync per commit; only a power loss may undo the last commits.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


class Store:
    """The state database, migrated and ready: the one way into SQL for every other package."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return shown_url(self.engine)


@asynccontextmanager
async def open_store(url: URL) -> AsyncGenerator[Store, None]:
    """Open the database at ``url``, create or migrate its schema, and close it on exit.

    A SQLite file's folder is created (owner-only) when missing.

    Raises:
        StoreError: The database cannot be reached, or its schema is newer than this version
            knows (never downgraded), or a migration failed. The message names the URL
            without its password.
    """
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = create_async_engine(url, pool_pre_ping=url.get_backend_name() != "sqlite")
    if url.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        make_twin(engine, _sqlite_pragmas)
    try:
        try:
            async with engine.begin() as connection:
                before = after = await connection.run_sync(_current_revision)
                if before != HEAD_REVISION and engine.dialect.name == "postgresql":
                    # Replicas started at once on a new database would each create the schema,
                    # and all but one fail on the catalogue's unique keys. One migrates under
                    # this lock (released at commit); the others wait for it, then read again.
                    await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
                    before = after = await connection.run_sync(_current_revision)
                if before != HEAD_REVISION:
                    before, after = await connection.run_sync(_package.upgrade_schema, shown)
        except (DBAPIError, SQLAlchemyError, OSError) as exc:
            raise StoreError(shown, f"cannot open or migrate the state database: {type(exc).__name__}") from None
        if before != after:
            logger.info("state database %s migrated from %s to %s", shown, before or "empty", after)
        yield Store(engine)
    finally:
        dispose_twin(engine)
        await engine.dispose()
