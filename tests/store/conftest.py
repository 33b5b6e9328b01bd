"""Every store test runs on both back ends: SQLite in the test's folder, and the session's PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from orchestrator.config import StateSpec
from orchestrator.store import open_store, state_url

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from sqlalchemy.ext.asyncio import AsyncEngine


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A state database URL: a new SQLite file, then the session's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """The store at ``database_url``, migrated to the newest schema."""
    async with open_store(state_url(StateSpec(url=database_url), {})) as store:
        yield store.engine
