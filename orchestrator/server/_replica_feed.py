"""Keeping serving processes that share a PostgreSQL state database in step: the feed's both ends.

Each replica (and each worker of ``serve --workers``) builds its catalogue from its own
downstream connections and judges their listings against the shared pins. Through the state
database's change feed (``orchestrator.store.listen``/``notify``):

- ``pins``: pins were approved or forgotten (``orchestrator pins``, or another process under
  ``trust: auto``): the held-back definitions are judged again now, not at the next
  ``trust.recheck``.
- ``catalogue``: another process's catalogue version changed to one that differs from ours:
  every connected server is listed again now, so a change it did not announce to us is seen
  (and our clients are told, as for any change). Our own version changes are announced the
  same way, once start-up is over, except those that a feed message caused (no echo back).
- ``resumed``: the feed reconnected and may have missed messages: both of the above.

Messages are hints: each process still judges and lists for itself, and the periodic recheck
stays as the fallback for a message that never arrives.

Does not: open the database or decide whether there is a feed (the aggregator does, for
PostgreSQL), or write SQL (``orchestrator.store``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from orchestrator import store as state_db
from orchestrator.errors import StoreError

if TYPE_CHECKING:
    from orchestrator.server._app import OrchestratorServer
    from orchestrator.store import Change, Store

__all__ = ["ReplicaFeed"]

logger = logging.getLogger(__name__)


class ReplicaFeed:
    """Announces this process's catalogue changes on the feed, and acts on the others' messages.

    Args:
        store: The shared state database (PostgreSQL).
        server: The MCP server whose catalogue is announced and refreshed.
    """

    def __init__(self, store: Store, server: OrchestratorServer) -> None:
        self._store = store
        self._server = server
        self._changed = anyio.Event()
        self._announced: str | None = None
        """The version last announced, or reached through a feed message (not to be announced)."""
        self._following = 0
        """How many feed-caused refreshes are running: changes they make are not announced."""
        server.add_change_listener(self._on_change)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen and announce until cancelled; started once listening. The feed's failures are logged, never raised."""
        async with state_db.listen(self._store) as changes, anyio.create_task_group() as tg:
            tg.start_soon(self._announce)
            task_status.started()
            async for change in changes:
                if change.own:
                    continue
                try:
                    await self._follow(change)
                except StoreError as exc:
                    logger.warning("could not act on a change another process announced: %s", exc)

    def _on_change(self) -> None:
        self._changed.set()

    async def _follow(self, change: Change) -> None:
        pool = self._server.pool
        if not pool.settled:
            return  # still listing everything for the first time
        relist = change.topic == "resumed" or (
            change.topic == "catalogue" and change.data.get("version") != self._server.catalogue_version
        )
        if change.topic == "catalogue" and not relist:
            return
        self._following += 1
        try:
            await pool.recheck()  # cheap: only servers with held-back definitions are judged again
            if relist:
                logger.info("the catalogue of another process changed: listing the servers again")
                await pool.relist()
        finally:
            self._following -= 1
            # What this led to is no news to the others: they caused it, or heard the same.
            self._announced = self._server.catalogue_version

    async def _announce(self) -> None:
        server = self._server
        while True:
            await self._changed.wait()
            self._changed = anyio.Event()
            if self._following or not server.pool.settled:
                continue
            version = server.catalogue_version
            if version == self._announced:
                continue
            self._announced = version
            try:
                await state_db.notify(self._store, "catalogue", {"version": version})
            except StoreError as exc:
                logger.warning("could not announce catalogue version %s to other processes: %s", version, exc)
