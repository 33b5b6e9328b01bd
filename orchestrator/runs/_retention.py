"""Retention of the run journal: finished runs older than ``runs.retention`` are deleted.

``serve`` runs ``keep_pruning`` in its task group, as the audit log prunes its records: once
at start, then every hour. Running runs are never pruned, however old (``prune_runs``).

Does not: decide the retention (``runs.retention`` in the config) or prune anything but runs
and their steps.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import anyio

from orchestrator import store as state_db
from orchestrator.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable

    from orchestrator.store import Store

__all__ = ["keep_pruning", "prune_finished_runs"]

logger = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


async def prune_finished_runs(store: Store, retention_seconds: float, *, now: datetime) -> int:
    """Delete the runs that finished more than ``retention_seconds`` before ``now``; how many went.

    Args:
        store: The opened state database.
        retention_seconds: How long a finished run is kept (``runs.retention``).
        now: The time (aware) the retention counts back from.

    Raises:
        StoreError: The database refused or could not be reached.
    """
    retention = timedelta(seconds=retention_seconds)
    removed = await state_db.prune_runs(store.engine, now - retention)
    if removed:
        logger.info("run journal: pruned %d run(s) finished more than %s ago", removed, retention)
    return removed


async def keep_pruning(
    store: Store,
    retention_seconds: float,
    *,
    every: float = 3600.0,
    clock: Callable[[], datetime] = _now,
) -> None:
    """Prune finished runs now and then every ``every`` seconds, until cancelled.

    A database failure does not stop it: each kind of failure is logged once (the database is
    tried again at the next round), and that pruning works again is logged when it does.

    Args:
        store: The opened state database; it must outlive this loop.
        retention_seconds: How long a finished run is kept (``runs.retention``).
        every: Seconds between prunings.
        clock: The time now (aware); tests pass a fixed one.
    """
    failures: set[str] = set()
    while True:
        try:
            await prune_finished_runs(store, retention_seconds, now=clock())
        except StoreError as exc:
            # The message names the URL (no password) and the kind of failure, never values.
            if str(exc) not in failures:
                failures.add(str(exc))
                logger.error("run journal: pruning finished runs failed (tried again every %gs): %s", every, exc)
        else:
            if failures:
                failures.clear()
                logger.info("run journal: pruning finished runs works again")
        await anyio.sleep(every)
