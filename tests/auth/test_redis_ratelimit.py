"""Rate limits shared through a real Redis: the same answers as in memory, one limit for two processes,
a refusal while Redis is down, and a password that shows nowhere.

Redis reads its own clock, which a test cannot stop: the sequences here use rates so low that no
token comes back while they run, or so high that one always has, so no answer depends on timing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import uuid
from typing import TYPE_CHECKING

import anyio
import mcp_types as types
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from redis.asyncio import Redis

from orchestrator.auth import EVERYTHING, Principal, RateLimiter, RedisRateLimiter
from orchestrator.auth._redis_ratelimit import KEY_PREFIX, bucket_key, shown_redis_url
from orchestrator.config import RateLimitSpec, RateLimitsSpec
from orchestrator.errors import RateLimitedError, RateLimitsUnavailable
from orchestrator.server import ERROR_META_KEY, CallControls
from orchestrator.server._access import ServedBy
from tests.fakes import REPO_ROOT
from tests.redis_server import REDIS_PASSWORD, running_redis

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.redis_server import RedisServer

pytestmark = pytest.mark.anyio


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A plain client of the test server, to look at the buckets."""
    client = Redis.from_url(redis_server.url)  # pyright: ignore[reportUnknownMemberType]
    yield client
    await client.aclose()


def _principal() -> str:
    """A principal no other test uses (the server is shared by the session's tests)."""
    return f"token:{uuid.uuid4().hex}"


def _files(key: str) -> Principal:
    return Principal(kind="token", client_id=key.removeprefix("token:"), subject=None, grant=EVERYTHING)


class FrozenClock:
    """A clock that never moves: the in-memory limiter's view of calls made in no time."""

    def __call__(self) -> float:
        return 1_000.0


async def test_redis_answers_a_sequence_of_calls_as_the_in_memory_limiter_does(redis_server: RedisServer) -> None:
    spec = RateLimitsSpec(
        per_principal=RateLimitSpec(rate=1e-4, burst=5),
        per_tool=RateLimitSpec(rate=2e-4, burst=2),
        tools={"db__query": RateLimitSpec(rate=5e-4, burst=1)},
    )
    memory = RateLimiter(spec, clock=FrozenClock())
    alice, bob = _principal(), _principal()
    calls = [(alice, tool) for tool in ("a", "a", "a", "db__query", "db__query", "b", "b", "c", "c", "a")]
    calls += [(bob, tool) for tool in ("a", "db__query", "a", "a", "b")]

    async with RedisRateLimiter(spec, redis_server.url) as limiter:
        answers = [(await limiter.check(principal, tool), memory.check(principal, tool)) for principal, tool in calls]

    assert [redis is None for redis, _ in answers] == [mine is None for _, mine in answers]
    assert [redis for redis, _ in answers] == [
        # Seconds refill by the time a call is refused: a hundredth of a token at these rates
        # would take 50 s and more, so the waits agree to 1 %.
        pytest.approx(mine, rel=1e-2) if mine is not None else None
        for _, mine in answers
    ]
    assert sum(redis is None for redis, _ in answers) == 5 + 4  # alice's burst, and four of bob's


async def test_a_bucket_with_a_high_rate_is_full_again_by_the_next_call_and_one_with_a_low_rate_is_not(
    redis_server: RedisServer,
) -> None:
    spec = RateLimitsSpec(
        per_principal=RateLimitSpec(rate=1e-4, burst=4),
        per_tool=RateLimitSpec(rate=1e9, burst=1),  # a token a nanosecond: back before any next call
        tools={"slow": RateLimitSpec(rate=1e-4, burst=1)},
    )
    alice = _principal()
    async with RedisRateLimiter(spec, redis_server.url) as limiter:
        assert [await limiter.check(alice, "fast") for _ in range(3)] == [None, None, None]
        assert await limiter.check(alice, "slow") is None
        with pytest.raises(RateLimitedError) as caught:
            await limiter.enforce(alice, "fast")  # the principal's four are gone
    assert caught.value.retry_after == pytest.approx(1e4, rel=1e-2)


async def test_buckets_are_kept_under_a_digest_of_the_principal_and_expire_when_they_would_be_full(
    redis_server: RedisServer, redis: Redis
) -> None:
    spec = RateLimitsSpec(per_principal=RateLimitSpec(rate=1, burst=10), per_tool=RateLimitSpec(rate=0.5, burst=3))
    alice = _principal()
    async with RedisRateLimiter(spec, redis_server.url) as limiter:
        await limiter.enforce(alice, "tickets__search")
        await limiter.enforce(alice, "tickets__search")

    digest = hashlib.sha256(alice.encode()).hexdigest()
    keys = [bucket_key(alice, None), bucket_key(alice, "tickets__search")]
    assert keys == [f"{KEY_PREFIX}{{{digest}}}:", f"{KEY_PREFIX}{{{digest}}}:tickets__search"]
    assert await redis.exists(*keys) == 2
    assert len(await redis.keys(f"*{digest}*")) == 2  # pyright: ignore[reportUnknownMemberType] (untyped **kwargs)
    assert await redis.keys(f"*{alice.removeprefix('token:')}*") == []  # pyright: ignore[reportUnknownMemberType]
    # Two tokens taken: full again in 2 s (principal) and in 4 s (tool); then the key is gone.
    assert 0 < await redis.pttl(keys[0]) <= 2_000
    assert 0 < await redis.pttl(keys[1]) <= 4_000


