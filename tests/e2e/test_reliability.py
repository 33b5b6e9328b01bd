"""Reliability under misbehaving downstreams and load (reliability-security.md §5, rows 4, 5, 7, 8, 14).

Oversized results and stdout lines, garbage on stdout, the aggregator SIGKILLed, a flapping
server, and 200 concurrent calls from two clients. Every wait is bounded by ``fail_after``;
polling is used only where no event exists (another process's exit, a restart's readiness).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

import anyio
import mcp_types as types
import psutil
import pytest
from mcp import Client
from mcp.client.stdio import stdio_client

from tests.e2e.harness import REPO_ROOT, aggregator_params, fault_entry, http_aggregator, write_config
from tests.fakes import EVENTS_FILE_ENV, read_events

if TYPE_CHECKING:
    from collections.abc import Callable, Generator
    from pathlib import Path

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


# --------------------------------------------------------------------------- helpers


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def _pid(client: Client, tool: str) -> int:
    with anyio.fail_after(10):
        result = await client.call_tool(tool, {})
    assert not result.is_error, _text(result)
    assert result.structured_content is not None, _text(result)
    return int(result.structured_content["pid"])


def _logged_client(config: Path, log: TextIO) -> Client:
    """A client of ``orchestrator serve`` over stdio whose stderr (its log) goes to ``log``."""
    return Client(stdio_client(aggregator_params(config), errlog=log))


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def _wait_gone(pids: list[int], timeout: float) -> tuple[list[int], float]:
    """Poll (no event exists for a non-child's exit) until ``pids`` are gone; (left alive, seconds)."""
    started = time.monotonic()
    alive = list(pids)
    with anyio.move_on_after(timeout):
        while alive := [pid for pid in alive if not _gone(pid)]:  # noqa: ASYNC110
            await anyio.sleep(0.02)
    return alive, time.monotonic() - started


async def _wait_restarted(client: Client, tool: str, old_pid: int, timeout: float) -> tuple[int, float]:
    """Call ``tool`` (a `pid` tool) until a new process answers; (its pid, seconds waited).

    Polls: the aggregator signals nothing when a restart completes with an unchanged catalogue.
    """
    started = time.monotonic()
    with anyio.fail_after(timeout):
        while True:
            result = await client.call_tool(tool, {})
            if not result.is_error and result.structured_content is not None:
                pid = int(result.structured_content["pid"])
                if pid != old_pid:
                    return pid, time.monotonic() - started
            await anyio.sleep(0.1)


@contextmanager
def _peak_rss(pid: int, interval: float = 0.005) -> Generator[Callable[[], int]]:
    """Sample ``pid``'s RSS from a thread while the block runs; yields a getter for the peak."""
    process = psutil.Process(pid)
    peak = process.memory_info().rss
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            try:
                peak = max(peak, process.memory_info().rss)
            except psutil.NoSuchProcess:
                return
            stop.wait(interval)

    thread = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    thread.start()
    try:
        yield lambda: peak
    finally:
        stop.set()
        thread.join(timeout=5)


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# --------------------------------------------------------------------------- 1. big results and lines


async def test_a_5_mib_tool_result_passes_through_the_aggregator_intact(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"bulk": fault_entry()})
    line = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_\n"
    expected = (line * (5120 * 16))[: 5120 * 1024]
    async with Client(aggregator_params(config)) as client:
        with anyio.fail_after(20):
            result = await client.call_tool("bulk__big", {"kb": 5120})
        assert not result.is_error, _text(result)[:500]
        text = _text(result)
        assert len(text) == 5 * MIB
        assert text == expected
        # And the connection is still fine for ordinary calls.
        with anyio.fail_after(5):
            assert _text(await client.call_tool("bulk__echo", {"text": "after"})) == "after"


async def test_a_stdout_line_over_the_cap_fails_its_call_promptly_with_bounded_memory_and_the_server_restarts(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, {"flood": fault_entry("--stdout-tools"), "calm": fault_entry()})
    async with Client(aggregator_params(config)) as client:
        flood_pid = await _pid(client, "flood__pid")
        calm_pid = await _pid(client, "calm__pid")
        aggregator = psutil.Process(flood_pid).ppid()
        assert psutil.Process(calm_pid).ppid() == aggregator
        baseline = psutil.Process(aggregator).memory_info().rss

        with _peak_rss(aggregator) as peak:
            started = time.monotonic()
            with anyio.fail_after(20):
                result = await client.call_tool("flood__line_flood", {"mb": 40})
            elapsed = time.monotonic() - started
            # Another server answers while (and right after) the flood is handled.
            with anyio.fail_after(5):
                assert _text(await client.call_tool("calm__echo", {"text": "still here"})) == "still here"
        growth = peak() - baseline
        print(f"\nline flood: call failed after {elapsed:.2f}s; aggregator RSS +{growth / MIB:.1f} MiB at peak")

        assert result.is_error, _text(result)[:500]
        assert "flood" in _text(result)
        assert elapsed < 5.0, f"the caller waited {elapsed:.2f}s for a connection that was over its line cap"
        assert growth < 48 * MIB, f"aggregator RSS grew by {growth / MIB:.1f} MiB"

        new_pid, waited = await _wait_restarted(client, "flood__pid", flood_pid, timeout=20)
        print(f"line flood: server restarted as pid {new_pid} after {waited:.2f}s more")
        assert _gone(flood_pid)
        with anyio.fail_after(5):
            assert _text(await client.call_tool("flood__echo", {"text": "back"})) == "back"
            assert await _pid(client, "calm__pid") == calm_pid


