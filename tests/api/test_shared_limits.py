"""Which rate limiter serving uses: this process's buckets by default, the store's when processes share them,
Redis's when ``state.redis_url`` names one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from orchestrator import Aggregator, load_config
from orchestrator.auth import InProcessLimiter, RedisRateLimiter, SharedRateLimiter
from orchestrator.errors import RateLimitsUnavailable
from tests.e2e.harness import write_config
from tests.redis_server import REDIS_PASSWORD, running_redis

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.auth import CallLimiter
    from tests.redis_server import RedisServer

pytestmark = pytest.mark.anyio

LIMITS = {"per_principal": {"rate": 1, "burst": 1}}


async def _limiter_while_serving(aggregator: Aggregator, **choice: Any) -> CallLimiter | None:
    async with aggregator._call_controls(**choice):  # pyright: ignore[reportPrivateUsage]
        return aggregator.server.controls.limiter


async def test_one_process_keeps_its_buckets_in_memory_and_workers_share_theirs_through_the_store(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, {}, serve={"rate_limits": LIMITS}, state={"url": f"sqlite:///{tmp_path / 's.db'}"})
    async with Aggregator(load_config(config)) as aggregator:
        assert isinstance(await _limiter_while_serving(aggregator, over_http=True), InProcessLimiter)
        shared = await _limiter_while_serving(aggregator, over_http=True, shared_limits=True)
        assert isinstance(shared, SharedRateLimiter)
        assert await _limiter_while_serving(aggregator, over_http=False, shared_limits=True) is None  # stdio
        assert aggregator.server.controls.limiter is None  # not serving: no limits


async def test_no_limits_set_means_no_limiter_even_when_shared(tmp_path: Path) -> None:
    config = write_config(tmp_path, {}, state={"url": f"sqlite:///{tmp_path / 's.db'}"})
    async with Aggregator(load_config(config)) as aggregator:
        assert await _limiter_while_serving(aggregator, over_http=True, shared_limits=True) is None


async def test_replicas_on_postgresql_share_their_buckets_without_being_told(tmp_path: Path, postgres_url: str) -> None:
    config = write_config(tmp_path, {}, serve={"rate_limits": LIMITS}, state={"url": postgres_url})
    async with Aggregator(load_config(config)) as aggregator:
        assert isinstance(await _limiter_while_serving(aggregator, over_http=True), SharedRateLimiter)


async def test_a_configured_redis_holds_the_buckets_whether_or_not_processes_share_the_store(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    config = write_config(
        tmp_path,
        {},
        serve={"rate_limits": LIMITS},
        state={"url": f"sqlite:///{tmp_path / 's.db'}", "redis_url": "${REDIS_URL}"},
    )
    async with Aggregator(load_config(config, env={"REDIS_URL": redis_server.url})) as aggregator:
        assert isinstance(await _limiter_while_serving(aggregator, over_http=True), RedisRateLimiter)
        shared = await _limiter_while_serving(aggregator, over_http=True, shared_limits=True)
        assert isinstance(shared, RedisRateLimiter)
        assert await _limiter_while_serving(aggregator, over_http=False) is None  # stdio


async def test_serving_does_not_start_when_the_configured_redis_cannot_be_reached(tmp_path: Path) -> None:
    with running_redis() as server:  # a port that was Redis's a moment ago, and is closed now
        url = server.url
    config = write_config(tmp_path, {}, serve={"rate_limits": LIMITS}, state={"redis_url": "${REDIS_URL}"})
    async with Aggregator(load_config(config, env={"REDIS_URL": url})) as aggregator:
        with pytest.raises(RateLimitsUnavailable) as caught:
            await _limiter_while_serving(aggregator, over_http=True)
    assert caught.value.detail == "Redis cannot be reached (ConnectionError)"
    assert REDIS_PASSWORD not in str(caught.value)
    assert aggregator.server.controls.limiter is None
