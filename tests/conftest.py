"""Fixtures shared by the whole suite."""

from __future__ import annotations

import compileall
import os
import shutil
from typing import TYPE_CHECKING

import anyio
import pytest
from sqlalchemy.engine import make_url

from orchestrator.store import open_store
from tests.fakes import REPO_ROOT
from tests.postgres import running_postgres
from tests.redis_server import RedisServer, running_redis

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def pytest_configure(config: pytest.Config) -> None:
    """Write the bytecode of the project's modules once, before the tests start processes.

    The suite starts hundreds of Python processes (``orchestrator``, the fault and example
    servers). Where ``PYTHONDONTWRITEBYTECODE`` is set and the checkout is fresh, as on CI,
    each of them would compile every module it imports again; compiled once here, each loads
    them instead. Up-to-date files are skipped; xdist workers leave it to the controller.
    """
    if hasattr(config, "workerinput"):
        return
    tests = REPO_ROOT / "tests"
    compileall.compile_dir(tests, maxlevels=0, quiet=2)
    folders = [REPO_ROOT / "orchestrator", REPO_ROOT / "examples"]
    folders += [path for path in tests.iterdir() if path.is_dir() and path.name not in ("node", "__pycache__")]
    for folder in folders:
        compileall.compile_dir(folder, quiet=2)


@pytest.fixture
def anyio_backend() -> str:
    """Every async test runs on asyncio (the backend the CLI uses)."""
    return "asyncio"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a real PostgreSQL server on 127.0.0.1, shared by the tests of a session."""
    with running_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real Redis server on 127.0.0.1, with a password, shared by the tests of a session.

    Outside CI, its tests are skipped when ``redis-server`` is not installed; on CI they fail.
    """
    with running_redis() as server:
        yield server


@pytest.fixture(scope="session")
def _migrated_state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state database migrated once, copied for each test (migrating one per test costs seconds)."""
    folder = tmp_path_factory.mktemp("migrated-state")

    async def migrate() -> None:
        async with open_store(make_url(f"sqlite+aiosqlite:///{folder / 'state.db'}")):
            pass

    anyio.run(migrate)
    return folder / "state.db"


def _use_state_home(home: Path, migrated: Path) -> Iterator[None]:
    """Point ``XDG_STATE_HOME`` at ``home``, holding a copy of the migrated database, until resumed."""
    (home / "mcp-orchestrator").mkdir(mode=0o700)
    shutil.copyfile(migrated, home / "mcp-orchestrator" / "state.db")
    previous = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(home)
    yield
    if previous is None:
        del os.environ["XDG_STATE_HOME"]
    else:
        os.environ["XDG_STATE_HOME"] = previous


@pytest.fixture(autouse=True, scope="module")
def _module_state_dir(tmp_path_factory: pytest.TempPathFactory, _migrated_state: Path) -> Iterator[None]:
    """The default state database of a module's shared servers (module-scoped fixtures).

    Those start before any test's own state folder exists: without this they would pin their
    listings in the home folder of whoever runs the suite, and a database left there by
    another version of the project can refuse to migrate.
    """
    yield from _use_state_home(tmp_path_factory.mktemp("module-state"), _migrated_state)


@pytest.fixture(autouse=True)
def _state_dir(
    _module_state_dir: None, tmp_path_factory: pytest.TempPathFactory, _migrated_state: Path
) -> Iterator[None]:
    """Each test, and every process it starts, has a default state database of its own.

    ``orchestrator serve --transport http`` keeps its audit log there, and every listing of a
    downstream server is pinned there: without this every test would write into the home
    folder of whoever runs the suite, and one test's pins would judge another's servers.
    """
    yield from _use_state_home(tmp_path_factory.mktemp("state"), _migrated_state)
