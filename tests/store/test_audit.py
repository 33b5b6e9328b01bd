"""The audit log in the store, on SQLite and on a real PostgreSQL: write, filter, prune."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.exc import StatementError

from orchestrator import store as store_package
from orchestrator.config import StateSpec
from orchestrator.store import AuditRecord, open_store, prune_audit, read_audit, state_url, write_audit

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def _record(minutes: int, client: str | None, tool: str = "db__query") -> AuditRecord:
    return AuditRecord(
        at=T0 + timedelta(minutes=minutes),
        tool=tool,
        argument_shape={"sql": "string", "limit": "integer"},
        argument_hash="0" * 64,
        outcome="ok",
        duration_ms=12.5,
        client_id=client,
        server="db",
        downstream_tool="query",
        trace_id="f" * 32,
        catalogue_version=f"{minutes:016x}",
    )


async def test_records_come_back_as_written_oldest_first_and_filtered(database_url: str) -> None:
    records = [_record(2, "chatgpt"), _record(0, "claude"), _record(1, "chatgpt", "tickets__get_ticket")]
    async with open_store(state_url(StateSpec(url=database_url), {})) as store:
        await write_audit(store.engine, records)
        everything = await read_audit(store.engine)
        chatgpt = await read_audit(store.engine, client_id="chatgpt")
        recent = await read_audit(store.engine, since=T0 + timedelta(minutes=1))
        # Leave the next test an empty table: PostgreSQL is shared by the session.
        await prune_audit(store.engine, T0 + timedelta(days=1))
    assert everything == sorted(records, key=lambda record: record.at)
    assert all(record.at.tzinfo is not None for record in everything)
    assert [record.tool for record in chatgpt] == ["tickets__get_ticket", "db__query"]
    assert [record.at for record in recent] == [T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]


async def test_pruning_removes_only_what_is_older_than_the_retention(database_url: str) -> None:
    async with open_store(state_url(StateSpec(url=database_url), {})) as store:
        await write_audit(store.engine, [_record(0, "a"), _record(60, "a"), _record(120, "a")])
        removed = await prune_audit(store.engine, T0 + timedelta(minutes=60))
        left = await read_audit(store.engine)
        await prune_audit(store.engine, T0 + timedelta(days=1))
    assert removed == 1
    assert [record.at for record in left] == [T0 + timedelta(minutes=60), T0 + timedelta(minutes=120)]


async def test_a_time_without_a_zone_is_refused(tmp_path: Path) -> None:
    naive = AuditRecord(
        at=datetime(2026, 12, 6, 12, 0),
        tool="t",
        argument_shape={},
        argument_hash="0" * 64,
        outcome="ok",
        duration_ms=1.0,
    )
    async with open_store(make_url(f"sqlite+aiosqlite:///{tmp_path / 'state.db'}")) as store:
        with pytest.raises(StatementError, match="timezone-aware"):
            await write_audit(store.engine, [naive])


async def test_records_written_before_the_catalogue_version_was_kept_read_back_without_one(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        config = Config()
        config.set_main_option("script_location", str(Path(store_package.__file__).with_name("migrations")))
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")  # the schema before the catalogue version was kept
        connection.exec_driver_sql(
            "INSERT INTO audit_records (at, tool, argument_shape, argument_hash, outcome, duration_ms)"
            " VALUES ('2026-12-06 12:00:00.000000', 'db__query', '{}', '0', 'ok', 1.0)"
        )
    engine.dispose()
    async with open_store(state_url(StateSpec(url=f"sqlite:///{path}"), {})) as store:  # migrates to the newest
        await write_audit(store.engine, [_record(5, "claude")])
        old, new = await read_audit(store.engine)
    assert (old.tool, old.catalogue_version) == ("db__query", None)
    assert new.catalogue_version == f"{5:016x}"
