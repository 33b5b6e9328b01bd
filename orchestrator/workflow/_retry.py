"""Retries of one step's calls: the workflow package's one home of tenacity.

Temporal semantics: the wait after the n-th failure is min(max_interval, initial *
coefficient^(n-1)), optionally fully jittered; ``max_attempts`` counts the first attempt;
a ``deadline`` bounds every attempt and wait together, and a wait that would end past it is
not taken. Only failures whose class the policy lists are retried, and never one whose
outcome is unknown. Cancellation is never retried nor swallowed: the predicate below only
accepts ``AttemptFailure`` (``retry_if_not_exception_type`` would also accept a
``CancelledError``; see jd/tenacity#529).

``set_testing(True)`` makes waits instant while still counting them against deadlines, so
tests check retry counts and delays without sleeping.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, cast

import anyio
import anyio.lowlevel
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from orchestrator.errors import WorkflowError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from orchestrator.workflow._plan import RetryPolicy

__all__ = ["Attempt", "AttemptFailure", "RetryFn", "call_with_retries", "is_testing", "set_testing"]

_T = TypeVar("_T")
_testing = False


def set_testing(testing: bool) -> None:
    """Make retry waits instant (``True``) or real again (``False``); for tests only.

    Waits are still computed, reported and counted against deadlines as if they were slept.
    """
    global _testing  # one process-wide switch, as in stamina.set_testing
    _testing = testing


def is_testing() -> bool:
    """Whether retry waits are instant."""
    return _testing


class AttemptFailure(WorkflowError):
    """One attempt of a call failed.

    Attributes:
        error_class: ``transport_error``, ``timeout``, ``rate_limited``, ``mcp_error:<code>``,
            ``tool_error``, ``output_invalid``, or (never retried) ``expression_error``.
        unknown_outcome: The call may have taken effect (a non-idempotent call timed out);
            such a failure is never retried.
        server: The downstream server whose call failed, or ``None`` when no call did (an
            expression, a limit, a deadline reached before the attempt).
    """

    def __init__(
        self, error_class: str, message: str, *, unknown_outcome: bool = False, server: str | None = None
    ) -> None:
        self.error_class = error_class
        self.unknown_outcome = unknown_outcome
        self.server = server
        super().__init__(message)


class Attempt:
    """One attempt, as the called function sees it."""

    __slots__ = ("_time_left", "number")

    def __init__(self, number: int, time_left: Callable[[], float | None]) -> None:
        self.number = number
        self._time_left = time_left

    def time_left(self) -> float | None:
        """Seconds until the deadline (``None`` without one); may be zero or less."""
        return self._time_left()


class RetryFn(Protocol):
    """Told before each wait: which attempt failed, how, and how long the wait is."""

    async def __call__(self, attempt: int, failure: AttemptFailure, delay: float) -> None: ...


async def call_with_retries(
    call: Callable[[Attempt], Awaitable[_T]],
    policy: RetryPolicy | None,
    *,
    deadline_at: float | None = None,
    on_retry: RetryFn | None = None,
) -> _T:
    """Await ``call`` until it returns, retrying ``AttemptFailure``s as ``policy`` allows.

    Args:
        call: Makes one attempt; raises ``AttemptFailure`` when it fails.
        policy: How to retry; ``None`` makes exactly one attempt.
        deadline_at: ``anyio.current_time()`` after which no attempt starts and no wait ends.
        on_retry: Awaited before each wait.

    Returns:
        What the first successful attempt returned.

    Raises:
        AttemptFailure: The last failure, once no retry is allowed.
    """
    retries = _Retries(call, policy, deadline_at, on_retry)
    # Most calls succeed at once: the first attempt is made here, and tenacity (whose set-up
    # costs more per call than a fast tool does) is only asked about the attempts after it.
    try:
        return await retries.attempt()
    except AttemptFailure as failure:
        if not retries.retryable(failure):
            raise
        first_failure = failure
    return await retries.after(first_failure)


class _Retries(Generic[_T]):
    """The attempts of one call: the first made directly, the others through tenacity."""

    __slots__ = ("_attempts", "_call", "_deadline_at", "_on_retry", "_policy", "_slept")

    def __init__(
        self,
        call: Callable[[Attempt], Awaitable[_T]],
        policy: RetryPolicy | None,
        deadline_at: float | None,
        on_retry: RetryFn | None,
    ) -> None:
        self._call = call
        self._policy = policy
        self._deadline_at = deadline_at
        self._on_retry = on_retry
        self._slept = 0.0  # instant waits in testing mode, still counted towards the deadline
        self._attempts = 0

    def _now(self) -> float:
        return anyio.current_time() + self._slept

    def _time_left(self) -> float | None:
        return None if self._deadline_at is None else self._deadline_at - self._now()

    def retryable(self, exc: BaseException) -> bool:
        """Whether the policy retries ``exc`` (never a cancellation, nor an unknown outcome)."""
        policy = self._policy
        return (
            policy is not None
            and isinstance(exc, AttemptFailure)
            and not exc.unknown_outcome
            and policy.retries(exc.error_class)
        )

    async def attempt(self) -> _T:
        """Make the next attempt."""
        self._attempts += 1
        return await self._call(Attempt(self._attempts, self._time_left))

    async def after(self, first_failure: AttemptFailure) -> _T:
        """Retry as the policy allows, the first attempt having failed with ``first_failure``.

        Raises:
            AttemptFailure: The last failure, once no retry is allowed.
        """
        pending: AttemptFailure | None = first_failure

        async def attempt() -> _T:
            # Tenacity's first attempt is the one already made: it sees that failure, then
            # decides (stop, wait, before_sleep) exactly as if it had made the attempt itself.
            nonlocal pending
            if pending is not None:
                failure, pending = pending, None
                raise failure
            return await self.attempt()

        retrying = AsyncRetrying(
            sleep=self._sleep,
            stop=self._stop,
            wait=self._wait,
            retry=retry_if_exception(self.retryable),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        return cast("_T", await retrying(attempt))

    def _wait(self, state: RetryCallState) -> float:
        assert self._policy is not None  # only reached when retryable() accepted the failure
        delay = self._policy.delay(state.attempt_number)
        return random.uniform(0.0, delay) if self._policy.jitter == "full" else delay

    def _stop(self, state: RetryCallState) -> bool:
        if self._policy is None or state.attempt_number >= self._policy.max_attempts:
            return True
        return self._deadline_at is not None and self._now() + state.upcoming_sleep >= self._deadline_at

    async def _sleep(self, seconds: float) -> None:
        if _testing:
            self._slept += seconds
            await anyio.lowlevel.checkpoint()
        else:
            await anyio.sleep(seconds)

    async def _before_sleep(self, state: RetryCallState) -> None:
        if self._on_retry is not None and state.outcome is not None:
            await self._on_retry(
                state.attempt_number, cast("AttemptFailure", state.outcome.exception()), state.upcoming_sleep
            )
