"""Migrating the state database's schema with Alembic.

Loaded only when a database is behind (or new): importing Alembic and reading its scripts
costs a noticeable part of a second, which a command that finds its database up to date
(almost every start) does not pay. ``orchestrator.store._store`` reaches this module through
the package's lazy names.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from orchestrator.errors import StoreError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = ["head_revision", "upgrade_schema"]

_MIGRATIONS = str(Path(__file__).with_name("migrations"))


def _alembic_config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", _MIGRATIONS)
    config.attributes["connection"] = connection
    return config


def upgrade_schema(connection: Connection, shown_url: str) -> tuple[str | None, str | None]:
    """Migrate to the newest schema; the revisions before and after.

    Raises:
        StoreError: Alembic refused, e.g. the database holds a revision newer than this version knows.
    """
    before = MigrationContext.configure(connection).get_current_revision()
    try:
        command.upgrade(_alembic_config(connection), "head")
    except CommandError as exc:
        raise StoreError(shown_url, f"cannot migrate the state database: {exc}") from None
    after = MigrationContext.configure(connection).get_current_revision()
    return before, after


def head_revision() -> str | None:
    """The newest schema revision the migration scripts know."""
    return ScriptDirectory(_MIGRATIONS).get_current_head()
