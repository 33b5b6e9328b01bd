"""The circuit breaker: when it opens, how it fails fast, how it half-opens and closes."""

from __future__ import annotations

import pytest

from orchestrator.config import CircuitBreakerSpec
from orchestrator.downstream._breaker import CircuitBreaker
from orchestrator.errors import DownstreamCircuitOpen, DownstreamUnavailable


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _breaker(**settings: object) -> tuple[CircuitBreaker, _Clock]:
    clock = _Clock()
    return CircuitBreaker("db", CircuitBreakerSpec.model_validate(settings), clock), clock


def test_five_consecutive_failures_open_it_and_calls_then_fail_fast_naming_server_and_retry_time() -> None:
    breaker, _ = _breaker()
    for _ in range(4):
        assert breaker.admit() is False
        breaker.record_failure("timed out")
    assert breaker.state == "closed"
    breaker.admit()
    breaker.record_failure("timed out")
    assert breaker.state == "open"
    with pytest.raises(DownstreamCircuitOpen) as caught:
        breaker.admit()
    message = str(caught.value)
    assert "server 'db'" in message
    assert "5 consecutive failures (last: timed out)" in message
    assert "next try in 30s" in message
    assert caught.value.retry_in == pytest.approx(30.0)
    assert isinstance(caught.value, DownstreamUnavailable)


def test_a_success_resets_the_consecutive_count() -> None:
    breaker, _ = _breaker()
    for _ in range(4):
        breaker.record_failure("transport fault")
    breaker.record_success()
    for _ in range(4):
        breaker.record_failure("transport fault")
    assert breaker.state == "closed"


def test_a_high_failure_ratio_over_the_window_opens_it() -> None:
    breaker, _ = _breaker(consecutive_failures=100, window=10, min_calls=10, failure_ratio=0.5)
    for index in range(10):
        if index % 2:
            breaker.record_failure("internal error")
        else:
            breaker.record_success()
    assert breaker.state == "open"
    assert "5 of the last 10 calls failed" in (breaker.snapshot().reason or "")


def test_the_ratio_needs_min_calls() -> None:
    breaker, _ = _breaker(consecutive_failures=100, window=20, min_calls=10, failure_ratio=0.5)
    for _ in range(3):
        breaker.record_failure("timed out")
    assert breaker.state == "closed"


def test_after_the_open_period_one_trial_goes_through_and_success_closes_it() -> None:
    breaker, clock = _breaker(consecutive_failures=1, open_for="10s")
    breaker.record_failure("timed out")
    clock.now += 10
    assert breaker.state == "half_open"
    assert breaker.admit() is True
    with pytest.raises(DownstreamCircuitOpen, match="a trial call is in flight"):
        breaker.admit()
    breaker.record_success(trial=True)
    assert breaker.state == "closed"
    assert breaker.admit() is False


def test_a_failed_trial_reopens_it_for_twice_as_long_up_to_the_cap() -> None:
    breaker, clock = _breaker(consecutive_failures=1, open_for="10s", max_open_for="25s")
    breaker.record_failure("timed out")
    periods: list[float] = []
    for _ in range(3):
        retry_in = breaker.snapshot().retry_in
        assert retry_in is not None
        periods.append(retry_in)
        clock.now += retry_in
        assert breaker.admit() is True
        breaker.record_failure("timed out", trial=True)
    assert periods == [pytest.approx(10.0), pytest.approx(20.0), pytest.approx(25.0)]


def test_a_cancelled_trial_lets_the_next_call_try() -> None:
    breaker, clock = _breaker(consecutive_failures=1, open_for="1s")
    breaker.record_failure("timed out")
    clock.now += 1
    assert breaker.admit() is True
    breaker.release_trial()
    assert breaker.admit() is True


def test_disabled_never_opens() -> None:
    breaker, _ = _breaker(enabled=False, consecutive_failures=1)
    for _ in range(50):
        assert breaker.admit() is False
        breaker.record_failure("timed out")
    assert breaker.admit() is False


def test_inconsistent_settings_are_a_config_error() -> None:
    with pytest.raises(ValueError, match="min_calls cannot exceed window"):
        CircuitBreakerSpec.model_validate({"window": 5, "min_calls": 10})
