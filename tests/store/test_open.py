"""Opening the state database: the default place, URLs, migrations at start, clear errors."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from orchestrator.config import StateSpec
from orchestrator.errors import ConfigError, StoreError
from orchestrator.store import HEAD_REVISION, default_state_dir, head_revision, open_store, state_url
from orchestrator.store import _migration_lock as migration_lock_module

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

pytestmark = pytest.mark.anyio


def test_the_default_state_file_follows_the_state_dir_then_xdg_then_home(tmp_path: Path) -> None:
    assert default_state_dir({"ORCHESTRATOR_STATE_DIR": str(tmp_path / "s")}) == tmp_path / "s"
    assert default_state_dir({"XDG_STATE_HOME": str(tmp_path / "x")}) == tmp_path / "x" / "mcp-orchestrator"
    home = default_state_dir({"HOME": str(tmp_path)})
    assert home == tmp_path / ".local" / "state" / "mcp-orchestrator"
    url = state_url(StateSpec(), {"ORCHESTRATOR_STATE_DIR": str(tmp_path)})
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == str(tmp_path / "state.db")


def test_urls_are_written_as_users_know_them_and_get_the_async_driver() -> None:
    sqlite = state_url(StateSpec(url="sqlite:////var/lib/orchestrator/state.db"), {})
    assert (sqlite.drivername, sqlite.database) == ("sqlite+aiosqlite", "/var/lib/orchestrator/state.db")
    postgres = state_url(StateSpec(url="postgresql://app:s3cret@db.internal:5432/orchestrator"), {})
    assert postgres.drivername == "postgresql+asyncpg"
    assert postgres.password == "s3cret"


def test_an_unsupported_or_broken_url_is_a_config_error_without_its_secret() -> None:
    with pytest.raises(ConfigError, match="'mysql' is not supported") as unsupported:
        state_url(StateSpec(url="mysql://root:hunter22@localhost/db"), {})
    assert "hunter22" not in str(unsupported.value)
    with pytest.raises(ConfigError, match="not a database URL"):
        state_url(StateSpec(url="not a url at all"), {})


async def test_a_new_state_file_is_created_in_a_private_folder_and_migrated_to_the_newest_schema(
    tmp_path: Path,
) -> None:
    url = state_url(StateSpec(), {"ORCHESTRATOR_STATE_DIR": str(tmp_path / "state")})
    async with open_store(url) as store:
        assert store.url.startswith("sqlite+aiosqlite:///")
    assert (tmp_path / "state").stat().st_mode & 0o777 == 0o700
    with sqlite3.connect(tmp_path / "state" / "state.db") as db:
        [(revision,)] = db.execute("SELECT version_num FROM alembic_version").fetchall()
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert revision == head_revision()
    assert {"alembic_version", "audit_records"} <= tables


async def test_opening_an_up_to_date_database_again_changes_nothing(tmp_path: Path) -> None:
    url = make_url(f"sqlite+aiosqlite:///{tmp_path / 'state.db'}")
    async with open_store(url):
        pass
    before = (tmp_path / "state.db").read_bytes()
    async with open_store(url):
        pass
    with sqlite3.connect(tmp_path / "state.db") as db:
        [(revision,)] = db.execute("SELECT version_num FROM alembic_version").fetchall()
    assert revision == head_revision()
    assert len(before) > 0


async def test_a_database_from_a_newer_version_is_refused_not_downgraded(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    url = make_url(f"sqlite+aiosqlite:///{path}")
    async with open_store(url):
        pass
    with sqlite3.connect(path) as db:
        db.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="cannot migrate the state database") as refused:
        async with open_store(url):
            pass
    assert refused.value.url == str(url)


async def test_an_unreachable_postgresql_is_a_store_error_naming_it_without_the_password() -> None:
    url = make_url("postgresql+asyncpg://app:s3cret@127.0.0.1:1/orchestrator")
    with pytest.raises(StoreError) as unreachable:
        async with open_store(url):
            pass
    assert "s3cret" not in str(unreachable.value)
    assert "127.0.0.1:1" in str(unreachable.value)


async def test_postgresql_is_migrated_at_start_and_opening_it_again_changes_nothing(postgres_url: str) -> None:
    url = state_url(StateSpec(url=postgres_url), {})
    async with open_store(url) as store:
        assert store.url.startswith("postgresql+asyncpg://app@127.0.0.1:")
    async with open_store(url) as store, store.engine.connect() as connection:
        revision = (await connection.exec_driver_sql("SELECT version_num FROM alembic_version")).scalar_one()
        tables = set(
            (
                await connection.exec_driver_sql(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
                )
            ).scalars()
        )
    assert revision == head_revision()
    assert {"alembic_version", "audit_records"} <= tables


async def test_replicas_starting_at_once_on_a_new_postgresql_database_migrate_it_once(postgres_url: str) -> None:
    """Each would otherwise create the schema, and all but one fail on PostgreSQL's catalogue keys."""
    name = f"fresh_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(state_url(StateSpec(url=postgres_url), {}), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        url = state_url(StateSpec(url=postgres_url), {}).set(database=name)
        revisions: list[str] = []

        async def open_one() -> None:
            async with open_store(url) as store, store.engine.connect() as connection:
                found = await connection.exec_driver_sql("SELECT version_num FROM alembic_version")
                revisions.append(str(found.scalar_one()))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(open_one)
        assert revisions == [HEAD_REVISION] * 4
    finally:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()


