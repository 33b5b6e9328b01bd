"""Start-up and shutdown of the aggregator process: no orphans, no blocking on chatty children."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import anyio
import psutil
import pytest
from mcp import Client

from tests.e2e.harness import REPO_ROOT, aggregator_params, fault_entry, write_config

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
        time.sleep(0.05)
    return alive


def _request(message_id: int, method: str, params: dict[str, object]) -> bytes:
    return (json.dumps({"jsonrpc": "2.0", "id": message_id, "method": method, "params": params}) + "\n").encode()


def _start_aggregator(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "serve", "-c", str(config)],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def _call_tool(process: subprocess.Popen[bytes], message_id: int, name: str) -> dict[str, object]:
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(_request(message_id, "tools/call", {"name": name, "arguments": {}}))
    process.stdin.flush()
    while True:
        message = json.loads(process.stdout.readline())
        if message.get("id") == message_id:
            return message


def _handshake(process: subprocess.Popen[bytes]) -> None:
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(
        _request(
            0,
            "initialize",
            {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
        )
    )
    process.stdin.write(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
    process.stdin.flush()
    json.loads(process.stdout.readline())


@pytest.mark.parametrize("how", ["sigterm", "sigint", "stdin_closed"])
def test_shutdown_leaves_no_child_or_grandchild_running(tmp_path: Path, how: str) -> None:
    config = write_config(tmp_path, {"a": fault_entry(), "b": fault_entry()})
    process = _start_aggregator(config)
    try:
        _handshake(process)
        children = [
            int(_call_tool(process, 1, "a__pid")["result"]["structuredContent"]["pid"]),  # type: ignore[index]
            int(_call_tool(process, 2, "b__pid")["result"]["structuredContent"]["pid"]),  # type: ignore[index]
        ]
        grandchild = int(
            _call_tool(process, 3, "a__spawn_grandchild")["result"]["structuredContent"]["pid"]  # type: ignore[index]
        )
        assert all(psutil.pid_exists(pid) for pid in [*children, grandchild])
        if how == "sigterm":
            process.send_signal(signal.SIGTERM)
        elif how == "sigint":
            process.send_signal(signal.SIGINT)
        else:
            assert process.stdin is not None
            process.stdin.close()
        process.wait(timeout=15)
        assert _wait_gone([*children, grandchild], timeout=10) == []
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_a_child_flooding_stderr_never_blocks_the_aggregator(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"loud": fault_entry("--stderr-mb", "20"), "quiet": fault_entry()})
    async with Client(aggregator_params(config)) as client:
        with anyio.fail_after(30):
            result = await client.call_tool("loud__echo", {"text": "heard"})
        assert not result.is_error
