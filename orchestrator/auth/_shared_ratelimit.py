"""Rate limits shared by every process serving from one state database: the buckets live in the store.

Several processes serving together (``orchestrator serve --workers N``, replicas on
PostgreSQL) each see only part of a principal's calls; with buckets of their own they would
admit N times the limit. Here each call takes its tokens in the store, in one transaction
(``orchestrator.store.admit_call``), so the limit is one for them all. The limits mean what
they mean for ``RateLimiter``; the clock is the wall clock, which the processes share.

Does not: keep any bucket in memory (every check is a write to the store), or decide who the
principal is (the HTTP edge does).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Self

import anyio

from orchestrator import store as state_db
from orchestrator.auth._ratelimit import call_limits, limits_set
from orchestrator.errors import RateLimitedError, StoreError

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from anyio.abc import TaskGroup

    from orchestrator.config import RateLimitsSpec
    from orchestrator.store import Store

__all__ = ["SharedRateLimiter"]

logger = logging.getLogger(__name__)


class SharedRateLimiter:
    """Token buckets for the calls of each principal, in all and to each tool, kept in the store.

    A call is admitted when every bucket that applies to it holds a token, as with
    ``RateLimiter``; tokens are taken only when all of them allow. The table stays bounded:
    entered, the limiter deletes the buckets that have filled up again (a fresh bucket is full,
    so nothing is forgotten) once at the start and then every ``prune_every`` seconds; any
    process sharing the store may do it for all.
    """

    def __init__(
        self,
        spec: RateLimitsSpec,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
        prune_every: float = 60.0,
    ) -> None:
        """Limit calls as ``spec`` says, with the buckets in ``store``.

        Args:
            spec: The limits (``serve.rate_limits``).
            store: An opened store; it must outlive this limiter.
            clock: Wall-clock seconds, the same in every process sharing the store; tests pass
                a fake one.
            prune_every: Seconds between prunings after the first.
        """
        self._spec = spec
        self._store = store
        self._clock = clock
        self._prune_every = prune_every
        self._task_group: TaskGroup | None = None

    @property
    def enabled(self) -> bool:
        """Whether any limit is set."""
        return limits_set(self._spec)

    async def check(self, principal_key: str, tool: str) -> float | None:
        """Admit one call of ``principal_key`` to ``tool``, or say how long until it would be.

        Returns:
            ``None`` when the call is admitted (a token was taken from each bucket), else the
            seconds until the same call would be admitted (nothing was taken).

        Raises:
            StoreError: The database refused or could not be reached.
        """
        limits = call_limits(self._spec, tool)
        if not limits:
            return None
        buckets = [state_db.RateBucket(bucket_tool or "", limit.rate, limit.burst) for bucket_tool, limit in limits]
        return await state_db.admit_call(self._store.engine, principal_key, buckets, now=self._clock())

    async def enforce(self, principal_key: str, tool: str) -> None:
        """Admit one call, as ``check`` does, or refuse it.

        Raises:
            RateLimitedError: A bucket is empty; ``retry_after`` says for how long.
            StoreError: The database refused or could not be reached (the call is not admitted).
        """
        retry_after = await self.check(principal_key, tool)
        if retry_after is not None:
            raise RateLimitedError(tool, retry_after)

    async def prune(self) -> int:
        """Delete the buckets that are full again; how many went.

        Raises:
            StoreError: The database refused or could not be reached.
        """
        return await state_db.prune_rate_buckets(self._store.engine, now=self._clock())

    async def __aenter__(self) -> Self:
        """Prune once, then every ``prune_every`` seconds in the background.

        Raises:
            StoreError: The first pruning failed: the database is not usable.
        """
        await self.prune()
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(self._prune_periodically)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop pruning.

        Raises:
            RuntimeError: The limiter was not entered.
        """
        if self._task_group is None:
            raise RuntimeError("the shared rate limiter was not entered")
        self._task_group.cancel_scope.cancel()
        await self._task_group.__aexit__(None, None, None)
        self._task_group = None

    async def _prune_periodically(self) -> None:
        while True:
            await anyio.sleep(self._prune_every)
            try:
                await self.prune()
            except StoreError as exc:
                logger.error("rate limits: pruning the shared buckets failed: %s", exc)