async def test_a_stdout_line_over_the_cap_leaves_no_file_descriptor_behind_after_the_restart(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"flood": fault_entry("--stdout-tools")})
    async with Client(aggregator_params(config)) as client:
        flood_pid = await _pid(client, "flood__pid")
        aggregator = psutil.Process(psutil.Process(flood_pid).ppid())
        before = aggregator.num_fds()
        with anyio.fail_after(20):
            result = await client.call_tool("flood__line_flood", {"mb": 40})
        assert result.is_error
        await _wait_restarted(client, "flood__pid", flood_pid, timeout=20)
        after = aggregator.num_fds()
        print(f"\nline flood: aggregator fds {before} -> {after} after one over-cap restart")
        assert after <= before, f"{after - before} file descriptor(s) leaked"


# --------------------------------------------------------------------------- 2. garbage on stdout


async def test_garbage_lines_on_a_servers_stdout_are_logged_and_its_calls_still_succeed(tmp_path: Path) -> None:
    events = tmp_path / "events.log"
    log_path = tmp_path / "aggregator.log"
    config = write_config(
        tmp_path,
        {
            "noisy": fault_entry(
                "--garbage", "20", "--stdout-tools", "--start-event", env={EVENTS_FILE_ENV: str(events)}
            )
        },
    )
    with log_path.open("w", encoding="utf-8") as log:
        async with _logged_client(config, log) as client:
            pid = await _pid(client, "noisy__pid")  # 20 garbage lines preceded the handshake
            with anyio.fail_after(10):
                echoed = await client.call_tool("noisy__echo", {"text": "before"})
                noise = await client.call_tool("noisy__garbage", {"n": 50})
                after = await client.call_tool("noisy__echo", {"text": "after"})
            assert _text(echoed) == "before"
            assert not noise.is_error, _text(noise)
            assert _text(noise) == "wrote 50 garbage lines"
            assert _text(after) == "after"
            assert await _pid(client, "noisy__pid") == pid  # the same connection throughout

    spawns = [line for line in read_events(events) if line.startswith("spawned ")]
    assert len(spawns) == 1, spawns
    logged = log_path.read_text(encoding="utf-8")
    unreadable = [line for line in logged.splitlines() if "'noisy' sent an unreadable message" in line]
    # They are logged, rate-limited (the first ten, then every hundredth), with a running count.
    assert len(unreadable) == 10, logged[-4000:]
    assert "(10 so far)" in unreadable[-1]


# --------------------------------------------------------------------------- 3. aggregator SIGKILLed


def _request(message_id: int, method: str, params: dict[str, Any]) -> bytes:
    return (json.dumps({"jsonrpc": "2.0", "id": message_id, "method": method, "params": params}) + "\n").encode()


