"""A synchronous twin of an SQLite state database's engine, for the run journal's group commits.

Through aiosqlite every statement, fetch and commit is a round trip to its thread: about eight
per journal transaction, which a workflow's critical path pays once per layer of steps. The
journal's transaction on the twin (the stdlib driver, same file, same pragmas) is one trip to
a worker thread. PostgreSQL (asyncpg) needs no twin.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, event

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["dispose_twin", "make_twin", "twin_of"]

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
