"""Opening the state database: engine, connection settings, and migrations run at start."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from orchestrator.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from sqlalchemy.engine import URL, Connection

__all__ = ["Store", "open_store"]

logger = logging.getLogger(__name__)

_MIGRATIONS = str(Path(__file__).with_name("migrations"))
_SQLITE_BUSY_TIMEOUT_MS = 10_000


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", _MIGRATIONS)
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> tuple[str | None, str | None]:
    """Migrate to the newest schema; the revisions before and after."""
    before = MigrationContext.configure(connection).get_current_revision()
    command.upgrade(_alembic_config(connection), "head")
    after = MigrationContext.configure(connection).get_current_revision()
    return before, after


def head_revision() -> str | None:
    """The newest schema revision this version knows."""
    return ScriptDirectory(_MIGRATIONS).get_current_head()


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    # Foreign keys are off by default in SQLite; WAL lets readers and one writer overlap, and
    # the busy timeout makes a second writer wait instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


class Store:
    """The state database, migrated and ready: the one way into SQL for every other package."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return self.engine.url.render_as_string(hide_password=True)


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
    try:
        try:
            async with engine.begin() as connection:
                before, after = await connection.run_sync(_upgrade)
        except (DBAPIError, SQLAlchemyError, OSError) as exc:
            raise StoreError(shown, f"cannot open or migrate the state database: {type(exc).__name__}") from None
        except CommandError as exc:  # e.g. a revision newer than this version knows
            raise StoreError(shown, f"cannot migrate the state database: {exc}") from None
        if before != after:
            logger.info("state database %s migrated from %s to %s", shown, before or "empty", after)
        yield Store(engine)
    finally:
        await engine.dispose()
