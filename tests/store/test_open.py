"""Opening the state database: the default place, URLs, migrations at start, clear errors."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import uuid
from typing import TYPE_CHECKING

import anyio
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from orchestrator.config import StateSpec
from orchestrator.errors import ConfigError, StoreError
from orchestrator.store import HEAD_REVISION, default_state_dir, head_revision, open_store, state_url

if TYPE_CHECKING:
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
