"""Per-server resilience settings: health probes, the circuit breaker, retries of plain calls.

Each is a section of a server entry, with defaults that suit a local tool: probe an idle
server every 30 s, open the breaker after 5 consecutive failures (or half of the last 20
calls failing), retry a read-only or idempotent tool once on a transport fault, within a
budget of 20 % extra calls.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.config._duration import Seconds

__all__ = ["CircuitBreakerSpec", "HealthSpec", "RetrySpec"]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HealthSpec(_Section):
    """How a connected server is probed, and what happens to its tools when it is unhealthy."""

    interval: Seconds = Field(
        default=30.0, description="Probe a server this long after its last activity (ping or server/discover)."
    )
    timeout: Seconds = Field(
        default=10.0,
        description="A probe's time limit; also how long a lost server may take to come back before it is unhealthy.",
    )
    failures: int = Field(default=2, ge=1, le=100, description="Consecutive failed probes that make it unhealthy.")
    on_unhealthy: Literal["withdraw", "keep"] = Field(
        default="withdraw",
        description="withdraw: its tools leave the list (with list_changed) until it recovers; keep: they stay.",
    )
    enabled: bool = Field(default=True, description="false: never probe (a lost connection still counts).")


class CircuitBreakerSpec(_Section):
    """When calls to a failing server stop being sent, and for how long (Envoy's outlier detection)."""

    enabled: bool = Field(default=True, description="false: never open the breaker.")
    consecutive_failures: int = Field(
        default=5, ge=1, le=1000, description="Consecutive failed calls (transport faults, timeouts) that open it."
    )
    failure_ratio: float = Field(
        default=0.5, gt=0, le=1, description="Share of failed calls among the last `window` that opens it."
    )
    window: int = Field(default=20, ge=2, le=10000, description="How many recent calls the ratio looks at.")
    min_calls: int = Field(default=10, ge=1, le=10000, description="Fewest recent calls before the ratio counts.")
    open_for: Seconds = Field(default=30.0, description="First open period; each re-opening doubles it.")
    max_open_for: Seconds = Field(default=300.0, description="Longest open period.")

    @model_validator(mode="after")
    def _consistent(self) -> CircuitBreakerSpec:
        if self.min_calls > self.window:
            raise ValueError("min_calls cannot exceed window")
        if self.max_open_for < self.open_for:
            raise ValueError("max_open_for cannot be shorter than open_for")
        return self


class RetrySpec(_Section):
    """Retries of plain proxied calls (not workflow steps, which have their own `retry`).

    Only tools the server annotates ``readOnlyHint`` or ``idempotentHint`` are retried, only
    after a transport fault or a per-try timeout, within the call's timeout and the budget.
    """

    max_attempts: int = Field(default=2, ge=1, le=10, description="Attempts per call in all; 1 never retries.")
    per_try_timeout: Seconds | None = Field(
        default=None,
        description="Limit of one attempt; a timed-out attempt is retried. Default: the call's whole timeout.",
    )
    reconnect_wait: Seconds = Field(
        default=5.0, description="How long a retry waits for a server that died mid-call to be connected again."
    )
    budget_ratio: float = Field(
        default=0.2, ge=0, le=1, description="Retries may add at most this share of calls over 10 s (plus min_retries)."
    )
    min_retries: int = Field(
        default=3, ge=0, le=1000, description="Retries always allowed per 10 s, whatever the ratio."
    )
