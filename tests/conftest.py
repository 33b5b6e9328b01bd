"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session", autouse=True)
def _state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The default state database of every process the tests start lives in a temporary folder.

    ``orchestrator serve --transport http`` keeps its audit log there by default; without this
    every test would write into the home folder of whoever runs the suite.
    """
    previous = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("state"))
    yield
    if previous is None:
        del os.environ["XDG_STATE_HOME"]
    else:
        os.environ["XDG_STATE_HOME"] = previous
