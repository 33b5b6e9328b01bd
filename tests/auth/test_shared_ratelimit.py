"""Rate limits shared through the store: the same limits as in memory, on a fake wall clock, and what
a call refused by them looks like."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mcp_types as types
import pytest

from orchestrator.auth import EVERYTHING, OWNER, InProcessLimiter, Principal, RateLimiter, SharedRateLimiter
from orchestrator.config import RateLimitSpec, RateLimitsSpec, StateSpec
from orchestrator.errors import RateLimitedError
from orchestrator.server import ERROR_META_KEY, CallControls
from orchestrator.server._access import ServedBy
from orchestrator.store import open_store, state_url

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from orchestrator.store import Store

pytestmark = pytest.mark.anyio


class FakeClock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with open_store(state_url(StateSpec(url=f"sqlite:///{tmp_path / 'state.db'}"), {})) as opened:
        yield opened


async def _calls(limiter: SharedRateLimiter, principal: str, tool: str, count: int) -> list[float | None]:
    return [await limiter.check(principal, tool) for _ in range(count)]


async def test_per_principal_per_tool_and_named_tool_limits_mean_what_they_mean_in_memory(store: Store) -> None:
    clock = FakeClock()
    spec = RateLimitsSpec(
        per_principal=RateLimitSpec(rate=10, burst=5),
        per_tool=RateLimitSpec(rate=1, burst=2),
        tools={"db__query": RateLimitSpec(rate=0.1, burst=1)},
    )
    limiter = SharedRateLimiter(spec, store, clock=clock)

    assert await _calls(limiter, "alice", "a", 3) == [None, None, pytest.approx(1.0)]
    assert await _calls(limiter, "alice", "db__query", 2) == [None, pytest.approx(10.0)]  # the override
    assert await _calls(limiter, "alice", "b", 2) == [None, None]
    assert await limiter.check("alice", "c") == pytest.approx(0.1)  # the principal's five are gone
    assert await _calls(limiter, "bob", "a", 2) == [None, None]

    clock.advance(1.0)
    assert await limiter.check("alice", "a") is None
    assert await limiter.check("alice", "db__query") == pytest.approx(9.0)


async def test_the_shared_and_the_in_memory_limiter_answer_a_sequence_of_calls_alike(store: Store) -> None:
    shared_clock, memory_clock = FakeClock(), FakeClock()
    spec = RateLimitsSpec(per_principal=RateLimitSpec(rate=0.5, burst=3), per_tool=RateLimitSpec(rate=2, burst=2))
    shared = SharedRateLimiter(spec, store, clock=shared_clock)
    memory = RateLimiter(spec, clock=memory_clock)

    for step in range(40):
        tool = ("a", "b", "a", "c")[step % 4]
        assert await shared.check("alice", tool) == pytest.approx(memory.check("alice", tool))
        shared_clock.advance(0.3)
        memory_clock.advance(0.3)


async def test_without_limits_every_call_is_admitted_without_touching_the_store(store: Store) -> None:
    limiter = SharedRateLimiter(RateLimitsSpec(), store, clock=FakeClock())

    assert not limiter.enabled
    assert await _calls(limiter, "alice", "t", 3) == [None, None, None]
    assert await limiter.prune() == 0


async def test_entering_prunes_the_buckets_that_are_full_again(store: Store) -> None:
    clock = FakeClock()
    spec = RateLimitsSpec(per_principal=RateLimitSpec(rate=1, burst=2))
    async with SharedRateLimiter(spec, store, clock=clock) as limiter:
        await limiter.check("alice", "t")
        await limiter.check("bob", "t")
        await limiter.check("bob", "t")

    clock.advance(1.5)  # alice's bucket is full again, bob's is not
    async with SharedRateLimiter(spec, store, clock=clock):
        pass
    assert await SharedRateLimiter(spec, store, clock=clock).prune() == 0
    clock.advance(0.5)
    assert await SharedRateLimiter(spec, store, clock=clock).prune() == 1


async def test_a_call_refused_by_the_shared_limit_is_a_tool_error_with_its_retry_time_and_nothing_is_called(
    store: Store,
) -> None:
    clock = FakeClock()
    spec = RateLimitsSpec(per_tool=RateLimitSpec(rate=0.4, burst=1))
    controls = CallControls(limiter=SharedRateLimiter(spec, store, clock=clock))
    files = Principal(kind="token", client_id="token:files", subject=None, grant=EVERYTHING)
    called: list[str] = []

    async def call() -> types.CallToolResult:
        called.append("tickets__search")
        return types.CallToolResult(content=[])

    def served_by(_result: types.CallToolResult | None) -> ServedBy:
        return ServedBy(server="tickets", downstream_tool="search")

    first = await controls.call(files, "tickets__search", {}, call, served_by)
    refused = await controls.call(files, "tickets__search", {}, call, served_by)

    assert not first.is_error
    assert called == ["tickets__search"]
    assert refused.is_error
    assert refused.meta is not None
    assert refused.meta[ERROR_META_KEY] == {"type": "RateLimitedError", "server": None, "retry_after": 2.5}
    [text] = refused.content
    assert isinstance(text, types.TextContent)
    assert text.text == "rate limit reached for tool 'tickets__search': retry in 2.5 s"

    # The owner has no limits; another process sharing the store sees the same empty bucket.
    assert not (await controls.call(OWNER, "tickets__search", {}, call, served_by)).is_error
    other_process = SharedRateLimiter(spec, store, clock=clock)
    with pytest.raises(RateLimitedError) as caught:
        await other_process.enforce(files.key, "tickets__search")
    assert caught.value.retry_after == pytest.approx(2.5)

    clock.advance(2.5)
    assert not (await controls.call(files, "tickets__search", {}, call, served_by)).is_error


async def test_the_in_memory_limiter_refuses_through_call_controls_the_same_way() -> None:
    spec = RateLimitsSpec(per_tool=RateLimitSpec(rate=0.4, burst=1))
    controls = CallControls(limiter=InProcessLimiter(RateLimiter(spec, clock=FakeClock())))
    files = Principal(kind="token", client_id="token:files", subject=None, grant=EVERYTHING)

    async def call() -> types.CallToolResult:
        return types.CallToolResult(content=[])

    await controls.call(files, "t", {}, call, lambda _: ServedBy())
    refused = await controls.call(files, "t", {}, call, lambda _: ServedBy())

    assert refused.is_error
    assert refused.meta is not None
    assert refused.meta[ERROR_META_KEY]["retry_after"] == 2.5


async def test_a_call_whose_shared_limits_cannot_be_checked_is_refused_and_nothing_is_called(store: Store) -> None:
    async with store.engine.begin() as connection:  # a database that refuses every bucket
        await connection.exec_driver_sql("DROP TABLE rate_buckets")
    spec = RateLimitsSpec(per_principal=RateLimitSpec(rate=1, burst=10))
    controls = CallControls(limiter=SharedRateLimiter(spec, store, clock=FakeClock()))
    files = Principal(kind="token", client_id="token:files", subject=None, grant=EVERYTHING)
    called: list[str] = []

    async def call() -> types.CallToolResult:
        called.append("t")
        return types.CallToolResult(content=[])

    refused = await controls.call(files, "t", {}, call, lambda _: ServedBy())

    assert called == []
    assert refused.is_error
    assert refused.meta is not None
    assert refused.meta[ERROR_META_KEY]["type"] == "StoreError"
    text = refused.content[0].text if isinstance(refused.content[0], types.TextContent) else ""
    assert text.startswith("the state database: "), text
    assert store.url not in text, "where the state database is stays in the log"
