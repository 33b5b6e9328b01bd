"""A synchronous twin of an SQLite state database's engine, for short transactions on hot paths.

Through aiosqlite every statement, fetch and commit is a round trip to its thread: about eight
per journal transaction, which a workflow's critical path pays once per layer of steps (and a
shared rate limit once per call). A transaction on the twin (the stdlib driver, same file,
same pragmas) is one trip to a worker thread. PostgreSQL (asyncpg) needs no twin.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, TypeVar

import anyio
from sqlalchemy import create_engine, event

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["dispose_twin", "in_transaction", "make_twin", "twin_of"]

_T = TypeVar("_T")

_TWINS: weakref.WeakKeyDictionary[AsyncEngine, Engine] = weakref.WeakKeyDictionary()


def make_twin(engine: AsyncEngine, on_connect: Callable[..., None]) -> None:
    """Give ``engine`` (SQLite on a file) its synchronous twin; ``on_connect`` sets each connection up."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    # Used from worker threads, one transaction at a time per connection.
    twin = create_engine(url.set(drivername="sqlite"), connect_args={"check_same_thread": False})
    event.listen(twin, "connect", on_connect)
    _TWINS[engine] = twin


def twin_of(engine: AsyncEngine) -> Engine | None:
    """``engine``'s synchronous twin, if it has one."""
    return _TWINS.get(engine)


def dispose_twin(engine: AsyncEngine) -> None:
    """Close the twin's connections (with ``engine``'s)."""
    twin = _TWINS.pop(engine, None)
    if twin is not None:
        twin.dispose()


async def in_transaction(engine: AsyncEngine, body: Callable[[Connection], _T]) -> _T:
    """Run ``body`` in one transaction: on SQLite's synchronous twin in one worker-thread trip,
    elsewhere on the async engine.

    Raises:
        DBAPIError: The database refused (the caller turns it into a ``StoreError``).
    """
    twin = twin_of(engine)
    if twin is not None:

        def on_twin() -> _T:
            with twin.begin() as connection:
                return body(connection)

        return await anyio.to_thread.run_sync(on_twin)
    async with engine.begin() as connection:
        return await connection.run_sync(body)