async def test_when_the_aggregator_is_sigkilled_its_stdio_children_exit_within_3_seconds(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"a": fault_entry(), "b": fault_entry()})
    process = subprocess.Popen(  # noqa: ASYNC220 - starting it does not block; its pipes are read off-loop
        [sys.executable, "-m", "orchestrator", "serve", "-c", str(config)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    stdin, stdout = process.stdin, process.stdout

    async def reply(message_id: int) -> dict[str, Any]:
        while True:  # a blocked readline is released when the finally below kills the process
            line = await anyio.to_thread.run_sync(stdout.readline, abandon_on_cancel=True)
            assert line, "the aggregator closed its stdout"
            message = json.loads(line)
            if message.get("id") == message_id:
                return message

    def send(data: bytes) -> None:
        stdin.write(data)
        stdin.flush()

    children: list[int] = []
    try:
        with anyio.fail_after(30):
            info = {"name": "t", "version": "0"}
            send(_request(0, "initialize", {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": info}))
            await reply(0)
            send(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
            for message_id, tool in enumerate(["a__pid", "b__pid"], start=1):
                send(_request(message_id, "tools/call", {"name": tool, "arguments": {}}))
                children.append(int((await reply(message_id))["result"]["structuredContent"]["pid"]))
        assert all(psutil.Process(pid).ppid() == process.pid for pid in children)

        process.send_signal(signal.SIGKILL)
        process.wait(timeout=5)
        alive, elapsed = await _wait_gone(children, timeout=5)
        print(f"\naggregator SIGKILLed: children gone after {elapsed:.2f}s")
        assert alive == [], f"children {alive} still running {elapsed:.1f}s after the aggregator died"
        assert elapsed < 3.0, f"children took {elapsed:.2f}s to exit"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in children:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


# --------------------------------------------------------------------------- 4. flapping server


_RETRY_LINE = re.compile(r"server 'flap' unavailable \(attempt (\d+)\): .*; retrying in ([\d.]+)s")


async def test_a_flapping_server_is_restarted_with_growing_back_off_forever_while_others_keep_serving(
    tmp_path: Path,
) -> None:
    events = tmp_path / "events.log"
    log_path = tmp_path / "aggregator.log"
    window = 8.0
    config = write_config(
        tmp_path,
        {
            "flap": fault_entry("--crash-after-seconds", "0.5", "--start-event", env={EVENTS_FILE_ENV: str(events)}),
            "steady": fault_entry(),
        },
    )
    steady_calls = 0
    with log_path.open("w", encoding="utf-8") as log:
        async with _logged_client(config, log) as client:
            steady_pid = await _pid(client, "steady__pid")
            spawns = [line for line in read_events(events) if line.startswith("spawned ")]
            assert spawns, "the flapping server never started"
            first = float(spawns[0].split()[2])
            # Observe for `window` seconds after its first start; the other server must answer throughout.
            while time.time() < first + window:
                with anyio.fail_after(3):
                    result = await client.call_tool("steady__echo", {"text": f"tick {steady_calls}"})
                assert _text(result) == f"tick {steady_calls}", _text(result)
                steady_calls += 1
                await anyio.sleep(0.2)  # the call rate of the observer, not a wait for a condition
            assert await _pid(client, "steady__pid") == steady_pid

    starts = [float(line.split()[2]) for line in read_events(events) if line.startswith("spawned ")]
    starts = [t for t in starts if t <= first + window]
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(starts)]
    retries = [(int(m.group(1)), float(m.group(2))) for m in _RETRY_LINE.finditer(log_path.read_text("utf-8"))]
    print(f"\nflapping: {len(starts)} starts in {window:g}s, gaps {gaps}; retries (attempt, wait) {retries}")
    print(f"flapping: steady answered {steady_calls} calls meanwhile")

    assert len(starts) > 2, "the supervisor stopped trying"
    assert len(starts) < 15, "a restart storm, not back-off"
    # Each connection died young, so the back-off never reset: attempts count up 1, 2, 3, ...
    # and attempt n waits at most 0.5 * 2**(n-1) s (full jitter under a growing cap).
    attempts = [attempt for attempt, _ in retries]
    assert attempts == list(range(1, len(attempts) + 1)), attempts
    assert len(attempts) >= 2
    for attempt, wait in retries:
        assert wait <= 0.5 * 2 ** (attempt - 1) + 0.05, (attempt, wait)
    assert steady_calls >= window / 0.5


# --------------------------------------------------------------------------- 5. load


async def test_200_concurrent_calls_from_2_http_clients_across_5_servers_are_all_answered_each_with_its_own_nonce(
    tmp_path: Path,
) -> None:
    servers = [f"s{i}" for i in range(5)]
    config = write_config(tmp_path, {name: fault_entry() for name in servers})
    per_client = 100
    async with http_aggregator(config) as url, Client(url) as first, Client(url) as second:
        # Warm up: both sessions see every server before the burst.
        with anyio.fail_after(20):
            for client in (first, second):
                for name in servers:
                    assert _text(await client.call_tool(f"{name}__echo", {"text": "warm"})) == "warm"

        sent: dict[str, str] = {}
        answers: dict[str, str] = {}
        structured: dict[str, Any] = {}
        failures: list[str] = []
        latencies: list[float] = []

        async def call(client: Client, nonce: str, tool: str) -> None:
            started = time.monotonic()
            try:
                result = await client.call_tool(tool, {"text": nonce})
            except Exception as exc:  # a lost call is counted, not raised
                failures.append(f"{nonce}: {type(exc).__name__}: {exc}")
                return
            latencies.append(time.monotonic() - started)
            if result.is_error:
                failures.append(f"{nonce}: {_text(result)}")
                return
            answers[nonce] = _text(result)
            content: dict[str, Any] = result.structured_content or {}
            structured[nonce] = content.get("text")

        burst_started = time.monotonic()
        with anyio.fail_after(45):
            async with anyio.create_task_group() as tg:
                for c, client in enumerate((first, second)):
                    for i in range(per_client):
                        nonce = f"nonce-{c}-{i}-{uuid.uuid4().hex}"
                        tool = f"{servers[i % len(servers)]}__echo"
                        sent[nonce] = tool
                        tg.start_soon(call, client, nonce, tool)
        burst = time.monotonic() - burst_started

        p50, p99 = _percentile(latencies, 0.50), _percentile(latencies, 0.99)
        print(
            f"\nload: {len(sent)} concurrent calls in {burst:.2f}s; "
            f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {max(latencies or [0]) * 1000:.0f} ms, "
            f"mean {statistics.fmean(latencies or [0]) * 1000:.0f} ms"
        )
        lost = [nonce for nonce in sent if nonce not in answers]
        crossed = [n for n, text in answers.items() if text != n or structured[n] != n]
        assert failures == [], failures[:10]
        assert len(sent) == 2 * per_client
        assert lost == [], f"{len(lost)} calls lost"
        assert crossed == [], f"{len(crossed)} cross-wired, e.g. {crossed[:3]}"
        assert burst < 30.0
