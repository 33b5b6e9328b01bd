"""A PostgreSQL server shared by the store tests of a session."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.postgres import running_postgres

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a real PostgreSQL server on 127.0.0.1, for this test session."""
    with running_postgres() as url:
        yield url
