"""``analytics``: "live" service metrics and error signatures, synthetic but fully deterministic.

Owns the ``query_metrics`` and ``top_errors`` tools. Every value is a pure function of
(service, metric, timestamp): a per-service baseline, a daily cycle, SHA-256-seeded noise
and a few anomaly windows that match the incidents in ``examples/data/incidents.sqlite``
(checkout's ongoing INC-1014 shows as a latency and error spike from 07:55Z). Time never
comes from the wall clock: windows end at the fixed reference time 2026-11-20T12:00:00Z.

``ANALYTICS_FLAKY=N`` in the environment makes the first N ``query_metrics`` calls of the
process fail with a tool error, for retry demos.

Run from the repository root::

    python -m examples.servers.analytics                      # stdio
    ANALYTICS_FLAKY=2 python -m examples.servers.analytics    # first two query_metrics calls fail
    python -m examples.servers.analytics --transport http --port 8702
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from examples.servers._cli import run_server

__all__ = ["FLAKY_ENV", "REFERENCE_TIME", "SERVICES", "build_server", "main", "metric_value"]

REFERENCE_TIME = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FLAKY_ENV = "ANALYTICS_FLAKY"
TRANSIENT_ERROR = "transient upstream error (simulated)"

Metric = Literal["latency_p50_ms", "latency_p99_ms", "error_rate", "requests_per_min"]

_UNITS: Mapping[str, str] = {
    "latency_p50_ms": "ms",
    "latency_p99_ms": "ms",
    "error_rate": "percent",
    "requests_per_min": "requests/min",
}
_DECIMALS: Mapping[str, int] = {"latency_p50_ms": 1, "latency_p99_ms": 1, "error_rate": 3, "requests_per_min": 0}
# How strongly each metric follows the daily traffic cycle, and how noisy it is.
_DAILY_AMPLITUDE: Mapping[str, float] = {
    "latency_p50_ms": 0.10,
    "latency_p99_ms": 0.15,
    "error_rate": 0.10,
    "requests_per_min": 0.35,
}
_NOISE: Mapping[str, float] = {
    "latency_p50_ms": 0.06,
    "latency_p99_ms": 0.12,
    "error_rate": 0.30,
    "requests_per_min": 0.05,
}

# Typical values per service: p50 ms, p99 ms, error %, requests/min.
_BASELINES: Mapping[str, Mapping[str, float]] = {
    "auth": {"latency_p50_ms": 25, "latency_p99_ms": 110, "error_rate": 0.10, "requests_per_min": 9600},
    "checkout": {"latency_p50_ms": 120, "latency_p99_ms": 480, "error_rate": 0.30, "requests_per_min": 5200},
    "inventory": {"latency_p50_ms": 60, "latency_p99_ms": 300, "error_rate": 0.40, "requests_per_min": 4100},
    "notifications": {"latency_p50_ms": 35, "latency_p99_ms": 260, "error_rate": 0.80, "requests_per_min": 2600},
    "payments": {"latency_p50_ms": 180, "latency_p99_ms": 900, "error_rate": 0.20, "requests_per_min": 3100},
    "search": {"latency_p50_ms": 45, "latency_p99_ms": 210, "error_rate": 0.50, "requests_per_min": 14800},
}
SERVICES: tuple[str, ...] = tuple(sorted(_BASELINES))


@dataclass(frozen=True, slots=True)
class _Anomaly:
    service: str
    start: datetime
    end: datetime
    factors: Mapping[str, float]
    error_boosts: Mapping[str, float]

    def covers(self, service: str, at: datetime) -> bool:
        return service == self.service and self.start <= at <= self.end


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# Mirrors incidents INC-1013, INC-1014 and INC-1015 in the incidents database.
_ANOMALIES: tuple[_Anomaly, ...] = (
    _Anomaly(
        "payments",
        _utc("2026-11-18T12:30:00Z"),
        _utc("2026-11-18T16:30:00Z"),
        {"error_rate": 6.0, "latency_p99_ms": 1.6},
        {"ThreeDSChallengeDeclined: issuer rejected browser info (missing tz)": 40.0},
    ),
    _Anomaly(
        "search",
        _utc("2026-11-19T15:00:00Z"),
        REFERENCE_TIME,
        {"error_rate": 2.5},
        {"EmptySuggestions: autocomplete returned 0 results for non-ASCII prefix": 25.0},
    ),
    _Anomaly(
        "checkout",
        _utc("2026-11-20T07:55:00Z"),
        REFERENCE_TIME,
        {"latency_p50_ms": 1.9, "latency_p99_ms": 4.2, "error_rate": 13.0, "requests_per_min": 0.85},
        {
            "TimeoutError: payments-client POST /v2/authorize exceeded 1500ms": 60.0,
            "CircuitOpen: payments-client breaker open": 30.0,
        },
    ),
)

# Recurring error signatures per service, with their typical count per hour.
_ERROR_CATALOGUE: Mapping[str, Mapping[str, float]] = {
    "auth": {
        "InvalidGrant: refresh token expired": 14.0,
        "RateLimited: /oauth/token per-client limit": 5.0,
        "UpstreamTimeout: directory lookup exceeded 300ms": 2.0,
    },
    "checkout": {
        "ValidationError: address.postcode invalid for country": 9.0,
        "TimeoutError: payments-client POST /v2/authorize exceeded 1500ms": 1.5,
        "CircuitOpen: payments-client breaker open": 0.2,
        "ConflictError: cart version changed during checkout": 4.0,
    },
    "inventory": {
        "DeadlockDetected: reservation transaction retried": 3.0,
        "NotFound: SKU not in catalogue": 6.0,
        "StaleRead: replica lag above 2s": 1.0,
    },
    "notifications": {
        "ProviderError: APNs 410 Unregistered": 18.0,
        "ProviderError: FCM 429 quota exceeded": 4.0,
        "TemplateError: missing variable 'first_name'": 1.0,
    },
    "payments": {
        "CardDeclined: do_not_honor": 22.0,
        "ThreeDSChallengeDeclined: issuer rejected browser info (missing tz)": 0.5,
        "AcquirerTimeout: authorization exceeded 5s": 1.5,
    },
    "search": {
        "QueryParseError: unbalanced quotes": 12.0,
        "EmptySuggestions: autocomplete returned 0 results for non-ASCII prefix": 0.5,
        "ShardTimeout: 1 of 12 shards did not answer in 250ms": 3.0,
    },
}

_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)


class Point(BaseModel):
    """One sample."""

    ts: str = Field(description="UTC timestamp, ISO 8601 with 'Z'.")
    value: float


class Summary(BaseModel):
    """Statistics over the returned points."""

    min: float
    max: float
    avg: float
    last: float = Field(description="Value of the most recent point.")


class MetricSeries(BaseModel):
    """A time series for one service metric, oldest point first."""

    service: str
    metric: Metric
    unit: str = Field(description="'ms', 'percent' (0-100) or 'requests/min'.")
    step_minutes: int
    start: str = Field(description="Timestamp of the first point.")
    end: str = Field(description="Timestamp of the last point (the reference 'now').")
    points: list[Point]
    summary: Summary


class ErrorSignature(BaseModel):
    """One kind of error and how often it occurred in the window."""

    signature: str = Field(description="Error class and message, normalised (no ids).")
    count: int
    share: float = Field(description="Fraction of all errors in the window, 0-1.")


class TopErrors(BaseModel):
    """The most frequent error signatures of a service over a window, most frequent first."""

    service: str
    start: str
    end: str
    total: int = Field(description="All errors in the window, including signatures beyond the limit.")
    errors: list[ErrorSignature]


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _unit_interval(*parts: str) -> float:
    """A uniform value in [0, 1) fixed by ``parts``: the same on every run, platform and Python version."""
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def metric_value(service: str, metric: Metric, at: datetime) -> float:
    """The value of ``metric`` for ``service`` at ``at``: a pure function of its arguments.

    Raises:
        KeyError: If ``service`` is unknown.
    """
    base = _BASELINES[service][metric]
    hour = at.hour + at.minute / 60
    # Traffic peaks around 15:00 UTC and bottoms out around 03:00 UTC.
    daily = 1 + _DAILY_AMPLITUDE[metric] * math.sin(2 * math.pi * (hour - 9) / 24)
    noise = 1 + _NOISE[metric] * (2 * _unit_interval(service, metric, _iso(at)) - 1)
    value = base * daily * noise
    for anomaly in _ANOMALIES:
        if anomaly.covers(service, at):
            value *= anomaly.factors.get(metric, 1.0)
    return round(value, _DECIMALS[metric])


def _check_service(service: str) -> None:
    if service not in _BASELINES:
        raise ToolError(f"unknown service {service!r}; known services: {', '.join(SERVICES)}")


def _flaky_budget(environ: Mapping[str, str]) -> int:
    raw = environ.get(FLAKY_ENV, "0").strip() or "0"
    try:
        budget = int(raw)
    except ValueError:
        raise SystemExit(f"{FLAKY_ENV} must be a non-negative integer, got {raw!r}") from None
    if budget < 0:
        raise SystemExit(f"{FLAKY_ENV} must be a non-negative integer, got {raw!r}")
    return budget


ServiceName = Annotated[str, Field(description=f"Service name, one of: {', '.join(SERVICES)}.", examples=["checkout"])]


def build_server(environ: Mapping[str, str] | None = None) -> MCPServer:
    """Create the ``analytics`` server; ``environ`` (default ``os.environ``) supplies ``ANALYTICS_FLAKY``.

    Raises:
        SystemExit: If ``ANALYTICS_FLAKY`` is not a non-negative integer.
    """
    failures_left = _flaky_budget(os.environ if environ is None else environ)
    server = MCPServer(
        name="analytics",
        title="Service analytics",
        description="Latency, error-rate and traffic metrics and top error signatures per service.",
        instructions=(
            "Production metrics per service. Use query_metrics for time series (latency, error rate, traffic) "
            "and top_errors for what is failing. Windows end at the current time, 2026-11-20T12:00:00Z."
        ),
        version="0.1.0",
    )

    # Async tools run on the event loop, one at a time, so the counter needs no lock.
    @server.tool(name="query_metrics", title="Query a service metric", annotations=_READ_ONLY)
    async def query_metrics(
        service: ServiceName,
        metric: Annotated[
            Metric,
            Field(
                description="latency_p50_ms / latency_p99_ms (milliseconds), error_rate (percent of requests, "
                "0-100) or requests_per_min."
            ),
        ],
        hours: Annotated[int, Field(ge=1, le=168, description="Window length in hours, ending now.")] = 24,
        step_minutes: Annotated[int, Field(ge=5, le=1440, description="Minutes between points (5-1440).")] = 60,
    ) -> MetricSeries:
        """Get a time series of one metric for one service over the last `hours`, one point every `step_minutes`.

        Returns the points (oldest first) and min/max/avg/last. Useful to check whether a service is degraded now
        and since when, e.g. compare error_rate or latency_p99_ms before and after a deploy time.
        """
        nonlocal failures_left
        if failures_left > 0:
            failures_left -= 1
            raise ToolError(TRANSIENT_ERROR)
        _check_service(service)
        step = timedelta(minutes=step_minutes)
        count = max(1, hours * 60 // step_minutes)
        times = [REFERENCE_TIME - step * k for k in range(count - 1, -1, -1)]
        points = [Point(ts=_iso(at), value=metric_value(service, metric, at)) for at in times]
        values = [p.value for p in points]
        return MetricSeries(
            service=service,
            metric=metric,
            unit=_UNITS[metric],
            step_minutes=step_minutes,
            start=points[0].ts,
            end=points[-1].ts,
            points=points,
            summary=Summary(
                min=min(values),
                max=max(values),
                avg=round(sum(values) / len(values), _DECIMALS[metric] + 1),
                last=values[-1],
            ),
        )

    @server.tool(name="top_errors", title="Top error signatures", annotations=_READ_ONLY)
    async def top_errors(
        service: ServiceName,
        hours: Annotated[int, Field(ge=1, le=168, description="Window length in hours, ending now.")] = 24,
        limit: Annotated[int, Field(ge=1, le=50, description="Most signatures to return.")] = 10,
    ) -> TopErrors:
        """List the most frequent error signatures of a service over the last `hours`, with counts and shares.

        Useful to see *what* is failing once query_metrics shows an elevated error_rate.
        """
        _check_service(service)
        hours_ending = [REFERENCE_TIME - timedelta(hours=k) for k in range(hours)]
        counts: dict[str, int] = {}
        for signature, per_hour in _ERROR_CATALOGUE[service].items():
            total = 0
            for at in hours_ending:
                rate = per_hour
                for anomaly in _ANOMALIES:
                    if anomaly.covers(service, at):
                        rate *= anomaly.error_boosts.get(signature, 1.0)
                total += math.floor(rate * (0.5 + _unit_interval(service, signature, _iso(at))))
            if total:
                counts[signature] = total
        grand_total = sum(counts.values())
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
        return TopErrors(
            service=service,
            start=_iso(REFERENCE_TIME - timedelta(hours=hours)),
            end=_iso(REFERENCE_TIME),
            total=grand_total,
            errors=[ErrorSignature(signature=s, count=c, share=round(c / grand_total, 4)) for s, c in ranked],
        )

    return server


def main() -> None:
    """Run the server (stdio by default; ``--transport http --port N`` for HTTP on 127.0.0.1)."""
    run_server(build_server(), prog="python -m examples.servers.analytics", default_port=8702)


if __name__ == "__main__":
    main()
