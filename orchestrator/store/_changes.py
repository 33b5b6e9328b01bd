"""The change feed between processes sharing a PostgreSQL state database: ``pg_notify`` and ``LISTEN``.

Replicas (and ``serve --workers``) each keep a catalogue and judged listings of their own; what
one of them, or a command such as ``orchestrator pins approve``, changes in the shared state is
announced here so the others act at once instead of on their next periodic look. ``notify``
sends one message on the ``CHANNEL``; ``listen`` holds a connection of its own that receives
them, reconnecting (with back-off) when it drops, and says ``resumed`` after each reconnect:
what was sent while it was away is lost, so the listener looks at everything again.

A message is JSON ``{"topic": ..., "sender": ..., "data": {...}}``; ``sender`` is the sending
process's ``PROCESS_ID``, so a process can skip its own. Delivery is best effort: PostgreSQL
drops notifications for sessions that are not listening, and a message never replaces the
state itself, only says where to look again.

SQLite has no such thing (and its processes share one machine): ``notify`` does nothing and
``listen`` is for PostgreSQL only.

Does not: decide what a message means (the serving process does), or carry state.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Literal, cast, get_args

import anyio
import anyio.abc
import asyncpg
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from orchestrator.store._failures import database_failure, shown_url

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Callable

    from anyio.streams.memory import MemoryObjectSendStream
    from sqlalchemy.ext.asyncio import AsyncConnection

    from orchestrator.store._store import Store

__all__ = ["CHANNEL", "PROCESS_ID", "Change", "ChangeTopic", "listen", "notify", "shares_changes"]

logger = logging.getLogger(__name__)

CHANNEL: Final = "mcp_orchestrator_changes"
"""The one PostgreSQL notification channel (channels are per database, like the state)."""

PROCESS_ID: Final = uuid.uuid4().hex
"""This process's id in the messages it sends: each serving process (replica or worker) has its own."""

ChangeTopic = Literal["pins", "catalogue", "resumed"]
"""``pins``: pins were approved or forgotten; ``catalogue``: a process's catalogue version changed
(``data["version"]``); ``resumed``: ``listen`` reconnected, and anything may have changed meanwhile."""

_TOPICS: Final = frozenset(get_args(ChangeTopic))

RECONNECT_FIRST: float = 0.5
"""Seconds before the first reconnect attempt; doubled after each failure up to ``RECONNECT_MAX``."""
RECONNECT_MAX: float = 30.0
PROBE_SECONDS: float = 30.0
"""How often the listening connection is checked (a silent network failure raises no event)."""
_PROBE_TIMEOUT: Final = 10.0
_CLOSE_TIMEOUT: Final = 5.0
_LOST: Final = (DBAPIError, SQLAlchemyError, OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)
"""What a lost (or unreachable) database raises, through SQLAlchemy or from the driver itself."""


@dataclass(frozen=True, slots=True)
class Change:
    """One message of the feed.

    Attributes:
        topic: What changed (see ``ChangeTopic``).
        sender: The ``PROCESS_ID`` of the process that sent it (``""`` for ``resumed``).
        data: What the sender said about it (``{"server": KEY}``, ``{"version": V}``).
    """

    topic: ChangeTopic
    sender: str
    data: dict[str, Any] = field(default_factory=dict[str, Any])

    @property
    def own(self) -> bool:
        """Whether this process sent it."""
        return self.sender == PROCESS_ID


def shares_changes(store: Store) -> bool:
    """Whether ``store`` carries a change feed (PostgreSQL), so ``listen`` may be used."""
    return store.engine.url.get_backend_name() == "postgresql"


async def notify(store: Store, topic: ChangeTopic, data: dict[str, Any] | None = None) -> None:
    """Tell every process listening on ``store`` that ``topic`` changed; nothing on SQLite.

    Raises:
        StoreError: The database cannot be reached.
    """
    if not shares_changes(store):
        return
    payload = json.dumps({"topic": topic, "sender": PROCESS_ID, "data": data or {}}, separators=(",", ":"))
    try:
        async with store.engine.begin() as connection:
            await connection.execute(
                text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
            )
    except DBAPIError as exc:
        raise database_failure(store.engine, "announce a change", exc) from None


