"""``serve --transport http --workers N``: N real worker processes on one port, under one supervisor.

Which worker the kernel hands a connection to is not ours to choose, so where a test needs a
request to reach a given worker it sends it to that worker's private socket (in the supervisor's
owner-only directory, which it names in its log): exactly what a sibling does when a
request for a session or round it does not hold lands on it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
import mcp_types as types
import psutil
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.consent_flow import free_port, set_owner_password, sign_in_across
from tests.e2e.harness import REPO_ROOT, aggregator_command, fault_entry, logged_process, write_config

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    from mcp.client.session import ClientRequestContext

    from tests.e2e.harness import ProcessLog

pytestmark = pytest.mark.anyio

WORKERS = 2
LISTENING = r"listening on (\S+) \(2 workers\)"
MARKED_SESSION = re.compile(r"^w(\d)\.[0-9a-f]{32}$")
LEGACY_HEADERS = {
    "accept": "application/json, text/event-stream",
    "content-type": "application/json",
    "mcp-protocol-version": "2025-11-25",
}


@asynccontextmanager
async def _served(tmp_path: Path, *args: str) -> AsyncGenerator[tuple[str, ProcessLog, Path], None]:
    """The aggregator with two workers over one fault server; its URL, log and workers' folder."""
    config = write_config(tmp_path, {"f": fault_entry()})
    command = [*aggregator_command(config), "--workers", str(WORKERS), *args]
    async with logged_process(command, LISTENING, timeout=60) as (match, log):
        folder = Path((await log.wait_for(r"their private sockets are in (\S+)")).group(1))
        yield match.group(1), log, folder


def _worker_socket(folder: Path, index: int) -> Path:
    return folder / f"worker-{index}.sock"


@asynccontextmanager
async def _through_worker(
    folder: Path, index: int, base_url: str = "http://127.0.0.1", cookies: httpx2.Cookies | None = None
) -> AsyncGenerator[httpx2.AsyncClient, None]:
    """An HTTP client whose every request reaches worker ``index`` first."""
    transport = httpx2.AsyncHTTPTransport(uds=str(_worker_socket(folder, index)))
    async with httpx2.AsyncClient(transport=transport, base_url=base_url, cookies=cookies, timeout=30) as http:
        yield http


async def _legacy_session(url: str) -> str:
    """A 2025-11-25 session opened through the public port; its (marked) id."""
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    async with httpx2.AsyncClient(timeout=30) as http:
        opened = await http.post(url, headers=LEGACY_HEADERS, json=initialize)
        assert opened.status_code == 200, opened.text
        session = opened.headers["mcp-session-id"]
        initialized = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        done = await http.post(url, headers={**LEGACY_HEADERS, "mcp-session-id": session}, json=initialized)
        assert done.status_code == 202, done.text
    return session


def _sse_result(body: str) -> dict[str, Any]:
    [data] = [line.removeprefix("data: ") for line in body.splitlines() if line.startswith("data: ")]
    message: dict[str, Any] = json.loads(data)
    return message


def _echo_call(text: str) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": "f__echo", "arguments": {"text": text}},
    }


async def test_a_legacy_session_is_served_whichever_worker_a_request_reaches(tmp_path: Path) -> None:
    async with _served(tmp_path) as (url, _log, folder):
        session = await _legacy_session(url)
        marked = MARKED_SESSION.match(session)
        assert marked is not None, session
        owner = int(marked.group(1))
        headers = {**LEGACY_HEADERS, "mcp-session-id": session}
        for index in range(WORKERS):  # the owner itself, and a sibling that passes it on
            call = _echo_call(f"via {index}")
            async with _through_worker(folder, index) as http:
                answered = await http.post("/mcp", headers=headers, json=call)
            assert answered.status_code == 200, (index, owner, answered.text)
            result = _sse_result(answered.text)["result"]
            assert result["content"][0]["text"] == f"via {index}"
        # A session id no worker handed out is unknown everywhere, as with one process.
        call = _echo_call("again")
        async with _through_worker(folder, 1 - owner) as http:
            unknown = await http.post("/mcp", headers={**headers, "mcp-session-id": f"w{owner}.{'0' * 32}"}, json=call)
            foreign = await http.post("/mcp", headers={**headers, "mcp-session-id": f"w7.{'0' * 32}"}, json=call)
            # Closing the session through the sibling closes it at its owner.
            closed = await http.delete("/mcp", headers=headers)
        assert unknown.status_code == 404
        assert foreign.status_code == 404
        assert closed.status_code == 200, closed.text
        async with _through_worker(folder, owner) as http:
            gone = await http.post("/mcp", headers=headers, json=call)
        assert gone.status_code == 404


async def test_an_sdk_client_on_fresh_connections_keeps_its_session(tmp_path: Path) -> None:
    # No keep-alive: every request is a new connection, which any worker may accept.
    async with (
        _served(tmp_path) as (url, _log, _folder),
        httpx2.AsyncClient(limits=httpx2.Limits(max_keepalive_connections=0), timeout=30) as http,
        Client(streamable_http_client(url, http_client=http), mode="legacy") as client,
    ):
        for number in range(20):
            result = await client.call_tool("f__echo", {"text": str(number)})
            assert not result.is_error
            assert isinstance(result.content[0], types.TextContent)
            assert result.content[0].text == str(number)


async def _elicit(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
    raise AssertionError("the test answers the round by hand")


async def test_an_input_round_is_answered_through_another_worker(tmp_path: Path) -> None:
    async with _served(tmp_path) as (url, _log, folder), Client(url, elicitation_callback=_elicit) as client:
        assert client.protocol_version == "2026-07-28"
        first = await client.session.call_tool("f__elicit", {"question": "colour?"}, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult), first
        assert first.request_state is not None
        marked = re.match(r"^w(\d)\.", first.request_state)
        assert marked is not None, first.request_state
        [(key, _request)] = (first.input_requests or {}).items()
        sibling = 1 - int(marked.group(1))
        answer = types.ElicitResult(action="accept", content={"answer": "blue"})
        async with (
            _through_worker(folder, sibling) as http,
            Client(
                streamable_http_client("http://127.0.0.1/mcp", http_client=http), elicitation_callback=_elicit
            ) as other,
        ):
            done = await other.session.call_tool(
                "f__elicit", {"question": "colour?"}, input_responses={key: answer}, request_state=first.request_state
            )
        assert isinstance(done, types.CallToolResult)
        assert done.structured_content == {"action": "accept", "content": {"answer": "blue"}}


async def test_each_worker_runs_its_own_servers_and_a_dead_worker_is_replaced(tmp_path: Path) -> None:
    async with _served(tmp_path) as (_url, log, folder):
        pids: dict[int, str] = {}
        for index in range(WORKERS):
            async with (
                _through_worker(folder, index) as http,
                Client(streamable_http_client("http://127.0.0.1/mcp", http_client=http)) as client,
            ):
                result = await client.call_tool("f__pid", {})
                assert isinstance(result.content[0], types.TextContent)
                pids[index] = result.content[0].text
        assert pids[0] != pids[1], "each worker has its own downstream process"
        worker_pid = _worker_pids(log)
        os.kill(worker_pid[1], signal.SIGKILL)
        exited = await log.wait_for(r"worker 1 exited with code -9; starting it again", timeout=30)
        await log.wait_for(r"worker 1 is serving again", after=exited.end(), timeout=30)
        async with (
            _through_worker(folder, 1) as http,
            Client(streamable_http_client("http://127.0.0.1/mcp", http_client=http)) as client,
        ):
            assert not (await client.call_tool("f__echo", {"text": "back"})).is_error


def _worker_pids(log: ProcessLog) -> dict[int, int]:
    """Each worker's process id, from the supervisor's children."""
    found: dict[int, int] = {}
    for child in psutil.Process(log.process.pid).children():
        seat = re.search(r"--worker-seat (\d+)/", " ".join(child.cmdline()))
        if seat is not None:
            found[int(seat.group(1))] = child.pid
    assert len(found) == WORKERS, found
    return found


async def test_stopping_the_supervisor_stops_every_worker(tmp_path: Path) -> None:
    async with _served(tmp_path) as (_url, log, folder):
        workers = [psutil_process(pid) for pid in _worker_pids(log).values()]
        log.process.send_signal(signal.SIGTERM)
        with anyio.fail_after(40):
            assert await log.process.wait() == 0
        for worker in workers:
            await _exited(worker, 10)
        assert not folder.exists(), "the private folder (sockets, consent key) is removed"


async def test_workers_stop_by_themselves_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    async with _served(tmp_path) as (_url, log, _folder):
        workers = [psutil_process(pid) for pid in _worker_pids(log).values()]
        log.process.send_signal(signal.SIGKILL)
        await log.process.wait()
        for worker in workers:
            # Their lifelines closed with the supervisor: they drain and exit, orphans no more.
            await _exited(worker, 40)


def psutil_process(pid: int) -> psutil.Process:
    return psutil.Process(pid)


async def _exited(process: psutil.Process, timeout: float) -> None:
    """Wait (bounded) for a process that is not our child to exit."""
    await anyio.to_thread.run_sync(process.wait, timeout)


async def test_the_consent_page_signs_in_across_workers(tmp_path: Path) -> None:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    config = write_config(
        tmp_path,
        {"f": fault_entry()},
        serve={"auth": {"oauth": {"issuer": issuer}}},
        state={"url": f"sqlite:///{tmp_path / 'state.db'}"},
    )
    await anyio.to_thread.run_sync(set_owner_password, config)
    command = [*aggregator_command(config), "--workers", str(WORKERS), "--port", str(port)]
    async with logged_process(command, LISTENING, timeout=60) as (_match, log):
        folder = Path((await log.wait_for(r"their private sockets are in (\S+)")).group(1))
        await sign_in_across(issuer, lambda index, cookies: _through_worker(folder, index, issuer, cookies))


def test_a_bad_worker_count_is_refused_before_anything_starts(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"f": fault_entry()})
    for bad in ("0", "65", "many"):
        done = subprocess.run(
            [*aggregator_command(config), "--workers", bad],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert "--workers" in done.stderr


async def test_a_principal_gets_its_rate_limit_once_across_the_workers(tmp_path: Path) -> None:
    token = "limited-token-canary-41b"
    limits = {"per_tool": {"rate": 0.01, "burst": 1}}
    auth = {"tokens": {"limited": {"env": "LIMITED_TOKEN", "grant": ["*"]}}}
    config = write_config(tmp_path, {"f": fault_entry()}, serve={"auth": auth, "rate_limits": limits})
    command = [*aggregator_command(config), "--workers", str(WORKERS)]
    async with logged_process(command, LISTENING, env={"LIMITED_TOKEN": token}, timeout=60) as (_match, log):
        folder = Path((await log.wait_for(r"their private sockets are in (\S+)")).group(1))
        results: list[types.CallToolResult] = []
        for index in range(WORKERS):  # the same principal, one call through each worker
            async with _through_worker(folder, index) as http:
                http.headers["authorization"] = f"Bearer {token}"
                async with Client(streamable_http_client("http://127.0.0.1/mcp", http_client=http)) as client:
                    results.append(await client.call_tool("f__echo", {"text": str(index)}))
    assert not results[0].is_error
    assert results[1].is_error, "the second worker saw the bucket the first one emptied"
    assert (results[1].meta or {})["io.github.mcp-orchestrator/error"]["type"] == "RateLimitedError"
