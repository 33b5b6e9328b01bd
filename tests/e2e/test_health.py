"""Health while serving: hung or lost servers are withdrawn and come back; the HTTP endpoints.

A server that stops answering (its process frozen) fails its probes and is marked unhealthy:
its tools leave the list, connected clients get ``list_changed``, and a call to one of them
is a tool error saying why. When it answers again the tools return. A server that dies and
cannot restart is withdrawn the same way, and returns once it starts again.
``/healthz`` and ``/readyz`` answer without a token; ``/status`` and ``orchestrator status``
show each server's state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import anyio
import httpx2
import mcp_types as types
import pytest
from mcp import Client

from tests.e2e.harness import REPO_ROOT, Notifications, aggregator_command, fault_entry, logged_process, write_config

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

LISTENING = r"listening on (\S+)"
FAST_HEALTH = {"interval": "300ms", "timeout": "700ms", "failures": 2}


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def _names(client: Client) -> set[str]:
    return {tool.name for tool in (await client.list_tools()).tools}


async def _until_names(client: Client, changes: Notifications, present: bool, name: str) -> None:
    """Wait (bounded) for ``list_changed`` notifications until ``name`` is (or is not) listed."""
    with anyio.fail_after(30):
        while True:
            seen = changes.count
            if (name in await _names(client)) == present:
                return
            await changes.reach(seen + 1)


async def test_a_hung_server_is_withdrawn_with_list_changed_and_returns_when_it_answers_again(tmp_path: Path) -> None:
    servers = {
        "frozen": fault_entry("--ops-tools", timeout="1s", health=FAST_HEALTH, retry={"max_attempts": 1}),
        "fine": fault_entry(health=FAST_HEALTH),
    }
    config = write_config(tmp_path, servers)
    changes = Notifications(types.ToolListChangedNotification)
    async with (
        logged_process(aggregator_command(config), LISTENING) as (match, log),
        Client(match.group(1), mode="legacy", message_handler=changes) as client,
    ):
        assert {"frozen__echo", "fine__echo"} <= await _names(client)
        # The process stops answering anything, pings included, for 8 s; the call times out.
        frozen = await client.call_tool("frozen__freeze", {"seconds": 8})
        assert frozen.is_error
        assert "timed out" in _text(frozen)
        await _until_names(client, changes, False, "frozen__echo")
        await log.wait_for(r"server 'frozen' is unhealthy: 2 health probes failed")
        assert "fine__echo" in await _names(client), "the other server is not affected"
        refused = await client.call_tool("frozen__echo", {"text": "hello?"})
        assert refused.is_error
        assert "server 'frozen': unhealthy (2 health probes failed" in _text(refused)
        assert "its tools are withdrawn until it recovers" in _text(refused)
        fine = await client.call_tool("fine__echo", {"text": "still here"})
        assert _text(fine) == "still here"
        # It thaws: the next probe is answered and its tools come back.
        await _until_names(client, changes, True, "frozen__echo")
        await log.wait_for(r"server 'frozen' is healthy again")
        back = await client.call_tool("frozen__echo", {"text": "back"})
        assert _text(back) == "back"


async def test_a_server_that_cannot_restart_is_withdrawn_until_it_starts_again(tmp_path: Path) -> None:
    blocker = tmp_path / "do-not-start"
    health = {"interval": "30s", "timeout": "1s"}
    servers = {"dies": fault_entry("--fail-start-file", str(blocker), health=health), "fine": fault_entry()}
    config = write_config(tmp_path, servers)
    changes = Notifications(types.ToolListChangedNotification)
    async with (
        logged_process(aggregator_command(config), LISTENING) as (match, log),
        Client(match.group(1), mode="legacy", message_handler=changes) as client,
    ):
        assert "dies__echo" in await _names(client)
        blocker.touch()
        crashed = await client.call_tool("dies__crash", {})
        assert crashed.is_error
        await _until_names(client, changes, False, "dies__echo")
        await log.wait_for(r"server 'dies' is unhealthy: (not connected|failed to start)")
        blocker.unlink()
        await _until_names(client, changes, True, "dies__echo")
        back = await client.call_tool("dies__echo", {"text": "back"})
        assert _text(back) == "back"


async def test_with_on_unhealthy_keep_a_dead_servers_tools_stay_listed(tmp_path: Path) -> None:
    blocker = tmp_path / "do-not-start"
    health = {"timeout": "500ms", "on_unhealthy": "keep"}
    config = write_config(tmp_path, {"dies": fault_entry("--fail-start-file", str(blocker), health=health)})
    async with logged_process(aggregator_command(config), LISTENING) as (match, log):
        await log.wait_for(r"server 'dies' ready")
        async with Client(match.group(1), mode="legacy") as client:
            blocker.touch()
            await client.call_tool("dies__crash", {})
            await log.wait_for(r"server 'dies' is unhealthy")
            assert "dies__echo" in await _names(client)
            result = await client.call_tool("dies__echo", {"text": "x"})
            assert result.is_error
            assert "not connected" in _text(result)


async def _get(url: str, path: str, token: str | None = None) -> httpx2.Response:
    base = url.rsplit("/", 1)[0]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient() as http:
        return await http.get(base + path, headers=headers)


def _env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("ORCHESTRATOR_")}


def _status_command(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", "status", "-c", str(config), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_healthz_and_readyz_need_no_token_status_does_and_orchestrator_status_reads_it(
    tmp_path: Path,
) -> None:
    token = "status-token-0123456789"
    blocker = tmp_path / "do-not-start"
    blocker.touch()
    servers = {"good": fault_entry(), "down": fault_entry("--fail-start-file", str(blocker))}
    env = {"ORCHESTRATOR_TOKENS": token}
    async with logged_process(aggregator_command(write_config(tmp_path, servers)), LISTENING, env=env) as (match, log):
        url = match.group(1)
        await log.wait_for(r"server 'good' ready")
        await log.wait_for(r"server 'down' unavailable")
        healthz = await _get(url, "/healthz")
        assert (healthz.status_code, healthz.text) == (200, "ok\n")
        readyz = await _get(url, "/readyz")
        assert (readyz.status_code, readyz.text) == (503, "not ready\n")
        assert (await _get(url, "/status")).status_code == 401
        document: dict[str, Any] = (await _get(url, "/status", token)).json()
        by_name = {server["name"]: server for server in document["servers"]}
        assert by_name["good"]["healthy"] is True
        assert by_name["good"]["tools"] == 15
        assert by_name["down"]["healthy"] is False
        assert "failed to start" in by_name["down"]["health_reason"]
        assert document["ready"] is False
        assert token not in json.dumps(document)

        port = url.split(":")[-1].split("/")[0]
        config = write_config(tmp_path, servers, serve={"port": int(port)})
        shown = await anyio.to_thread.run_sync(_status_command, config, {**_env(), **env})
        assert shown.returncode == 1, shown.stderr
        assert "NOT READY" in shown.stdout
        assert "ok   good" in shown.stdout
        assert "FAIL down" in shown.stdout
        assert "failed to start" in shown.stdout
        refused = await anyio.to_thread.run_sync(_status_command, config, _env())
        assert refused.returncode == 2
        assert "HTTP 401" in refused.stderr

        blocker.unlink()
        await log.wait_for(r"server 'down' ready")
        with anyio.fail_after(10):
            while (await _get(url, "/readyz")).status_code != 200:  # noqa: ASYNC110 - an HTTP endpoint: no event to await
                await anyio.sleep(0.05)
        shown = await anyio.to_thread.run_sync(_status_command, config, {**_env(), **env}, "--json")
        assert shown.returncode == 0, shown.stdout
        assert json.loads(shown.stdout)["ready"] is True