def _parse(payload: str) -> Change | None:
    """The message in ``payload``, or ``None`` if it is not one this version knows."""
    try:
        message = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    fields = cast("dict[str, Any]", message)
    topic, sender, data = fields.get("topic"), fields.get("sender"), fields.get("data", {})
    if topic not in _TOPICS or topic == "resumed" or not isinstance(sender, str) or not isinstance(data, dict):
        return None
    return Change(cast("ChangeTopic", topic), sender, cast("dict[str, Any]", data))


@asynccontextmanager
async def listen(store: Store) -> AsyncGenerator[AsyncIterator[Change], None]:
    """Receive the feed's messages (every process's, this one's included) until exit.

    Entered once the connection listens (or its first attempt failed): a message sent after
    that is received. A connection of its own, out of the pool, listens on ``CHANNEL``. When it drops (or a probe
    finds it dead) it is opened again after a pause that doubles up to ``RECONNECT_MAX``, and a
    ``resumed`` change is received once it listens again. Failures are logged, never raised:
    the feed only speeds up what the processes would find anyway.

    Raises:
        ValueError: ``store`` is not PostgreSQL.
    """
    if not shares_changes(store):
        raise ValueError("the change feed needs a PostgreSQL state database")
    # Unbounded: messages are a few bytes, and the reader only sets flags for them.
    sender, receiver = anyio.create_memory_object_stream[Change](math.inf)
    async with anyio.create_task_group() as tg, receiver:
        await tg.start(_keep_listening, store, sender)
        try:
            yield receiver
        finally:
            tg.cancel_scope.cancel()


async def _keep_listening(
    store: Store,
    changes: MemoryObjectSendStream[Change],
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    pause = RECONNECT_FIRST
    attempts = 0
    listened = False

    def listening() -> None:
        nonlocal listened, pause
        if not listened:
            task_status.started()
        listened, pause = True, RECONNECT_FIRST

    async with changes:
        while True:
            attempts += 1
            try:
                async with store.engine.connect() as connection:
                    try:
                        await _listen_on(connection, changes, resumed=attempts > 1, listening=listening)
                    finally:
                        await _close(connection)
            except _LOST as exc:
                reason = type(exc.orig).__name__ if isinstance(exc, DBAPIError) and exc.orig else type(exc).__name__
                logger.warning(
                    "change feed on %s lost (%s); listening again in %.1f s", shown_url(store.engine), reason, pause
                )
            else:
                logger.warning("change feed on %s lost; listening again in %.1f s", shown_url(store.engine), pause)
            if not listened:  # the first attempt failed: the caller goes on without waiting for it
                listened = True
                task_status.started()
            await anyio.sleep(pause)
            pause = min(pause * 2, RECONNECT_MAX)


async def _listen_on(
    connection: AsyncConnection,
    changes: MemoryObjectSendStream[Change],
    *,
    resumed: bool,
    listening: Callable[[], None],
) -> None:
    """Listen on ``connection`` until it drops or a probe finds it dead.

    Raises:
        DBAPIError, asyncpg.PostgresError, asyncpg.InterfaceError, OSError: It could not listen.
    """
    raw = await connection.get_raw_connection()
    driver: Any = raw.driver_connection  # asyncpg's Connection: LISTEN needs the driver's own API
    lost = anyio.Event()

    def received(_connection: object, _pid: int, _channel: str, payload: str) -> None:
        change = _parse(payload)
        if change is not None:
            # The reader may have left: this connection is being closed.
            with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                changes.send_nowait(change)

    def terminated(_connection: object) -> None:
        lost.set()

    driver.add_termination_listener(terminated)
    await driver.add_listener(CHANNEL, received)
    listening()
    if resumed:
        logger.info("change feed on %s: listening again", shown_url(connection.engine))
        changes.send_nowait(Change("resumed", ""))
    async with anyio.create_task_group() as tg:

        async def probe() -> None:
            while True:
                await anyio.sleep(PROBE_SECONDS)
                try:
                    with anyio.fail_after(_PROBE_TIMEOUT):
                        await driver.execute("SELECT 1")
                except _LOST:
                    lost.set()
                    return

        tg.start_soon(probe)
        await lost.wait()
        tg.cancel_scope.cancel()


async def _close(connection: AsyncConnection) -> None:
    # Never back to the pool: it would keep listening (and its listener) for its next user.
    # Shielded, so a cancelled listener still closes its connection.
    with (
        anyio.CancelScope(shield=True),
        anyio.move_on_after(_CLOSE_TIMEOUT),
        suppress(DBAPIError, SQLAlchemyError, OSError),
    ):
        await connection.invalidate()
