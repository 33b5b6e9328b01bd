"""Prompts, resources, HTTP downstream servers and the one-shot CLI commands."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import anyio
import mcp_types as types
import pytest
from mcp import Client

from tests.e2e.harness import (
    REPO_ROOT,
    aggregator_params,
    fault_entry,
    http_fault_server,
    served_process,
    write_config,
)

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


def _text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


async def test_prompts_and_resources_are_merged_and_routed(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        {
            "f": fault_entry(),
            "g": fault_entry(),
            "tickets": {"command": sys.executable, "args": ["-m", "examples.servers.tracker"], "cwd": str(REPO_ROOT)},
        },
    )
    async with Client(aggregator_params(config)) as client:
        prompts = {prompt.name for prompt in (await client.list_prompts()).prompts}
        assert {"f__greet", "g__greet", "tickets__triage_ticket"} <= prompts
        greeting = await client.get_prompt("g__greet", {"name": "Ada"})
        assert any("Ada" in str(message.content) for message in greeting.messages)

        uris = {str(resource.uri) for resource in (await client.list_resources()).resources}
        # Both fault servers offer fault://static: each is exposed under its server's name.
        assert {"f+fault://static", "g+fault://static", "tracker://about"} <= uris
        static = await client.read_resource("g+fault://static")
        assert [str(c.uri) for c in static.contents] == ["g+fault://static"]
        templates = (await client.list_resource_templates()).resource_templates
        assert "tracker://tickets/{id}" in {t.uri_template for t in templates}
        ticket = await client.read_resource("tracker://tickets/TCK-101")
        assert "TCK-101" in str(ticket.contents[0])
        with pytest.raises(Exception, match="unknown resource"):
            await client.read_resource("nowhere://x")


async def test_streamable_http_downstream_with_headers_is_aggregated(tmp_path: Path) -> None:
    async with http_fault_server() as (url, _process):
        config = write_config(
            tmp_path,
            {"remote": {"url": url, "headers": {"X-Api-Key": "CANARY-header-9"}}, "local": fault_entry()},
        )
        async with Client(aggregator_params(config)) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert {"remote__echo", "local__echo"} <= names
            assert _text(await client.call_tool("remote__echo", {"text": "over http"})) == "over http"


async def test_a_dead_http_downstream_fails_its_calls_quickly(tmp_path: Path) -> None:
    async with http_fault_server() as (url, process):
        config = write_config(tmp_path, {"remote": {"url": url, "timeout": "5s"}, "local": fault_entry()})
        async with Client(aggregator_params(config)) as client:
            assert not (await client.call_tool("remote__echo", {"text": "x"})).is_error
            process.kill()
            await process.wait()
            with anyio.fail_after(10):
                result = await client.call_tool("remote__echo", {"text": "x"})
            assert result.is_error
            assert "remote" in _text(result)
            assert _text(await client.call_tool("local__echo", {"text": "fine"})) == "fine"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_call_prints_the_result_and_exits_1_on_an_error_result(tmp_path: Path) -> None:
    config = str(write_config(tmp_path, {"f": fault_entry()}))
    ok = _cli("call", "f__add", "-c", config, "--args", '{"a": 2, "b": 3}')
    assert ok.returncode == 0, ok.stderr
    assert '"sum": 5' in ok.stdout
    by_key = _cli("call", "f__add", "-c", config, "--arg", "a=2", "--arg", "b=40")
    assert '"sum": 42' in by_key.stdout, by_key.stderr
    failed = _cli("call", "f__fail", "-c", config, "--args", '{"message": "it broke"}')
    assert failed.returncode == 1
    assert "it broke" in failed.stdout


def test_an_invalid_config_is_reported_with_file_and_key_before_anything_starts(tmp_path: Path) -> None:
    bad = tmp_path / "orchestrator.yaml"
    bad.write_text("servers:\n  f:\n    comand: python\n    env: {TOKEN: CANARY-secret-1}\n", encoding="utf-8")
    completed = _cli("tools", "-c", str(bad))
    assert completed.returncode == 2
    assert str(bad) in completed.stderr
    assert "servers.f" in completed.stderr
    assert "CANARY" not in completed.stderr


async def test_a_legacy_sse_downstream_is_aggregated(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "examples.servers.tracker", "--transport", "sse", "--port", "0"]
    async with served_process(command, r"Uvicorn running on http://127\.0\.0\.1:(\d+)") as (match, _process):
        url = f"http://127.0.0.1:{match.group(1)}/sse"
        config = write_config(tmp_path, {"legacy": {"url": url, "type": "sse"}})
        async with Client(aggregator_params(config)) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert "legacy__get_ticket" in names
            ticket = await client.call_tool("legacy__get_ticket", {"id": "TCK-116"})
    assert not ticket.is_error, _text(ticket)
    assert ticket.structured_content is not None
    assert ticket.structured_content["id"] == "TCK-116"
