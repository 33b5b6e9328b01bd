"""Which rate limiter serving uses: this process's buckets by default, the store's when processes share them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from orchestrator import Aggregator, load_config
from orchestrator.auth import InProcessLimiter, SharedRateLimiter
from tests.e2e.harness import write_config

if TYPE_CHECKING:
    from pathlib import Path

    from orchestrator.auth import CallLimiter

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
