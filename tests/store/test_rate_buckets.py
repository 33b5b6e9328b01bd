"""Shared rate-limit buckets in the store, on SQLite and on a real PostgreSQL: refill, refusal, pruning,
and real processes taking tokens at once."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
import uuid
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from orchestrator.store import RateBucket, admit_call, prune_rate_buckets
from orchestrator.store._schema import metadata, rate_buckets

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.anyio

T0 = 1_800_000_000.0  # wall-clock seconds, as the processes sharing the store read them


def _principal() -> str:
    return f"token:{uuid.uuid4().hex[:12]}:-"  # PostgreSQL is shared by the session


async def _calls(engine: AsyncEngine, principal: str, buckets: list[RateBucket], count: int, now: float) -> list[Any]:
    return [await admit_call(engine, principal, buckets, now=now) for _ in range(count)]


async def test_a_burst_is_admitted_then_refused_with_the_wait_then_refilled_up_to_the_burst(
    engine: AsyncEngine,
) -> None:
    alice, own = _principal(), [RateBucket("", rate=2, burst=3)]

    assert await _calls(engine, alice, own, 3, T0) == [None, None, None]
    assert await admit_call(engine, alice, own, now=T0) == pytest.approx(0.5)  # 2 per second

    assert await admit_call(engine, alice, own, now=T0 + 0.4) == pytest.approx(0.1)
    assert await admit_call(engine, alice, own, now=T0 + 0.5) is None
    assert await admit_call(engine, alice, own, now=T0 + 0.5) == pytest.approx(0.5)

    later = T0 + 60  # refilled up to the burst, not beyond
    assert await _calls(engine, alice, own, 4, later) == [None, None, None, pytest.approx(0.5)]


async def test_principals_and_tools_have_their_own_buckets(engine: AsyncEngine) -> None:
    alice, bob = _principal(), _principal()
    one = RateBucket("tickets__search", rate=1, burst=1)

    assert await admit_call(engine, alice, [one], now=T0) is None
    assert await admit_call(engine, alice, [one], now=T0) == pytest.approx(1.0)
    assert await admit_call(engine, bob, [one], now=T0) is None
    assert await admit_call(engine, alice, [RateBucket("mail__send", rate=1, burst=1)], now=T0) is None


async def test_a_refused_call_takes_no_token_from_the_bucket_that_allowed_it(engine: AsyncEngine) -> None:
    alice = _principal()
    own, slow = RateBucket("", rate=1, burst=3), RateBucket("slow", rate=1, burst=1)

    assert await admit_call(engine, alice, [own, slow], now=T0) is None  # own: 2 left; slow: empty
    for _ in range(5):  # refused by the tool's bucket: the principal's keeps its two tokens
        assert await admit_call(engine, alice, [own, slow], now=T0) == pytest.approx(1.0)
    other = RateBucket("other", rate=1, burst=10)
    assert await _calls(engine, alice, [own, other], 3, T0) == [None, None, pytest.approx(1.0)]


async def test_the_wait_is_the_longer_of_the_two_buckets(engine: AsyncEngine) -> None:
    alice = _principal()
    both = [RateBucket("t", rate=0.25, burst=1), RateBucket("", rate=0.5, burst=1)]

    assert await admit_call(engine, alice, both, now=T0) is None
    assert await admit_call(engine, alice, both, now=T0) == pytest.approx(4.0)
    assert await admit_call(engine, alice, both, now=T0 + 2.0) == pytest.approx(2.0)  # only the tool's is short


async def test_a_clock_behind_the_last_writer_adds_no_tokens_and_none_are_counted_twice(engine: AsyncEngine) -> None:
    alice, own = _principal(), [RateBucket("", rate=1, burst=2)]
    assert await _calls(engine, alice, own, 2, T0 + 10) == [None, None]

    # A process whose clock is 5 s behind: no time has passed for it, and the bucket keeps the later time.
    assert await admit_call(engine, alice, own, now=T0 + 5) == pytest.approx(1.0)
    assert await admit_call(engine, alice, own, now=T0 + 11) is None  # one second after the last write
    assert await admit_call(engine, alice, own, now=T0 + 11) == pytest.approx(1.0)


async def test_a_smaller_burst_in_the_config_caps_a_bucket_kept_fuller(engine: AsyncEngine) -> None:
    alice = _principal()
    assert await admit_call(engine, alice, [RateBucket("", rate=1, burst=10)], now=T0) is None  # 9 left

    smaller = [RateBucket("", rate=1, burst=2)]
    assert await _calls(engine, alice, smaller, 3, T0) == [None, None, pytest.approx(1.0)]


async def test_no_buckets_admit_every_call_and_keep_nothing(engine: AsyncEngine) -> None:
    alice = _principal()
    assert await _calls(engine, alice, [], 3, T0) == [None, None, None]
    assert await _rows(engine, alice) == []


async def _rows(engine: AsyncEngine, principal_key: str) -> list[tuple[str, float]]:
    digest = hashlib.sha256(principal_key.encode()).hexdigest()
    async with engine.connect() as connection:
        query = select(rate_buckets.c.tool, rate_buckets.c.tokens).where(rate_buckets.c.principal == digest)
        return [(row.tool, row.tokens) for row in await connection.execute(query.order_by(rate_buckets.c.tool))]


async def test_the_principal_is_kept_only_as_a_digest(engine: AsyncEngine) -> None:
    key = f"oauth:client-{uuid.uuid4().hex[:8]}:alice@example.com"
    await admit_call(engine, key, [RateBucket("", rate=1, burst=2), RateBucket("t", rate=1, burst=2)], now=T0)

    assert await _rows(engine, key) == [("", 1.0), ("t", 1.0)]
    async with engine.connect() as connection:
        kept = [row.principal for row in await connection.execute(select(rate_buckets.c.principal))]
    assert not any("alice" in principal or "client-" in principal for principal in kept)


async def test_pruning_deletes_only_the_buckets_full_again_and_a_pruned_bucket_starts_full(
    engine: AsyncEngine,
) -> None:
    fast, slow = _principal(), _principal()
    await admit_call(engine, fast, [RateBucket("", rate=1, burst=3)], now=T0)  # full again at T0 + 1
    await admit_call(engine, slow, [RateBucket("", rate=0.01, burst=3)], now=T0)  # full again at T0 + 100

    assert await prune_rate_buckets(engine, now=T0 + 0.5) == 0
    await prune_rate_buckets(engine, now=T0 + 1)  # other tests' buckets may go too
    assert await _rows(engine, fast) == []
    assert await _rows(engine, slow) == [("", 2.0)]

    # Forgetting a full bucket forgets nothing: the same burst, then the same wait.
    own = [RateBucket("", rate=1, burst=3)]
    assert await _calls(engine, fast, own, 4, T0 + 2) == [None, None, None, pytest.approx(1.0)]


def _schema_differences(connection: Connection) -> list[Any]:
    differences = compare_metadata(MigrationContext.configure(connection), metadata)
    return [item for item in differences if "rate_buckets" in repr(item)]


async def test_the_migration_creates_the_table_the_queries_use(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        assert await connection.run_sync(_schema_differences) == []


# One process taking tokens: waits for "go" on stdin, then tries ATTEMPTS calls and prints how
# many were admitted. The clock stands still, so only the burst can be admitted.
_TAKER = textwrap.dedent(
    """
    import sys, anyio
    from orchestrator.config import StateSpec
    from orchestrator.store import RateBucket, admit_call, open_store, state_url

    URL, PRINCIPAL = sys.argv[1], sys.argv[2]
    ATTEMPTS, BURST, NOW = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])

    async def main() -> None:
        async with open_store(state_url(StateSpec(url=URL), {})) as store:
            buckets = [RateBucket("", rate=1.0, burst=BURST), RateBucket("t", rate=1.0, burst=BURST + 7)]
            await admit_call(store.engine, "warm-up", buckets, now=NOW)  # connections open before the start
            print("ready", flush=True)
            sys.stdin.readline()
            admitted = 0
            for _ in range(ATTEMPTS):
                admitted += await admit_call(store.engine, PRINCIPAL, buckets, now=NOW) is None
            print(admitted, flush=True)

    anyio.run(main)
    """
)


def _race(url: str, principal: str, *, processes: int, attempts: int, burst: int) -> list[int]:
    """Start ``processes`` takers, let them go at once, and return how many calls each had admitted."""
    argv = [sys.executable, "-c", _TAKER, url, principal, str(attempts), str(burst), str(T0)]
    takers = [
        subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    try:
        for taker in takers:
            assert taker.stdout is not None
            assert taker.stdout.readline().strip() == "ready", taker.stderr.read() if taker.stderr else ""
        for taker in takers:
            assert taker.stdin is not None
            taker.stdin.write("go\n")
            taker.stdin.flush()
        counts: list[int] = []
        for taker in takers:
            out, err = taker.communicate(timeout=50)
            assert taker.returncode == 0, err
            counts.append(int(out.strip()))
        return counts
    finally:
        for taker in takers:
            if taker.poll() is None:
                taker.kill()
                taker.wait()


async def test_processes_taking_tokens_at_once_are_admitted_exactly_the_burst_in_all(
    engine: AsyncEngine, database_url: str
) -> None:
    principal = _principal()
    counts = await anyio.to_thread.run_sync(lambda: _race(database_url, principal, processes=2, attempts=80, burst=100))

    assert sum(counts) == 100  # never more, whoever took them
    assert await _rows(engine, principal) == [("", 0.0), ("t", 7.0)]