async def test_two_processes_taking_from_one_bucket_get_exactly_its_burst_between_them(
    redis_server: RedisServer,
) -> None:
    principal, burst, calls = _principal(), 150, 400
    command = [sys.executable, "-m", "tests.auth.redis_hammer", principal, str(burst), str(calls)]
    env = {**os.environ, "REDIS_URL": redis_server.url}
    with anyio.fail_after(60):
        async with (
            await anyio.open_process(command, cwd=REPO_ROOT, env=env, stderr=subprocess.STDOUT) as first,
            await anyio.open_process(command, cwd=REPO_ROOT, env=env, stderr=subprocess.STDOUT) as second,
        ):
            outputs = [BufferedByteReceiveStream(p.stdout) for p in (first, second) if p.stdout is not None]
            assert [await out.receive_until(b"\n", 10_000) for out in outputs] == [b"ready", b"ready"]
            for process in (first, second):
                assert process.stdin is not None
                await process.stdin.send(b"go\n")
            admitted = [int(await out.receive_until(b"\n", 10_000)) for out in outputs]
            assert [await process.wait() for process in (first, second)] == [0, 0]

    assert sum(admitted) == burst, admitted


async def test_a_call_is_refused_while_redis_is_down_and_admitted_once_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = RateLimitsSpec(per_principal=RateLimitSpec(rate=1, burst=100))
    files = _files(_principal())
    called: list[str] = []

    async def call() -> types.CallToolResult:
        called.append("t")
        return types.CallToolResult(content=[])

    with running_redis() as server:
        port = server.port
        limiter = RedisRateLimiter(spec, server.url)
        await limiter.__aenter__()
        controls = CallControls(limiter=limiter)
        assert not (await controls.call(files, "t", {}, call, lambda _: ServedBy())).is_error
    try:
        with caplog.at_level(logging.WARNING):
            refused = await controls.call(files, "t", {}, call, lambda _: ServedBy())
            again = await controls.call(files, "t", {}, call, lambda _: ServedBy())
        assert called == ["t"]
        for result in (refused, again):
            assert result.is_error
            assert result.meta is not None
            assert result.meta[ERROR_META_KEY] == {"type": "RateLimitsUnavailable", "server": None}
        [text] = refused.content
        assert isinstance(text, types.TextContent)
        assert text.text == "the rate limits cannot be checked: Redis cannot be reached (ConnectionError)"
        # The log says where Redis is, once, without its password.
        [failed] = [record for record in caplog.records if "Redis at" in record.getMessage()]
        assert f"redis://:***@127.0.0.1:{port}/0" in failed.getMessage()
        assert REDIS_PASSWORD not in caplog.text

        with running_redis(port):
            assert not (await controls.call(files, "t", {}, call, lambda _: ServedBy())).is_error
        assert called == ["t", "t"]
    finally:
        await limiter.__aexit__(None, None, None)


async def test_the_redis_password_shows_in_no_error_and_no_log(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "Wr0ng-password-for-the-test"
    spec = RateLimitsSpec(per_principal=RateLimitSpec(rate=1, burst=1))
    with caplog.at_level(logging.DEBUG), pytest.raises(RateLimitsUnavailable) as caught:
        async with RedisRateLimiter(spec, f"redis://:{wrong}@127.0.0.1:{redis_server.port}/0"):
            pass

    error = caught.value
    assert error.detail == "Redis refused the credentials (AuthenticationError)"
    assert error.url == f"redis://:***@127.0.0.1:{redis_server.port}/0"
    for shown in (str(error), repr(error), error.detail, caplog.text):
        assert wrong not in shown
        assert REDIS_PASSWORD not in shown
    assert "AuthenticationError" in caplog.text


def test_a_shown_redis_url_hides_its_password_and_a_lone_user_name() -> None:
    assert shown_redis_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    assert shown_redis_url("redis://:pw@redis:6379/1") == "redis://:***@redis:6379/1"
    assert shown_redis_url("rediss://app:pw@cache.internal/0") == "rediss://app:***@cache.internal/0"
    assert shown_redis_url("redis://token@cache") == "redis://***@cache"
    assert shown_redis_url("redis://:pw@[::1]:6380") == "redis://:***@[::1]:6380"
