"""Rate limits: token buckets per principal and per tool, on a fake clock (no sleeping)."""

from __future__ import annotations

import threading

import pytest

from orchestrator.auth import RateLimiter
from orchestrator.config import RateLimitSpec, RateLimitsSpec
from orchestrator.errors import RateLimitedError
from orchestrator.server._errors import ERROR_META_KEY, tool_error_result


class FakeClock:
    """Seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _calls(limiter: RateLimiter, principal: str, tool: str, count: int) -> list[float | None]:
    return [limiter.check(principal, tool) for _ in range(count)]


def test_a_burst_is_admitted_then_refused_with_the_wait_then_admitted_again() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitsSpec(per_principal=RateLimitSpec(rate=2, burst=3)), clock=clock)

    assert _calls(limiter, "alice", "t", 3) == [None, None, None]
    assert limiter.check("alice", "t") == pytest.approx(0.5)  # 2 per second: one token in 0.5 s

    clock.advance(0.4)
    assert limiter.check("alice", "t") == pytest.approx(0.1)
    clock.advance(0.1)
    assert limiter.check("alice", "t") is None
    assert limiter.check("alice", "t") == pytest.approx(0.5)

    clock.advance(60)  # refills up to the burst, not beyond
    assert _calls(limiter, "alice", "t", 4) == [None, None, None, pytest.approx(0.5)]


def test_principals_have_their_own_buckets() -> None:
    limiter = RateLimiter(RateLimitsSpec(per_principal=RateLimitSpec(rate=1, burst=1)), clock=FakeClock())

    assert limiter.check("alice", "t") is None
    assert limiter.check("alice", "t") is not None
    assert limiter.check("bob", "t") is None


def test_per_tool_limits_each_tool_apart_and_a_named_tool_has_its_own_limit() -> None:
    clock = FakeClock()
    spec = RateLimitsSpec(
        per_tool=RateLimitSpec(rate=1, burst=2),
        tools={"db__query": RateLimitSpec(rate=0.1, burst=1)},
    )
    limiter = RateLimiter(spec, clock=clock)

    assert _calls(limiter, "alice", "a", 3) == [None, None, pytest.approx(1.0)]
    assert _calls(limiter, "alice", "b", 2) == [None, None]  # another tool: another bucket
    assert _calls(limiter, "alice", "db__query", 2) == [None, pytest.approx(10.0)]  # the override, not per_tool

    clock.advance(1.0)
    assert limiter.check("alice", "a") is None
    assert limiter.check("alice", "db__query") == pytest.approx(9.0)


def test_a_refused_call_takes_no_token_from_the_bucket_that_allowed_it() -> None:
    clock = FakeClock()
    spec = RateLimitsSpec(per_principal=RateLimitSpec(rate=1, burst=3), tools={"slow": RateLimitSpec(rate=1, burst=1)})
    limiter = RateLimiter(spec, clock=clock)

    assert limiter.check("alice", "slow") is None  # principal 2 left, tool "slow" empty
    for _ in range(5):  # refused by the tool's bucket: the principal's keeps its two tokens
        assert limiter.check("alice", "slow") == pytest.approx(1.0)
    assert _calls(limiter, "alice", "other", 3) == [None, None, pytest.approx(1.0)]  # refused by the principal's


def test_the_wait_is_the_longer_of_the_two_buckets() -> None:
    clock = FakeClock()
    spec = RateLimitsSpec(per_principal=RateLimitSpec(rate=0.5, burst=1), per_tool=RateLimitSpec(rate=0.25, burst=1))
    limiter = RateLimiter(spec, clock=clock)

    assert limiter.check("alice", "t") is None
    assert limiter.check("alice", "t") == pytest.approx(4.0)
    clock.advance(2.0)  # the principal's bucket is full again, the tool's is not
    assert limiter.check("alice", "t") == pytest.approx(2.0)


def test_without_limits_every_call_is_admitted_and_nothing_is_kept() -> None:
    limiter = RateLimiter(RateLimitsSpec(), clock=FakeClock())

    assert not limiter.enabled
    assert _calls(limiter, "alice", "t", 1000) == [None] * 1000
    assert len(limiter) == 0


def test_buckets_that_filled_up_again_are_dropped() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitsSpec(per_principal=RateLimitSpec(rate=1, burst=5)), clock=clock)
    for index in range(100):
        limiter.check(f"p{index}", "t")
    assert len(limiter) == 100

    clock.advance(0.5)
    limiter.check("late", "t")
    clock.advance(60)  # the first hundred are full again; "late" too
    limiter.check("busy", "t")
    limiter.check("busy", "t")
    assert len(limiter) == 1  # only the one just used

    # Dropping a full bucket forgets nothing: the principal starts with the same full burst.
    assert _calls(limiter, "p0", "t", 6) == [None] * 5 + [pytest.approx(1.0)]


def test_the_number_of_buckets_is_capped_and_the_least_recently_used_go() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitsSpec(per_principal=RateLimitSpec(rate=0.001, burst=1)), clock=clock, max_buckets=50)
    for index in range(1000):
        assert limiter.check(f"p{index}", "t") is None
        assert len(limiter) <= 50
    assert limiter.check("p999", "t") is not None  # recent: still limited
    assert limiter.check("p0", "t") is None  # evicted long ago: a fresh bucket


def test_threads_checking_at_once_are_admitted_exactly_the_burst() -> None:
    limiter = RateLimiter(RateLimitsSpec(per_principal=RateLimitSpec(rate=1e-9, burst=500)), clock=FakeClock())
    admitted: list[int] = []
    start = threading.Barrier(8)

    def caller() -> None:
        start.wait(timeout=10)
        admitted.append(sum(limiter.check("alice", "t") is None for _ in range(2000)))

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sum(admitted) == 500


def test_enforce_raises_an_error_that_the_wire_reports_with_its_retry_time() -> None:
    clock = FakeClock()
    limiter = RateLimiter(RateLimitsSpec(per_tool=RateLimitSpec(rate=0.4, burst=1)), clock=clock)
    limiter.enforce("alice", "tickets__search")

    with pytest.raises(RateLimitedError) as caught:
        limiter.enforce("alice", "tickets__search")

    assert caught.value.tool == "tickets__search"
    assert caught.value.retry_after == pytest.approx(2.5)
    assert str(caught.value) == "rate limit reached for tool 'tickets__search': retry in 2.5 s"
    result = tool_error_result(caught.value)
    assert result.is_error
    assert result.meta is not None
    assert result.meta[ERROR_META_KEY] == {"type": "RateLimitedError", "server": None, "retry_after": 2.5}


def test_the_retry_time_told_is_never_shorter_than_the_wait() -> None:
    error = RateLimitedError("t", 0.123456)
    assert "retry in 0.2 s" in str(error)
    result = tool_error_result(error)
    assert result.meta is not None
    assert result.meta[ERROR_META_KEY]["retry_after"] == 0.124
    assert "retry in 0.1 s" in str(RateLimitedError("t", 0.0001))
