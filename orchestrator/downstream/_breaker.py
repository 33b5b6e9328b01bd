"""A circuit breaker per downstream server, after Envoy's outlier detection.

Closed, it lets every call through and remembers how the recent ones ended. Too many
consecutive failures, or too high a share of failures among the last calls, open it: calls
then fail at once with ``DownstreamCircuitOpen``, naming the server and when it will try
again. When the open period ends, one trial call goes through (half-open): success closes
the breaker, failure opens it again for twice as long, up to a cap.

Only faults that say the server itself is in trouble count as failures (transport faults,
timeouts, JSON-RPC internal errors); a tool's own error result is an answer, not a fault.
Pure state with an injectable clock: no I/O, no tasks.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from orchestrator.errors import DownstreamCircuitOpen

if TYPE_CHECKING:
    from collections.abc import Callable

    from orchestrator.config import CircuitBreakerSpec

__all__ = ["BreakerSnapshot", "BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """What the breaker is doing now, for status pages."""

    state: BreakerState
    retry_in: float | None
    reason: str | None
    openings: int


class CircuitBreaker:
    """Decides whether a call may be sent to one server, from how the recent calls ended."""

    def __init__(self, server: str, spec: CircuitBreakerSpec, clock: Callable[[], float] = time.monotonic) -> None:
        self._server = server
        self._spec = spec
        self._clock = clock
        self._state: BreakerState = "closed"
        self._recent: deque[bool] = deque(maxlen=spec.window)  # True: failed
        self._consecutive_failures = 0
        self._consecutive_successes = 0
        self._openings = 0
        self._open_until = 0.0
        self._trial_in_flight = False
        self._reason: str | None = None

    @property
    def state(self) -> BreakerState:
        """``closed``, ``open`` or ``half_open`` (an open breaker whose period has ended reads half-open)."""
        if self._state == "open" and self._clock() >= self._open_until:
            return "half_open"
        return self._state

    def snapshot(self) -> BreakerSnapshot:
        """The breaker's state, the seconds until it tries again (when open) and why it opened."""
        state = self.state
        retry_in = max(0.0, self._open_until - self._clock()) if state == "open" else None
        return BreakerSnapshot(state=state, retry_in=retry_in, reason=self._reason, openings=self._openings)

    def admit(self) -> bool:
        """Let a call through, or refuse it.

        Returns:
            Whether the call is the half-open trial; its outcome decides the breaker's state.

        Raises:
            DownstreamCircuitOpen: The breaker is open, or half-open with its trial in flight.
        """
        if not self._spec.enabled:
            return False
        state = self.state
        if state == "closed":
            return False
        if state == "half_open" and not self._trial_in_flight:
            self._state = "half_open"
            self._trial_in_flight = True
            return True
        retry_in = max(0.0, self._open_until - self._clock())
        if state == "half_open":
            when = "a trial call is in flight"
        else:
            when = f"next try in {retry_in:.0f}s" if retry_in >= 1 else "next try in under a second"
        raise DownstreamCircuitOpen(
            self._server, f"circuit open after {self._reason}; failing fast, {when}", retry_in=retry_in
        )

    def record_success(self, *, trial: bool = False) -> None:
        """A call got an answer from the server."""
        if trial:
            self._trial_in_flight = False
            self._close()
        self._recent.append(False)
        self._consecutive_failures = 0
        self._consecutive_successes += 1
        if self._consecutive_successes >= self._spec.window:
            self._openings = 0  # a long healthy stretch forgets past trouble

    def record_failure(self, what: str, *, trial: bool = False) -> None:
        """A call failed in a way that says the server is in trouble (``what`` says how)."""
        self._recent.append(True)
        self._consecutive_failures += 1
        self._consecutive_successes = 0
        if trial:
            self._trial_in_flight = False
            self._open(f"a failed trial call ({what})")
            return
        if not self._spec.enabled or self._state != "closed":
            return
        if self._consecutive_failures >= self._spec.consecutive_failures:
            self._open(f"{self._consecutive_failures} consecutive failures (last: {what})")
            return
        failed = sum(self._recent)
        if len(self._recent) >= self._spec.min_calls and failed / len(self._recent) >= self._spec.failure_ratio:
            self._open(f"{failed} of the last {len(self._recent)} calls failed (last: {what})")

    def release_trial(self) -> None:
        """The trial call ended without an outcome (it was cancelled): let another one try."""
        self._trial_in_flight = False

    def _open(self, reason: str) -> None:
        self._openings += 1
        period = min(self._spec.max_open_for, self._spec.open_for * 2 ** (self._openings - 1))
        self._state = "open"
        self._open_until = self._clock() + period
        self._reason = reason

    def _close(self) -> None:
        self._state = "closed"
        self._reason = None
        self._recent.clear()
        self._consecutive_failures = 0
