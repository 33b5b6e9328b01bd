"""One side of the atomicity test: takes tokens from one Redis bucket as fast as it can.

Run as ``python -m tests.auth.redis_hammer PRINCIPAL BURST CALLS`` with the Redis URL in
``$REDIS_URL`` (not on the command line: it holds a password). It connects, prints ``ready``,
waits for a line on standard input (so that both sides start together), makes ``CALLS``
checks from four concurrent tasks, and prints how many were admitted.
"""

from __future__ import annotations

import os
import sys

import anyio

from orchestrator.auth import RedisRateLimiter
from orchestrator.config import RateLimitSpec, RateLimitsSpec

TASKS = 4


async def main(principal: str, burst: int, calls: int) -> None:
    # A rate so low that no token comes back while the test runs: exactly BURST are admitted.
    spec = RateLimitsSpec(per_principal=RateLimitSpec(rate=1e-6, burst=burst))
    admitted = 0

    async def hammer(count: int) -> None:
        nonlocal admitted
        for _ in range(count):
            if await limiter.check(principal, "t") is None:
                admitted += 1

    async with RedisRateLimiter(spec, os.environ["REDIS_URL"]) as limiter:
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)
        async with anyio.create_task_group() as tg:
            for task in range(TASKS):
                tg.start_soon(hammer, calls // TASKS + (task < calls % TASKS))
    print(admitted, flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
