"""Rate limits of calls: token buckets per principal, and per principal and tool.

``RateLimiter`` is pure bookkeeping in memory: no I/O and no awaits, so a check is atomic
under anyio; a lock makes it safe from worker threads too. Its buckets are this process's
own; several processes serving together (``serve --workers``, replicas on PostgreSQL) share
theirs through the store instead (``SharedRateLimiter``), or through Redis where
``state.redis_url`` says (``RedisRateLimiter``). The server sees each as a ``CallLimiter``.

Does not: decide who the principal is (the HTTP edge does), or turn a refusal into a tool
result (``orchestrator.server`` does, from ``RateLimitedError``).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from orchestrator.errors import RateLimitedError

if TYPE_CHECKING:
    from collections.abc import Callable

    from orchestrator.config import RateLimitSpec, RateLimitsSpec

__all__ = ["DEFAULT_MAX_BUCKETS", "CallLimiter", "InProcessLimiter", "RateLimiter", "call_limits", "limits_set"]

DEFAULT_MAX_BUCKETS = 10_000
"""Buckets kept at most; past it, the least recently used go (their owners start afresh with a full burst)."""

_SWEEP_EVERY = 60.0
"""Seconds between sweeps of the buckets that have filled up again (and so hold nothing worth keeping)."""


class CallLimiter(Protocol):
    """What the server asks before each call of a principal: may it go now?"""

    async def enforce(self, principal_key: str, tool: str) -> None:
        """Admit one call of ``principal_key`` to ``tool`` (taking its tokens), or refuse it.

        Raises:
            RateLimitedError: A bucket is empty; ``retry_after`` says for how long.
            StoreError: The limiter keeps its buckets in the store and cannot reach it.
            RateLimitsUnavailable: The limiter keeps its buckets in Redis and cannot use it.
        """
        ...


def limits_set(spec: RateLimitsSpec) -> bool:
    """Whether ``spec`` sets any limit."""
    return spec.per_principal is not None or spec.per_tool is not None or bool(spec.tools)


def call_limits(spec: RateLimitsSpec, tool: str) -> list[tuple[str | None, RateLimitSpec]]:
    """The buckets a call to ``tool`` takes a token from, as (tool, limit): ``None`` for the principal's own.

    The principal's (``per_principal``) and the principal's for the tool (``tools[tool]``,
    else ``per_tool``); unset limits do not apply.
    """
    tool_limit = spec.tools.get(tool, spec.per_tool)
    limits: list[tuple[str | None, RateLimitSpec]] = []
    if spec.per_principal is not None:
        limits.append((None, spec.per_principal))
    if tool_limit is not None:
        limits.append((tool, tool_limit))
    return limits


@dataclass(slots=True)
class _Bucket:
    limit: RateLimitSpec
    tokens: float
    updated: float

    def refill(self, now: float) -> None:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(float(self.limit.burst), self.tokens + elapsed * self.limit.rate)
        self.updated = now

    def full_at(self, now: float) -> bool:
        """Whether the bucket is full by ``now``: then it is the same as a fresh one."""
        return self.tokens + max(0.0, now - self.updated) * self.limit.rate >= self.limit.burst

    def wait(self) -> float:
        """Seconds until one token is there (0 when one is)."""
        return max(0.0, (1.0 - self.tokens) / self.limit.rate)


_Key = tuple[str, str | None]
"""(principal key, tool): ``None`` for the principal's own bucket."""


class RateLimiter:
    """Token buckets for the calls of each principal, in all and to each tool.

    A call is admitted when every bucket that applies to it holds a token: the principal's
    (``per_principal``) and the principal's for that tool (``tools[name]``, else
    ``per_tool``). Tokens are taken only when all of them allow, so a refused call costs
    nothing. Unset limits do not apply; with none set every call is admitted.

    Memory stays bounded: buckets that have filled up again are dropped (a fresh bucket is
    full, so nothing is forgotten), and past ``max_buckets`` the least recently used go.
    """

    def __init__(
        self,
        spec: RateLimitsSpec,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = DEFAULT_MAX_BUCKETS,
    ) -> None:
        """Limit calls as ``spec`` says.

        Args:
            spec: The limits (``serve.rate_limits``).
            clock: Seconds, monotonic; tests pass a fake one.
            max_buckets: Buckets kept at most.

        Raises:
            ValueError: ``max_buckets`` is less than 2 (one call may need two buckets).
        """
        if max_buckets < 2:
            raise ValueError("max_buckets must be at least 2")
        self._spec = spec
        self._clock = clock
        self._max_buckets = max_buckets
        self._buckets: OrderedDict[_Key, _Bucket] = OrderedDict()
        self._lock = threading.Lock()
        self._last_sweep = clock()

    @property
    def enabled(self) -> bool:
        """Whether any limit is set."""
        return limits_set(self._spec)

    def __len__(self) -> int:
        """How many buckets are kept now."""
        return len(self._buckets)

    def check(self, principal_key: str, tool: str) -> float | None:
        """Admit one call of ``principal_key`` to ``tool``, or say how long until it would be.

        Args:
            principal_key: ``Principal.key`` of the caller.
            tool: The exposed name of the tool (or composite) called.

        Returns:
            ``None`` when the call is admitted (a token was taken from each bucket), else the
            seconds until the same call would be admitted (nothing was taken).
        """
        limits = call_limits(self._spec, tool)
        if not limits:
            return None
        with self._lock:
            now = self._clock()
            self._sweep(now)
            buckets = [self._bucket((principal_key, bucket_tool), limit, now) for bucket_tool, limit in limits]
            wait = max(bucket.wait() for bucket in buckets)
            if wait > 0:
                return wait
            for bucket in buckets:
                bucket.tokens -= 1.0
            return None

    def enforce(self, principal_key: str, tool: str) -> None:
        """Admit one call, as ``check`` does, or refuse it.

        Raises:
            RateLimitedError: A bucket is empty; ``retry_after`` says for how long.
        """
        retry_after = self.check(principal_key, tool)
        if retry_after is not None:
            raise RateLimitedError(tool, retry_after)

    def _bucket(self, key: _Key, limit: RateLimitSpec, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            while len(self._buckets) >= self._max_buckets:
                self._buckets.popitem(last=False)
            bucket = self._buckets[key] = _Bucket(limit, float(limit.burst), now)
        else:
            self._buckets.move_to_end(key)
            bucket.refill(now)
        return bucket

    def _sweep(self, now: float) -> None:
        """Drop the buckets that are full again, once a minute (the cap is kept by ``_bucket``)."""
        if now - self._last_sweep < _SWEEP_EVERY:
            return
        self._last_sweep = now
        for key in [key for key, bucket in self._buckets.items() if bucket.full_at(now)]:
            del self._buckets[key]


class InProcessLimiter:
    """A ``RateLimiter`` as a ``CallLimiter``: this process's buckets, checked without waiting."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter

    async def enforce(self, principal_key: str, tool: str) -> None:
        """Admit one call, or refuse it (``RateLimiter.enforce``).

        Raises:
            RateLimitedError: A bucket is empty; ``retry_after`` says for how long.
        """
        self.limiter.enforce(principal_key, tool)
