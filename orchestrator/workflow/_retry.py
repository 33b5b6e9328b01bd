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
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

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
    slept = 0.0  # instant waits in testing mode, still counted towards the deadline
    attempts = 0

    def now() -> float:
        return anyio.current_time() + slept

    def time_left() -> float | None:
        return None if deadline_at is None else deadline_at - now()

    def retryable(exc: BaseException) -> bool:
        return (
            policy is not None
            and isinstance(exc, AttemptFailure)
            and not exc.unknown_outcome
            and policy.retries(exc.error_class)
        )

    def wait(state: RetryCallState) -> float:
        assert policy is not None  # only reached when retryable() accepted the failure
        delay = policy.delay(state.attempt_number)
        return random.uniform(0.0, delay) if policy.jitter == "full" else delay

    def stop(state: RetryCallState) -> bool:
        if policy is None or state.attempt_number >= policy.max_attempts:
            return True
        return deadline_at is not None and now() + state.upcoming_sleep >= deadline_at

    async def sleep(seconds: float) -> None:
        nonlocal slept
        if _testing:
            slept += seconds
            await anyio.lowlevel.checkpoint()
        else:
            await anyio.sleep(seconds)

    async def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            await on_retry(
                state.attempt_number, cast("AttemptFailure", state.outcome.exception()), state.upcoming_sleep
            )

    async def attempt() -> _T:
        nonlocal attempts
        attempts += 1
        return await call(Attempt(attempts, time_left))

    retrying = AsyncRetrying(
        sleep=sleep,
        stop=stop,
        wait=wait,
        retry=retry_if_exception(retryable),
        before_sleep=before_sleep,
        reraise=True,
    )
    return cast("_T", await retrying(attempt))