def test_the_head_the_store_checks_first_is_the_migration_scripts_head() -> None:
    assert head_revision() == HEAD_REVISION


def test_an_up_to_date_database_is_opened_without_loading_alembic(tmp_path: Path) -> None:
    """Alembic costs a good part of a second to import; a database at the head does not need it."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'state.db'}"
    script = (
        "import sys, anyio\n"
        "from sqlalchemy.engine import make_url\n"
        "from orchestrator.store import open_store\n"
        "async def main():\n"
        f"    async with open_store(make_url({url!r})):\n"
        "        pass\n"
        "anyio.run(main)\n"
        "print('alembic' in sys.modules)\n"
    )
    first = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    again = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    assert first.stdout.strip() == "True"  # a new database is migrated
    assert again.stdout.strip() == "False"


@pytest.fixture
async def new_database_url(database_url: str) -> AsyncIterator[str]:
    """A database no one has opened yet: the SQLite file, or a new database on the session's PostgreSQL."""
    if not database_url.startswith("postgresql"):
        yield database_url
        return
    name = f"fresh_{uuid.uuid4().hex}"
    server = create_async_engine(state_url(StateSpec(url=database_url), {}), isolation_level="AUTOCOMMIT")
    async with server.connect() as connection:
        await connection.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    finally:
        async with server.connect() as connection:
            await connection.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
        await server.dispose()


_OPEN_ON_GO = """\
import logging
import sys

import anyio

import orchestrator.store._migrate  # Alembic loaded before "go": the processes reach the migration together
from orchestrator.config import StateSpec
from orchestrator.store import open_store, state_url

logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")


async def main() -> None:
    url = state_url(StateSpec(url=sys.argv[1]), {})
    print("ready", flush=True)
    sys.stdin.readline()
    async with open_store(url):
        pass


anyio.run(main)
"""


def _open_together(url: str, count: int) -> list[tuple[int, str]]:
    """Start ``count`` processes opening ``url``; when all are ready, let them go at once. Their exit codes and logs."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_ON_GO, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            if process.stdout.readline() != "ready\n":
                _, errors = process.communicate(timeout=10)
                raise AssertionError(f"a process died before opening the database:\n{errors}")
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        outcomes: list[tuple[int, str]] = []
        for process in processes:
            _, errors = process.communicate(timeout=40)
            outcomes.append((process.returncode, errors))
        return outcomes
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


async def test_processes_opening_a_new_database_at_once_all_succeed_and_one_of_them_migrates_it(
    new_database_url: str,
) -> None:
    """Replicas on PostgreSQL, or servers on one SQLite file, start together: one migrates, the others wait for it."""
    outcomes = await anyio.to_thread.run_sync(_open_together, new_database_url, 4)
    assert [code for code, _ in outcomes] == [0, 0, 0, 0], "\n".join(errors for _, errors in outcomes)
    assert sum("migrated from empty to" in errors for _, errors in outcomes) == 1
    async with (
        open_store(state_url(StateSpec(url=new_database_url), {})) as store,
        store.engine.connect() as connection,
    ):
        versions = (await connection.exec_driver_sql("SELECT version_num FROM alembic_version")).scalars().all()
    assert versions == [HEAD_REVISION]


async def test_waiting_for_another_process_migration_is_bounded_and_names_the_database_without_its_password(
    new_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = state_url(StateSpec(url=new_database_url), {})
    if url.get_backend_name() == "postgresql":
        url = url.set(password="s3cret")  # the test server trusts every login: the password is only shown, or not
    holder = create_async_engine(url)
    monkeypatch.setattr(migration_lock_module, "WAIT_SECONDS", 0.3)
    try:
        async with migration_lock_module.migration_lock(holder, "the other process"):
            with pytest.raises(StoreError, match="gave up waiting") as waited:
                async with open_store(url):
                    pass
    finally:
        await holder.dispose()
    assert waited.value.url == url.render_as_string(hide_password=True)
    assert "s3cret" not in str(waited.value)
    async with open_store(url):  # the lock's holder is gone: the next start migrates
        pass
