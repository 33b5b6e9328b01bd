"""A failing server is not hammered (circuit breaker); safe calls survive a transport fault (retries)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import mcp_types as types
import pytest
from mcp import Client

from tests.e2e.harness import aggregator_params, fault_entry, http_fault_server, write_config
from tests.fakes import EVENTS_FILE_ENV, read_events

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


def _count(events: Path, prefix: str) -> int:
    return sum(1 for line in read_events(events) if line.startswith(prefix))


async def test_consecutive_timeouts_open_the_breaker_calls_fail_fast_and_a_trial_call_closes_it(
    tmp_path: Path,
) -> None:
    events = tmp_path / "events.log"
    breaker = {"consecutive_failures": 3, "open_for": "2s"}
    entry = fault_entry(env={EVENTS_FILE_ENV: str(events)}, timeout="300ms", circuit_breaker=breaker)
    config = write_config(tmp_path, {"slow": entry})
    async with Client(aggregator_params(config)) as client:
        for _ in range(3):
            timed_out = await client.call_tool("slow__hang", {})
            assert "timed out after 0.3s" in _text(timed_out)
        refused = await client.call_tool("slow__hang", {})
        assert refused.is_error
        message = _text(refused)
        assert "server 'slow': circuit open after 3 consecutive failures (last: timed out)" in message
        assert "failing fast, next try in" in message
        assert _count(events, "started hang") == 3, "the call reached the server while the breaker was open"

        # After the open period one trial call goes through; its success closes the breaker.
        with anyio.fail_after(10):
            while _text(answered := await client.call_tool("slow__echo", {"text": "trial"})) != "trial":
                assert "circuit open" in _text(answered)
                await anyio.sleep(0.1)
        again = await client.call_tool("slow__echo", {"text": "closed"})
        assert _text(again) == "closed"


async def test_a_read_only_call_is_retried_past_a_503_and_a_non_idempotent_one_is_not(tmp_path: Path) -> None:
    events = tmp_path / "events.log"
    async with http_fault_server("--http-fail-every", "2", env={EVENTS_FILE_ENV: str(events)}) as (url, _process):
        config = write_config(tmp_path, {"flaky": {"url": url}})
        async with Client(aggregator_params(config)) as client:
            first = await client.call_tool("flaky__echo", {"text": "one"})  # POST 1
            assert _text(first) == "one"
            second = await client.call_tool("flaky__echo", {"text": "two"})  # POST 2: 503, retried as POST 3
            assert not second.is_error, _text(second)
            assert _text(second) == "two"
            assert _count(events, "http503") == 1
            # spawn_grandchild is neither read-only nor idempotent: its 503 (POST 4) comes back as is.
            unsafe = await client.call_tool("flaky__spawn_grandchild", {})
            assert unsafe.is_error
            assert "server 'flaky': HTTP 503 during tools/call spawn_grandchild" in _text(unsafe)
            assert _count(events, "http503") == 2


async def test_with_retries_off_a_read_only_call_fails_on_the_first_fault(tmp_path: Path) -> None:
    events = tmp_path / "events.log"
    async with http_fault_server("--http-fail-every", "1", env={EVENTS_FILE_ENV: str(events)}) as (url, _process):
        config = write_config(tmp_path, {"flaky": {"url": url, "retry": {"max_attempts": 1}}})
        async with Client(aggregator_params(config)) as client:
            result = await client.call_tool("flaky__echo", {"text": "x"})
            assert result.is_error
            assert "HTTP 503" in _text(result)
            assert _count(events, "http503") == 1
