"""Plain-call retries: which faults are retried, and the budget that caps their extra load."""

from __future__ import annotations

import random

import anyio
import pytest

from orchestrator.config import RetrySpec
from orchestrator.downstream._retry import RetryBudget, call_with_retries, is_retryable_fault
from orchestrator.errors import (
    DownstreamCircuitOpen,
    DownstreamNotConnected,
    DownstreamTimeout,
    DownstreamToolError,
    DownstreamUnavailable,
)

pytestmark = pytest.mark.anyio


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_transport_faults_are_retried_but_not_unreached_servers_tool_errors_or_plain_timeouts() -> None:
    assert is_retryable_fault(DownstreamUnavailable("s", "connection lost"), timeouts=False)
    assert not is_retryable_fault(DownstreamNotConnected("s", "not connected"), timeouts=True)
    assert not is_retryable_fault(DownstreamCircuitOpen("s", "open", 3.0), timeouts=True)
    assert not is_retryable_fault(DownstreamToolError("s", "bad", -32602), timeouts=True)
    assert not is_retryable_fault(DownstreamTimeout("s", "slow", 1.0), timeouts=False)
    assert is_retryable_fault(DownstreamTimeout("s", "slow", 1.0), timeouts=True)


def test_under_half_failures_over_2000_calls_retries_add_at_most_20_percent_plus_the_floor() -> None:
    clock = _Clock()
    budget = RetryBudget(ratio=0.2, min_retries=3, window=10.0, clock=clock)
    rng = random.Random(7)
    calls = retries = 0
    for _ in range(2000):
        clock.now += 0.01  # 100 calls a second: 1000 calls per 10 s window
        budget.record_call()
        calls += 1
        failed = rng.random() < 0.5
        while failed and budget.try_spend():
            retries += 1
            failed = rng.random() < 0.5
    windows = 2000 * 0.01 / 10.0
    assert retries <= 0.2 * calls + 3 * windows + 3
    assert retries >= 0.15 * calls  # the budget is used, not starved


def test_a_quiet_server_still_gets_its_floor_of_retries() -> None:
    clock = _Clock()
    budget = RetryBudget(ratio=0.2, min_retries=3, clock=clock)
    budget.record_call()
    assert [budget.try_spend() for _ in range(4)] == [True, True, True, False]
    clock.now += 10.5
    assert budget.try_spend()


async def test_a_transport_fault_is_retried_once_and_the_second_attempt_answers() -> None:
    attempts: list[float] = []
    waited: list[float] = []

    async def attempt(limit: float) -> str:
        attempts.append(limit)
        if len(attempts) == 1:
            raise DownstreamUnavailable("s", "connection lost during tools/call")
        return "ok"

    async def before_retry(left: float) -> None:
        waited.append(left)

    budget = RetryBudget(0.2, 3)
    with anyio.fail_after(5):
        result = await call_with_retries(
            "s", attempt, spec=RetrySpec(), timeout=30, budget=budget, before_retry=before_retry
        )
    assert result == "ok"
    assert len(attempts) == 2
    assert len(waited) == 1
    assert 29 < waited[0] <= 30


async def test_max_attempts_bounds_the_tries_and_the_last_error_comes_back() -> None:
    count = 0

    async def attempt(limit: float) -> str:
        nonlocal count
        count += 1
        raise DownstreamUnavailable("s", f"fault {count}")

    async def before_retry(left: float) -> None:
        return None

    with anyio.fail_after(5), pytest.raises(DownstreamUnavailable, match="fault 3"):
        await call_with_retries(
            "s",
            attempt,
            spec=RetrySpec(max_attempts=3),
            timeout=30,
            budget=RetryBudget(1.0, 10),
            before_retry=before_retry,
        )
    assert count == 3


async def test_a_spent_budget_stops_retries() -> None:
    count = 0

    async def attempt(limit: float) -> str:
        nonlocal count
        count += 1
        raise DownstreamUnavailable("s", "fault")

    async def before_retry(left: float) -> None:
        return None

    with anyio.fail_after(5), pytest.raises(DownstreamUnavailable):
        await call_with_retries(
            "s", attempt, spec=RetrySpec(), timeout=30, budget=RetryBudget(0.0, 0), before_retry=before_retry
        )
    assert count == 1


async def test_with_a_per_try_timeout_each_attempt_gets_that_limit_and_timeouts_are_retried() -> None:
    limits: list[float] = []

    async def attempt(limit: float) -> str:
        limits.append(limit)
        if len(limits) == 1:
            raise DownstreamTimeout("s", "slow", limit)
        return "ok"

    async def before_retry(left: float) -> None:
        return None

    with anyio.fail_after(5):
        result = await call_with_retries(
            "s",
            attempt,
            spec=RetrySpec(per_try_timeout=2.0),
            timeout=30,
            budget=RetryBudget(0.2, 3),
            before_retry=before_retry,
        )
    assert result == "ok"
    assert limits == [2.0, 2.0]


async def test_non_retryable_errors_are_raised_at_once() -> None:
    count = 0

    async def attempt(limit: float) -> str:
        nonlocal count
        count += 1
        raise DownstreamToolError("s", "invalid params", -32602)

    async def before_retry(left: float) -> None:
        return None

    with anyio.fail_after(5), pytest.raises(DownstreamToolError):
        await call_with_retries(
            "s", attempt, spec=RetrySpec(), timeout=30, budget=RetryBudget(0.2, 3), before_retry=before_retry
        )
    assert count == 1
