"""One process at a time migrates a state database: the lock the others wait for.

Several processes may open one database at once: replicas on PostgreSQL, ``serve --workers``
(or a CLI command beside a server) on one SQLite file. Each finds the schema behind and would
migrate it; two at once create the same tables twice, or copy the same table through batch
mode's ``_alembic_tmp_*``, and one of them fails. The store holds this lock across its check
of the revision and the upgrade, so whoever takes it second finds the schema at the head.

Both locks die with their holder (a PostgreSQL session's locks end with it; the kernel drops a
file lock with the process), so a crash never leaves a database no one can migrate. Waiting
is bounded by ``WAIT_SECONDS``.

Does not: decide whether to migrate or run Alembic (``orchestrator.store._store``).
"""

from __future__ import annotations

import hashlib
import os
import sys
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from orchestrator.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["ADVISORY_LOCK_KEY", "WAIT_SECONDS", "lock_file_of", "migration_lock"]

WAIT_SECONDS: float = 60.0
"""How long a process waits for another's migration before it gives up (tests shorten it)."""

ADVISORY_LOCK_KEY: Final = int.from_bytes(hashlib.sha256(b"mcp-orchestrator migrations").digest()[:8], signed=True)
"""PostgreSQL's advisory lock key: fixed, derived from the project's name (locks are per database)."""

_POLL_SECONDS: Final = 0.05
_RELEASE_SECONDS: Final = 10.0
_LOCK_NOT_AVAILABLE: Final = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout ran out


def lock_file_of(database: str) -> Path:
    """The file a SQLite database's migrations lock: ``<database>.migrate.lock`` beside it."""
    return Path(f"{database}.migrate.lock")


@asynccontextmanager
async def migration_lock(engine: AsyncEngine, shown_url: str) -> AsyncGenerator[None, None]:
    """Hold the migration lock of ``engine``'s database until exit, waiting for another process's.

    Raises:
        StoreError: Another process held it for more than ``WAIT_SECONDS``, or the lock could not
            be taken (the database is unreachable, the lock file cannot be created).
    """
    url = engine.url
    if url.get_backend_name() == "postgresql":
        async with _advisory_lock(engine, shown_url):
            yield
    elif url.database not in (None, "", ":memory:"):
        async with _file_lock(lock_file_of(url.database or ""), shown_url):
            yield
    else:
        # An in-memory database belongs to one connection of one process: no one to wait for.
        yield


def _gave_up(shown_url: str) -> StoreError:
    return StoreError(
        shown_url,
        f"another process has been migrating the state database for {WAIT_SECONDS:g} s; gave up waiting for it",
    )


@asynccontextmanager
async def _advisory_lock(engine: AsyncEngine, shown_url: str) -> AsyncGenerator[None, None]:
    # A session-level lock on a connection of its own: the migration's transaction starts after
    # the lock is held, so its snapshot sees what the previous holder committed (in any isolation
    # level), and the lock outlives that transaction's commit or rollback.
    async with engine.connect() as connection:
        try:
            async with connection.begin():
                # The server bounds the wait; SET LOCAL's value ends with this transaction.
                await connection.execute(
                    text("SELECT set_config('lock_timeout', :timeout, true)"),
                    {"timeout": f"{round(WAIT_SECONDS * 1000)}ms"},
                )
                await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                raise _gave_up(shown_url) from None
            raise
        try:
            yield
        finally:
            await _release(connection)


async def _release(connection: AsyncConnection) -> None:
    # Rolling back does not end a session-level lock: a connection returned to the pool still
    # holding it would stall every other process. Shielded, so a cancelled start still releases;
    # when the unlock fails or hangs, the connection is closed instead, which ends the session.
    with anyio.CancelScope(shield=True):
        with anyio.move_on_after(_RELEASE_SECONDS):
            try:
                await connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})
                await connection.commit()
            except DBAPIError:
                pass
            else:
                return
        await connection.invalidate()


@asynccontextmanager
async def _file_lock(path: Path, shown_url: str) -> AsyncGenerator[None, None]:
    # Not SQLite's own locks: in WAL mode BEGIN EXCLUSIVE is BEGIN IMMEDIATE, the one write lock,
    # so a second connection holding it would shut out the migration's own writes; and the
    # migration cannot hold it in its own transaction, since the stdlib driver runs DDL outside
    # any transaction until the first INSERT (the first tables are committed one by one). A lock
    # on a file beside the database is apart from SQLite's locks and journal mode; WAL already
    # needs every process on one host, where such locks hold.
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(shown_url, f"cannot create the migration lock {path.name}: {exc.strerror}") from None
    try:
        # Polled, not blocking: a blocked thread could be neither bounded nor cancelled.
        with anyio.move_on_after(WAIT_SECONDS) as waiting:
            while not _try_lock(descriptor):  # noqa: ASYNC110 - the holder is another process: no Event to wait on
                await anyio.sleep(_POLL_SECONDS)
        if waiting.cancelled_caught:
            raise _gave_up(shown_url)
        yield
    finally:
        _unlock(descriptor)
        os.close(descriptor)


if sys.platform == "win32":
    import msvcrt

    def _try_lock(descriptor: int) -> bool:
        try:
            os.lseek(descriptor, 0, os.SEEK_SET)  # the locked byte is at the file's position
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(descriptor: int) -> None:
        try:
            os.lseek(descriptor, 0, os.SEEK_SET)
            msvcrt.locking(descriptor, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass  # not held (the wait gave up); closing the file lets go of it anyway

else:
    import fcntl

    def _try_lock(descriptor: int) -> bool:
        # flock, not fcntl/lockf: a POSIX record lock is the process's, so another connection
        # of this process would be granted it too, and closing any descriptor of the file drops it.
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(descriptor: int) -> None:
        del descriptor  # closing the descriptor drops the lock
