"""Retries in the downstream layer: the one home of tenacity here.

Two kinds. Reconnects of supervised connections wait with capped, fully jittered
exponential back-off and never give up: a server that is down for an hour is tried again,
at most every ``max_delay`` seconds. Plain proxied calls to read-only or idempotent tools
are retried after a transport fault, within the call's timeout and a retry budget.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

import anyio
from tenacity import (
    AsyncRetrying,
    AttemptManager,
    RetryCallState,
    retry_if_exception,
    retry_if_exception_type,
    stop_after_attempt,
    stop_any,
    stop_never,
    wait_random_exponential,
)
from tenacity.stop import stop_base

from orchestrator.errors import (
    DownstreamCircuitOpen,
    DownstreamNotConnected,
    DownstreamTimeout,
    DownstreamUnavailable,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from orchestrator.config import RetrySpec

__all__ = ["BackoffPolicy", "RetryBudget", "call_with_retries", "is_retryable_fault", "reconnect_attempts"]

_T = TypeVar("_T")

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """How a supervised server is retried after it failed to start or died.

    Attributes:
        initial_delay: Scale of the first wait, in seconds (the wait is uniform in [0, scale]).
        max_delay: Cap of any single wait, in seconds.
        stable_after: Seconds a connection must stay healthy before the back-off resets.
    """

    initial_delay: float = 0.5
    max_delay: float = 30.0
    stable_after: float = 10.0


async def reconnect_attempts(server: str, policy: BackoffPolicy) -> AsyncIterator[AttemptManager]:
    """Yield attempt contexts until one finishes without ``DownstreamUnavailable``.

    Other exceptions (and cancellation) propagate at once and end the iteration.
    """
    retrying = AsyncRetrying(
        stop=stop_never,
        wait=wait_random_exponential(multiplier=policy.initial_delay, max=policy.max_delay),
        retry=retry_if_exception_type(DownstreamUnavailable),
        reraise=True,
        before_sleep=lambda state: logger.warning(
            "server %r unavailable (attempt %d): %s; retrying in %.1fs",
            server,
            state.attempt_number,
            state.outcome.exception() if state.outcome else "",
            state.next_action.sleep if state.next_action else 0.0,
        ),
    )
    async for attempt in retrying:
        yield attempt


# ------------------------------------------------------------ plain-call retries


class RetryBudget:
    """Caps retries at a share of the calls of the last ``window`` seconds, plus a floor.

    Linkerd's budget: retries may add ``ratio`` of the recent calls (20 % by default), and
    ``min_retries`` in any window, so a quiet server can still retry its rare faults while a
    failing one is not hammered with retries on top of its load.
    """

    def __init__(
        self, ratio: float, min_retries: int, window: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ratio = ratio
        self._min_retries = min_retries
        self._window = window
        self._clock = clock
        self._calls: deque[float] = deque()
        self._retries: deque[float] = deque()

    def record_call(self) -> None:
        """A call was made (its first attempt)."""
        self._calls.append(self._clock())

    def try_spend(self) -> bool:
        """Take one retry from the budget; ``False`` when it is spent."""
        now = self._clock()
        for times in (self._calls, self._retries):
            while times and times[0] <= now - self._window:
                times.popleft()
        if len(self._retries) >= self._min_retries + int(self._ratio * len(self._calls)):
            return False
        self._retries.append(now)
        return True


def is_retryable_fault(exc: BaseException, *, timeouts: bool) -> bool:
    """Whether a plain call that failed with ``exc`` may be tried again.

    Transport faults during the call qualify; a server that was not connected or whose
    breaker is open was never reached, so trying again at once would fail the same way.
    A timeout qualifies only when attempts have their own, shorter limit (``timeouts``).
    """
    if isinstance(exc, DownstreamNotConnected | DownstreamCircuitOpen):
        return False
    if isinstance(exc, DownstreamUnavailable):
        return True
    return timeouts and isinstance(exc, DownstreamTimeout)


class _StopWhen(stop_base):
    """A tenacity stop condition from a plain predicate."""

    def __init__(self, predicate: Callable[[RetryCallState], bool]) -> None:
        self._predicate = predicate

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self._predicate(retry_state)


async def call_with_retries(
    server: str,
    attempt: Callable[[float], Awaitable[_T]],
    *,
    spec: RetrySpec,
    timeout: float,
    budget: RetryBudget,
    before_retry: Callable[[float], Awaitable[None]],
) -> _T:
    """Run ``attempt(limit)`` until it succeeds, or a retry is not allowed.

    Attempts wait 25 ms to 250 ms apart (fully jittered, as Envoy's). Every attempt fits in
    ``timeout`` from the start: a retry that could not start before it does not start.

    Args:
        server: The server's key, for log lines.
        attempt: One try, given its time limit in seconds.
        spec: The server's retry settings.
        timeout: The whole call's time limit, retries included.
        budget: The server's retry budget; every retry spends one.
        before_retry: Awaited before each retry with the time left, e.g. to wait for a
            restarted server to be connected again.

    Raises:
        DownstreamError: The last attempt's error, when no retry is allowed.
    """
    deadline = anyio.current_time() + timeout
    budget.record_call()

    def left() -> float:
        return deadline - anyio.current_time()

    def out_of_time(state: RetryCallState) -> bool:
        upcoming = state.upcoming_sleep
        return left() - upcoming <= 0

    def budget_spent(state: RetryCallState) -> bool:
        # Consulted last: a retry that would stop for another reason spends nothing.
        if budget.try_spend():
            return False
        logger.info("server %r: retry budget spent; not retrying", server)
        return True

    retrying = AsyncRetrying(
        stop=stop_any(stop_after_attempt(spec.max_attempts), _StopWhen(out_of_time), _StopWhen(budget_spent)),
        wait=wait_random_exponential(multiplier=0.025, max=0.25),
        retry=retry_if_exception(lambda exc: is_retryable_fault(exc, timeouts=spec.per_try_timeout is not None)),
        reraise=True,
        before_sleep=lambda state: logger.info(
            "server %r: retrying a call after %s (attempt %d)",
            server,
            type(state.outcome.exception()).__name__ if state.outcome else "a fault",
            state.attempt_number + 1,
        ),
    )
    async for try_ in retrying:
        with try_:
            if try_.retry_state.attempt_number > 1:
                await before_retry(left())
            first = try_.retry_state.attempt_number == 1
            whole = timeout if first else left()  # the first attempt may use the whole timeout, as set
            limit = whole if spec.per_try_timeout is None else min(spec.per_try_timeout, whole)
            return await attempt(max(round(limit, 3), 0.001))
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover
