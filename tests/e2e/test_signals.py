"""Signals to a serving aggregator: SIGTERM and SIGINT stop it cleanly, SIGHUP reloads it.

The aggregator serves over streamable HTTP (stdio serving is covered by test_lifecycle and
test_reload) in front of a server that has started a grandchild in its own process group. A
stop leaves no process behind and flushes the spans still buffered; a reload keeps serving,
with the unchanged server, and its grandchild, untouched.
"""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING

import anyio
import mcp_types as types
import psutil
import pytest
from mcp import Client

from tests.e2e.harness import aggregator_command, fault_entry, logged_process, write_config
from tests.otlp_receiver import OtlpReceiver

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

LISTENING = r"listening on (\S+)"


def _alive(pid: int) -> bool:
    return psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    """The pids still alive after waiting (bounded) for all of them to exit."""
    deadline = time.monotonic() + timeout
    alive = [pid for pid in pids if _alive(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if _alive(pid)]
    return alive


async def _pids(client: Client) -> tuple[int, int]:
    """The server's pid, and the pid of a grandchild it starts in its process group."""
    server = await client.call_tool("a__pid", {})
    grandchild = await client.call_tool("a__spawn_grandchild", {})
    assert server.structured_content is not None
    assert grandchild.structured_content is not None
    return int(server.structured_content["pid"]), int(grandchild.structured_content["pid"])


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_sigterm_and_sigint_stop_http_serving_with_spans_flushed_and_no_process_left(
    tmp_path: Path, signum: signal.Signals
) -> None:
    config = write_config(tmp_path, {"a": fault_entry()})
    with OtlpReceiver() as receiver:
        # Spans leave the batch only at shutdown (the schedule is a minute): they arrive if it flushes.
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "60000"}
        async with logged_process(aggregator_command(config), LISTENING, env=env) as (match, log):
            async with Client(match.group(1)) as client:
                server_pid, grandchild_pid = await _pids(client)
                assert _alive(server_pid)
                assert _alive(grandchild_pid)
            assert not receiver.named("tools/call a__spawn_grandchild")
            log.process.send_signal(signum)
            with anyio.fail_after(20):
                status = await log.process.wait()
            await log.wait_for(rf"received {signum.name}; stopped serving HTTP, shutting down")
        assert status == 0
        assert await anyio.to_thread.run_sync(_wait_gone, [server_pid, grandchild_pid], 10.0) == []
        flushed = receiver.named("tools/call a__spawn_grandchild")
        assert any(span.service_name == "mcp-orchestrator" and span.kind == "SERVER" for span in flushed)


async def test_sighup_reloads_http_serving_and_leaves_unchanged_servers_and_their_children_alone(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, {"a": fault_entry()}, serve={"watch": False})
    async with logged_process(aggregator_command(config), LISTENING) as (match, log):
        async with Client(match.group(1)) as client:
            server_pid, grandchild_pid = await _pids(client)
            write_config(tmp_path, {"a": fault_entry(), "b": fault_entry()}, serve={"watch": False})
            log.process.send_signal(signal.SIGHUP)
            await log.wait_for(r"reload \(SIGHUP\) applied: added: b")
            await log.wait_for(r"server 'b' ready")
            echoed = await client.call_tool("b__echo", {"text": "from b"})
            assert _text(echoed) == "from b"
            again = await client.call_tool("a__pid", {})
            assert again.structured_content == {"pid": server_pid}
        assert log.process.returncode is None, "SIGHUP must not stop the server"
        assert _alive(server_pid)
        assert _alive(grandchild_pid)
        log.process.send_signal(signal.SIGTERM)
        with anyio.fail_after(20):
            assert await log.process.wait() == 0
    assert await anyio.to_thread.run_sync(_wait_gone, [server_pid, grandchild_pid], 10.0) == []
