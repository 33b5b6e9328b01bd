"""The change feed: ``notify`` and ``listen`` over PostgreSQL's NOTIFY, and nothing on SQLite."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import anyio
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from orchestrator.config import StateSpec
from orchestrator.store import PROCESS_ID, Change, listen, notify, open_store, shares_changes, state_url
from orchestrator.store import _changes as changes_module

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from orchestrator.store import Store

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[Store]:
    """A migrated store on a new database of the session's PostgreSQL (channels are per database)."""
    name = f"feed_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(state_url(StateSpec(url=postgres_url), {}), isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    try:
        async with open_store(state_url(StateSpec(url=url), {})) as opened:
            yield opened
    finally:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.dispose()


async def _send_raw(store: Store, payload: str) -> None:
    async with store.engine.begin() as connection:
        await connection.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": changes_module.CHANNEL, "payload": payload}
        )


async def test_a_notification_reaches_the_listener_with_its_topic_sender_and_data(store: Store) -> None:
    async with listen(store) as received:
        await notify(store, "pins", {"server": "f"})
        with anyio.fail_after(10):
            change = await anext(aiter(received))
    assert change == Change("pins", PROCESS_ID, {"server": "f"})
    assert change.own


async def test_another_process_message_is_not_own_and_unknown_or_malformed_ones_are_skipped(store: Store) -> None:
    async with listen(store) as received:
        await _send_raw(store, "not json")
        await _send_raw(store, json.dumps({"topic": "something-newer", "sender": "x", "data": {}}))
        await _send_raw(store, json.dumps({"topic": "resumed", "sender": "x", "data": {}}))  # only listen says it
        await _send_raw(store, json.dumps({"topic": "catalogue", "sender": "other", "data": {"version": "v2"}}))
        with anyio.fail_after(10):
            change = await anext(aiter(received))
    assert change == Change("catalogue", "other", {"version": "v2"})
    assert not change.own


async def test_a_dropped_connection_is_opened_again_and_says_resumed(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changes_module, "RECONNECT_FIRST", 0.01)
    async with listen(store) as received:
        async with store.engine.begin() as connection:
            ended = await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query LIKE 'LISTEN%'"
                )
            )
            assert ended.scalars().all() == [True]
        with anyio.fail_after(10):
            resumed = await anext(aiter(received))
        assert resumed.topic == "resumed"
        await notify(store, "catalogue", {"version": "v3"})
        with anyio.fail_after(10):
            after = await anext(aiter(received))
    assert after == Change("catalogue", PROCESS_ID, {"version": "v3"})


async def test_leaving_closes_the_listening_connection_instead_of_pooling_it(store: Store) -> None:
    with anyio.fail_after(10):
        async with listen(store):
            pass
    pool = store.engine.pool
    assert pool.checkedout() == 0  # type: ignore[attr-defined]  # QueuePool's count, not on the Pool base
    async with store.engine.connect() as connection:
        channels = (await connection.execute(text("SELECT pg_listening_channels()"))).scalars().all()
    assert channels == []


async def test_sqlite_has_no_feed_notify_does_nothing_and_listen_refuses(tmp_path: Path) -> None:
    async with open_store(state_url(StateSpec(url=f"sqlite:///{tmp_path / 'state.db'}"), {})) as sqlite:
        assert not shares_changes(sqlite)
        await notify(sqlite, "pins", {"server": "f"})
        with pytest.raises(ValueError, match="PostgreSQL"):
            async with listen(sqlite):
                pass
