"""Dead, hanging and flaky downstream servers: timely errors for their calls only."""

from __future__ import annotations

import os
import signal
import time
from functools import partial
from typing import TYPE_CHECKING

import anyio
import mcp_types as types
import pytest
from mcp import Client

from tests.e2e.harness import (
    aggregator_command,
    aggregator_params,
    events_seen,
    fault_entry,
    logged_process,
    write_config,
)
from tests.fakes import EVENTS_FILE_ENV, wait_for_event

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

LISTENING = r"listening on (\S+)"


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def _pid(client: Client, tool: str) -> int:
    result = await client.call_tool(tool, {})
    assert result.structured_content is not None, _text(result)
    return int(result.structured_content["pid"])


async def test_killed_server_fails_its_call_within_a_second_others_keep_serving_and_it_returns(
    tmp_path: Path,
) -> None:
    events = tmp_path / "events.log"
    # Retries off: `hang` is read-only, so by default it would be tried again once the server is back.
    victim = fault_entry(env={EVENTS_FILE_ENV: str(events)}, retry={"max_attempts": 1})
    config = write_config(tmp_path, {"victim": victim, "bystander": fault_entry()})
    # Over HTTP, so the aggregator's log (which says when the victim is back) can be read as it is written.
    async with logged_process(aggregator_command(config), LISTENING) as (match, log), Client(match.group(1)) as client:
        victim_pid = await _pid(client, "victim__pid")
        first_ready = await log.wait_for(r"server 'victim' ready")
        results: list[types.CallToolResult] = []
        finished: list[float] = []
        killed_at = 0.0

        async def hung_call() -> None:
            results.append(await client.call_tool("victim__hang", {}))
            finished.append(time.monotonic())

        async with anyio.create_task_group() as tg:
            tg.start_soon(hung_call)
            await events_seen(events, "started hang")  # the call reached the server
            killed_at = time.monotonic()
            os.kill(victim_pid, signal.SIGKILL)
            with anyio.fail_after(5):
                other = await client.call_tool("bystander__echo", {"text": "still here"})
            assert _text(other) == "still here"

        [result] = results
        assert result.is_error
        assert "victim" in _text(result)
        elapsed = finished[0] - killed_at
        assert elapsed < 1.0, f"the caller waited {elapsed:.2f}s"

        # It comes back on its own, as a new process.
        await log.wait_for(r"server 'victim' ready", after=first_ready.end())
        again = await client.call_tool("victim__pid", {})
        assert again.structured_content is not None, _text(again)
        assert again.structured_content["pid"] != victim_pid


async def test_hanging_tool_hits_its_timeout_and_the_server_sees_the_cancellation(tmp_path: Path) -> None:
    events = tmp_path / "events.log"
    config = write_config(tmp_path, {"slowpoke": fault_entry(env={EVENTS_FILE_ENV: str(events)}, timeout="1s")})
    async with Client(aggregator_params(config)) as client:
        started = time.monotonic()
        result = await client.call_tool("slowpoke__hang", {})
        elapsed = time.monotonic() - started
        assert result.is_error
        assert "slowpoke" in _text(result)
        assert "timed out" in _text(result)
        assert 0.9 < elapsed < 5.0
        line = await anyio.to_thread.run_sync(lambda: wait_for_event(events, "cancelled hang"))
        assert line.startswith("cancelled hang")
        # The server is still healthy afterwards.
        assert _text(await client.call_tool("slowpoke__echo", {"text": "ok"})) == "ok"


async def test_progress_from_the_server_reaches_the_callers_token(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"f": fault_entry()})
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    async with Client(aggregator_params(config)) as client:
        result = await client.call_tool("f__slow", {"seconds": 0.5, "steps": 4}, progress_callback=on_progress)
    assert not result.is_error
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


async def test_callers_cancellation_reaches_the_downstream_server(tmp_path: Path) -> None:
    events = tmp_path / "events.log"
    config = write_config(tmp_path, {"f": fault_entry(env={EVENTS_FILE_ENV: str(events)})})
    async with Client(aggregator_params(config), mode="legacy") as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(partial(client.call_tool, "f__hang", {}))
            await events_seen(events, "started hang")
            tg.cancel_scope.cancel()
        line = await anyio.to_thread.run_sync(lambda: wait_for_event(events, "cancelled hang"))
        assert line.startswith("cancelled hang")
        assert _text(await client.call_tool("f__echo", {"text": "ok"})) == "ok"


async def test_a_servers_configured_secret_never_reaches_the_caller_in_an_error(tmp_path: Path) -> None:
    secret = "CANARY-env-secret-77"
    # A secret that contains the other is masked whole, not as '***' plus its readable rest.
    longer = f"{secret}-signed-part"
    config = write_config(tmp_path, {"f": fault_entry(env={"API_KEY": secret, "SIGNED_KEY": longer})})
    async with Client(aggregator_params(config)) as client:
        result = await client.call_tool("f__fail", {"message": f"auth failed with key {secret}, then {longer}"})
    assert result.is_error
    assert secret not in _text(result)
    assert "signed-part" not in _text(result)
    assert "auth failed with key ***, then ***" in _text(result)
