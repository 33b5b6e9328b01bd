"""What one rate-limited call costs: buckets in memory, in the state database, in Redis.

Run from the repository root::

    python -m bench.rate_limits [--rounds 7] [--calls 300] [--tasks 8] [--postgres]
                                [--out bench/results/rate_limits.json]

Each limiter admits ``calls`` calls of one principal (a limit no call reaches, so each takes a
token), one after another, then again from ``tasks`` concurrent tasks; the figure is the wall
time per call. The limiters: ``memory`` (``InProcessLimiter``), ``sqlite`` (``SharedRateLimiter``
on a SQLite state file), ``postgresql`` (the same on a local PostgreSQL, with ``--postgres``)
and ``redis`` (``RedisRateLimiter`` on a local ``redis-server``, Debian's). Rounds rotate the
order of the limiters; the report gives the median of each and the ratios to Redis, measured
in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from contextlib import AsyncExitStack, ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from orchestrator.auth import InProcessLimiter, RateLimiter, RedisRateLimiter, SharedRateLimiter
from orchestrator.config import RateLimitSpec, RateLimitsSpec, StateSpec
from orchestrator.store import open_store, state_url
from tests.postgres import running_postgres
from tests.redis_server import running_redis

if TYPE_CHECKING:
    from orchestrator.auth import CallLimiter

SPEC = RateLimitsSpec(
    per_principal=RateLimitSpec(rate=1e6, burst=1_000_000), per_tool=RateLimitSpec(rate=1e6, burst=1_000_000)
)


async def _per_call(limiter: CallLimiter, principal: str, calls: int, tasks: int) -> float:
    """Seconds per call: ``calls`` calls from ``tasks`` concurrent tasks."""

    async def run(count: int) -> None:
        for _ in range(count):
            await limiter.enforce(principal, "tickets__search")

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for task in range(tasks):
            tg.start_soon(run, calls // tasks + (task < calls % tasks))
    return (time.perf_counter() - started) / calls


async def main(rounds: int, calls: int, tasks: int, postgres_url: str | None, redis_url: str) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix="bench-rate-limits-"))
    async with AsyncExitStack() as stack:
        limiters: dict[str, CallLimiter] = {"memory": InProcessLimiter(RateLimiter(SPEC))}
        sqlite = await stack.enter_async_context(
            open_store(state_url(StateSpec(url=f"sqlite:///{folder / 'state.db'}"), {}))
        )
        limiters["sqlite"] = await stack.enter_async_context(SharedRateLimiter(SPEC, sqlite))
        if postgres_url is not None:
            postgres = await stack.enter_async_context(open_store(state_url(StateSpec(url=postgres_url), {})))
            limiters["postgresql"] = await stack.enter_async_context(SharedRateLimiter(SPEC, postgres))
        limiters["redis"] = await stack.enter_async_context(RedisRateLimiter(SPEC, redis_url))
        names = list(limiters)
        samples: dict[str, dict[int, list[float]]] = {name: {1: [], tasks: []} for name in names}
        for warm in names:  # connections opened, script loaded, tables created
            await _per_call(limiters[warm], "warm-up", 20, 1)
        for round_ in range(rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                for concurrency in (1, tasks):
                    principal = f"p{round_}-{concurrency}"
                    samples[name][concurrency].append(await _per_call(limiters[name], principal, calls, concurrency))
    medians = {
        name: {str(c): statistics.median(values) * 1e6 for c, values in by.items()} for name, by in samples.items()
    }
    ratios = {
        name: {c: medians[name][c] / medians["redis"][c] for c in medians[name]} for name in names if name != "redis"
    }
    return {"rounds": rounds, "calls": calls, "tasks": tasks, "us_per_call": medians, "ratio_to_redis": ratios}


def _cli() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--postgres", action="store_true", help="also a local PostgreSQL (tests/postgres.py)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with ExitStack() as servers:
        redis = servers.enter_context(running_redis())
        postgres_url = servers.enter_context(running_postgres()) if args.postgres else None
        report = anyio.run(main, args.rounds, args.calls, args.tasks, postgres_url, redis.url)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    _cli()
