"""Fixtures shared by the whole suite."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.postgres import running_postgres

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def anyio_backend() -> str:
    """Every async test runs on asyncio (the backend the CLI uses)."""
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a real PostgreSQL server on 127.0.0.1, shared by the tests of a session."""
    with running_postgres() as url:
        yield url
